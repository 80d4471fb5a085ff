"""The card of a published member (base, bag, update): context assembled as plain data.

Takes the zoo metadata as a plain dict (ZooMetadata.model_dump(mode="json")), so that cards/
depends on no other component.
"""

from __future__ import annotations

from typing import Any

from zoo.cards.model_index import eval_results, model_index
from zoo.cards.render import dump_front_matter, render
from zoo.cards.results import results_context

_SUMMARY = {
    "base": "A base embedding model registered in the zoo.",
    "bag": "A BOOM bag: an embedding model fine-tuned on a sampled subset of a multi-task corpus.",
    "update": "A zoo update model: trained on new data plus a replay of old data, to be merged.",
    "merged": "An embedding model merged by zoo from the parents listed below.",
}


def _experiment(meta: dict[str, Any]) -> str | None:
    training = meta.get("training") or {}
    return training.get("experiment") or meta.get("labels", {}).get("experiment")


def front_matter(meta: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The card YAML: Hub fields first, then the full zoo metadata under `zoo`."""
    data: dict[str, Any] = dict(extra or {})
    data["library_name"] = "sentence-transformers"
    data["pipeline_tag"] = "sentence-similarity"
    data["tags"] = _tags(meta, data.get("tags", []))
    bases = [meta["base_model"].split("@")[0]] if meta.get("base_model") else []
    relation = _relation(meta)
    if meta["kind"] == "merged":
        bases = sorted({p.split("@")[0] for p in meta["parents"]})
    if relation:
        data["base_model_relation"] = relation
    if bases:
        data["base_model"] = bases
    data["zoo"] = meta
    return data


def _relation(meta: dict[str, Any]) -> str | None:
    if meta["kind"] == "merged":
        return "merge"
    if meta["adapter"]["type"] == "lora":
        return "adapter"
    return "finetune" if meta["kind"] in ("bag", "update") else None


def _tags(meta: dict[str, Any], tags: list[str]) -> list[str]:
    ordered = ["zoo", f"zoo-{meta['kind']}", "sentence-transformers", "feature-extraction"]
    if _experiment(meta):
        ordered.append(f"zoo-experiment-{_experiment(meta)}")
    return list(dict.fromkeys([*ordered, *tags]))


def member_card(
    repo_id: str,
    meta: dict[str, Any],
    extra: dict[str, Any] | None = None,
    *,
    results: dict[str, Any] | None = None,
    label: str | None = None,
    datasets: dict[str, dict] | None = None,
    plot: str | None = None,
) -> str:
    """Render the README.md of a member repo from its zoo metadata (plain dict).

    results (zoo.cards.results data): the Evaluation section, the `mteb` tag and the model-index
    of the column `label`; plot: the file name of the plot shown under the table.
    """
    training = meta.get("training") or {}
    extra = dict(extra or {})
    if results:
        extra["tags"] = [*extra.get("tags", []), "mteb"]
        evals = eval_results(label or repo_id.rsplit("/", 1)[-1], results, datasets)
        extra["model-index"] = model_index(repo_id, evals)
    context = {
        "front_matter": dump_front_matter(front_matter(meta, extra)),
        "results": results_context(results) if results else None,
        "plot": plot if results else None,
        "repo_id": repo_id,
        "summary": " ".join([_SUMMARY[meta["kind"]], *_extracted(meta)]),
        "lora": meta["adapter"]["type"] == "lora",
        "base_model": meta.get("base_model") or "",
        "provenance": _provenance(meta),
        "datasets": list(training.get("datasets", [])),
        "zoo_version": meta["zoo_version"],
    }
    return render("member", context)


def _extracted(meta: dict[str, Any]) -> list[str]:
    """The sentence of a LoRA adapter extracted from a full fine-tune (zoo push --as-lora)."""
    labels = meta.get("labels", {})
    if meta["adapter"]["type"] != "lora" or "lora_rank" not in labels:
        return []
    energy = float(labels.get("retained_energy", "nan"))
    return [
        f"This LoRA adapter (rank {labels['lora_rank']}) was extracted by truncated SVD from the "
        f"full fine-tune {labels.get('extracted_from', '?')}; it keeps {energy:.2%} of the "
        "fine-tune's update energy (sum of kept squared singular values over the squared "
        "Frobenius norm of the weight deltas)."
    ]


def _provenance(meta: dict[str, Any]) -> list[dict[str, str]]:
    rows = [
        ("kind", meta["kind"]),
        ("base model", meta.get("base_model") or "—"),
        ("weights", meta["adapter"]["type"]),
        ("created", meta["created_at"]),
    ]
    rows += [("parent", p) for p in meta.get("parents", [])]
    if _extracted(meta):
        labels = meta["labels"]
        rows += [
            ("extracted from", labels.get("extracted_from", "?")),
            ("LoRA rank", labels["lora_rank"]),
            ("energy kept", f"{float(labels.get('retained_energy', 'nan')):.2%}"),
        ]
    if meta.get("training"):
        t = meta["training"]
        rows += [
            ("experiment", t.get("experiment") or "—"),
            ("ratio", str(t.get("ratio"))),
            ("seed", str(t["seed"])),
            ("examples seen", str(t["examples_seen"])),
            ("wall time (s)", f"{t['wall_time_s']:.1f}"),
            ("corpus manifest", f"`{t['corpus_manifest_hash']}`"),
        ]
        rows += [(f"hp.{k}", str(v)) for k, v in sorted(t.get("hyperparameters", {}).items())]
    rows += [(f"label.{k}", v) for k, v in sorted(meta.get("labels", {}).items())]
    return [{"key": k, "value": v} for k, v in rows]
