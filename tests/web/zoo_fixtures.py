"""A zoo family published on the live Hub with the official client, for the zoo pages' tests.

    base ── bag-a, bag-b (experiment EXP; bag-b's scores only in its card's model-index)
       └── merged v1 (bag-a + bag-b) ── update (kind update, parents merged@v1)
                                    └── merged v2 = main (parents merged@v1 + update), tag v2
    bag-secret: a private member of EXP (admin only); other: a model of another experiment.

Scores are written by zoo's own writer (zoo.cards.model_index.eval_results_yaml), zoo.json and
the card's `zoo:` block from zoo.hub.metadata.ZooMetadata, as the pipelines publish them.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from huggingface_hub import CommitOperationAdd, HfApi

from zoo.cards.model_index import eval_results, eval_results_yaml, model_index
from zoo.hub.metadata import Training, ZooMetadata

__all__ = ["SCORES", "Family", "publish", "publish_family", "training"]

TASKS = [
    {"name": "r1", "type": "retrieval", "metric": "ndcg_at_10"},
    {"name": "r2", "type": "retrieval", "metric": "ndcg_at_10"},
    {"name": "s1", "type": "sts", "metric": "cosine_spearman"},
]
SCORES = {
    "base": {"r1": 0.40, "r2": 0.50, "s1": 0.60},
    "bag-a": {"r1": 0.45, "r2": 0.55, "s1": 0.62},
    "bag-b": {"r1": 0.47, "r2": 0.51, "s1": 0.64},
    "merged-v1": {"r1": 0.50, "r2": 0.56, "s1": 0.63},
    "update": {"r1": 0.44},
    "merged": {"r1": 0.52, "r2": 0.58, "s1": 0.61},
    "bag-secret": {"r1": 0.90, "r2": 0.90, "s1": 0.90},
    "other": {"r1": 0.99, "r2": 0.99, "s1": 0.99},
}


@dataclass
class Family:
    ns: str
    exp: str
    shas: dict[str, str]  # 'base', 'bag-a', ..., 'merged-v1', 'merged' (v2, main)

    def repo(self, name: str) -> str:
        return f"{self.ns}/{name.removesuffix('-v1')}"

    def ref(self, name: str) -> str:
        return f"{self.repo(name)}@{self.shas[name]}"


def _results(name: str) -> dict:
    return {"tasks": TASKS, "scores": {name: SCORES[name]}}


def training(exp: str | None) -> Training:
    return Training(
        experiment=exp,
        corpus_manifest_hash="0" * 64,
        datasets=(),
        ratio=0.5,
        seed=1,
        examples_seen=10,
        wall_time_s=1.0,
    )


def publish(
    api: HfApi,
    repo: str,
    name: str,
    meta: ZooMetadata,
    *,
    card_scores: bool = False,
    private: bool = False,
    tag: str | None = None,
) -> str:
    """One commit holding zoo.json, a card with the `zoo:` block and the scores; its sha."""
    data = meta.model_dump(mode="json")
    front: dict = {"library_name": "sentence-transformers", "zoo": data}
    files = {"zoo.json": meta.to_json()}
    if card_scores:
        front["model-index"] = model_index(repo, eval_results(name, _results(name)))
    else:
        files.update(eval_results_yaml(_results(name), name))
    files["README.md"] = f"---\n{yaml.safe_dump(front, sort_keys=True)}---\n# {repo}\n"
    api.create_repo(repo, private=private, exist_ok=True)
    ops = [CommitOperationAdd(p, text.encode()) for p, text in files.items()]
    info = api.create_commit(repo, ops, commit_message=f"publish {name}")
    if tag:
        api.create_tag(repo, tag=tag, revision=info.oid)
    return info.oid


def publish_family(api: HfApi, ns: str) -> Family:
    exp = f"exp-{ns}"
    fam = Family(ns, exp, {})
    fam.shas["base"] = publish(api, fam.repo("base"), "base", ZooMetadata(kind="base"))
    base = fam.ref("base")
    fam.shas["bag-a"] = publish(
        api, fam.repo("bag-a"), "bag-a", ZooMetadata(kind="bag", base_model=base,
                                                     training=training(exp))
    )  # fmt: skip
    fam.shas["bag-b"] = publish(
        api, fam.repo("bag-b"), "bag-b",
        ZooMetadata(kind="bag", base_model=base, training=training(None),
                    labels={"experiment": exp}), card_scores=True,
    )  # fmt: skip
    bags = (fam.ref("bag-a"), fam.ref("bag-b"))
    merged = ZooMetadata(kind="merged", base_model=base, parents=bags)
    fam.shas["merged-v1"] = publish(api, fam.repo("merged"), "merged-v1", merged, tag="v1")
    update = ZooMetadata(
        kind="update",
        base_model=base,
        parents=(fam.ref("merged-v1"),),
        training=training(f"{ns}-merged-updates"),
    )
    fam.shas["update"] = publish(api, fam.repo("update"), "update", update)
    v2 = ZooMetadata(
        kind="merged", base_model=base, parents=(fam.ref("merged-v1"), fam.ref("update"))
    )
    fam.shas["merged"] = publish(api, fam.repo("merged"), "merged", v2, tag="v2")
    secret = ZooMetadata(kind="bag", base_model=base, training=training(exp))
    fam.shas["bag-secret"] = publish(
        api, fam.repo("bag-secret"), "bag-secret", secret, private=True
    )
    other = ZooMetadata(kind="bag", base_model=base, training=training(f"other-{ns}"))
    fam.shas["other"] = publish(api, fam.repo("other"), "other", other)
    return fam
