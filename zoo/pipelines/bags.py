"""`zoo bag train`: corpus -> bagging manifests -> one training run per bag -> zoo.json -> publish."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from pydantic import ValidationError

from zoo.data.corpus import Corpus, load_corpus
from zoo.data.sampler import BagManifest, sample_bags, select_rows
from zoo.data.spec import load_corpus_spec
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import Adapter, DatasetUse, Training, ZooMetadata, format_validation_error
from zoo.hub.session import Hub, open_hub
from zoo.pipelines.members import push
from zoo.train.config import TrainConfig, TrainResult
from zoo.train.executors import TrainJob, run_jobs
from zoo.train.model import resolve_bf16
from zoo.types import ModelRef, check_repo_id, ratio_name


@dataclass(frozen=True)
class BagOutcome:
    """One trained bag: where it is, what it was trained on, and where it was published."""

    ratio: float
    path: Path
    meta: ZooMetadata | None
    result: TrainResult | None
    published: str | None = None
    reused: bool = False


@dataclass(frozen=True)
class BagPlan:
    """What to train: the corpus, the base, the manifests, and how to train each bag."""

    corpus: Corpus
    base_path: Path
    base_ref: str | None
    manifests: tuple[BagManifest, ...]
    experiment: str
    train: dict[str, Any]


def bag_repo(prefix: str, ratio: float) -> str:
    """The repo of the bag with this ratio under a push prefix: 'demo/bag' -> 'demo/bag-0.4'."""
    return f"{prefix}-{ratio_name(ratio)}"


def train_bags(
    corpus_path: Path,
    *,
    base: str,
    ratios: Sequence[float] | None = None,
    seed: int = 0,
    bootstrap: bool = False,
    push_to: str | None = None,
    experiment: str | None = None,
    out: Path = Path(".zoo/bags"),
    executor: str = "local",
    workers: int = 1,
    hub: str | None = None,
    token: str | None = None,
    progress: bool = True,
    eval_task_dirs: Sequence[str] = (),
    **train: Any,
) -> list[BagOutcome]:
    """Train one model per bag ratio and (with push_to) publish each as kind=bag.

    train holds TrainConfig fields (lora_r, steps, epochs, batch_size, ...). Writes under out
    and, when pushing, one commit per bag. Deterministic given seed (data and batch order).
    """
    if push_to:
        check_repo_id(push_to)
        if Path(base).is_dir():
            raise UserError(
                "publishing bags needs --base as a Hub repo (org/name[@rev]) so their "
                "base_model is pinned; publish it first with `zoo push DIR org/name --kind base`"
            )
    spec = load_corpus_spec(corpus_path)
    needs_hub = push_to is not None or not Path(base).is_dir() or _has_hub_sources(spec)
    with _maybe_hub(needs_hub, hub, token) as h:
        plan = _plan(
            h,
            spec,
            base,
            ratios,
            seed,
            bootstrap,
            experiment or _experiment(push_to, corpus_path),
            train,
        )
        reused = _published_bags(h, push_to, plan) if push_to else {}
        todo = [m for m in plan.manifests if m.manifest_sha256 not in reused]
        results = run_jobs(
            [_job(plan, m, out) for m in todo],
            executor=executor,
            workers=workers,
            progress=progress,
        )
        trained = {
            m.manifest_sha256: _finish(plan, m, r, eval_task_dirs) for m, r in zip(todo, results)
        }
        if push_to:
            trained = {k: _publish(h, o, bag_repo(push_to, o.ratio)) for k, o in trained.items()}
    return [reused.get(m.manifest_sha256) or trained[m.manifest_sha256] for m in plan.manifests]


def _published_bags(h: Hub, push_to: str, plan: BagPlan) -> dict[str, BagOutcome]:
    """Bags already on the Hub with this manifest, base and settings: reused, not retrained."""
    wanted = TrainConfig(base=str(plan.base_path), **plan.train).hyperparameters()
    wanted["bf16"] = resolve_bf16(wanted["bf16"])  # runs record the bf16 they actually used
    found = {}
    for member in client.find_members(h, kind="bag", query={"experiment": plan.experiment}):
        t = member.meta.training
        same = (
            member.repo_id == bag_repo(push_to, t.ratio)
            and member.meta.base_model == plan.base_ref
            and all(t.hyperparameters.get(k) == v for k, v in wanted.items())
        )
        if same and t.corpus_manifest_hash not in found:
            found[t.corpus_manifest_hash] = BagOutcome(
                t.ratio, Path(), member.meta, None, member.ref, True
            )
    return found


@contextlib.contextmanager
def _maybe_hub(needed: bool, hub: str | None, token: str | None) -> Iterator[Hub | None]:
    if not needed:
        yield None
        return
    with open_hub(hub, token, create=True) as h:
        yield h


def _has_hub_sources(spec: Any) -> bool:
    return any(getattr(d.source, "hub", None) for d in spec.datasets)


def _experiment(push_to: str | None, corpus_path: Path) -> str:
    return push_to.split("/")[-1] if push_to else Path(corpus_path).stem


def _plan(
    h: Hub | None,
    spec: Any,
    base: str,
    ratios: Sequence[float] | None,
    seed: int,
    bootstrap: bool,
    experiment: str,
    train: dict[str, Any],
) -> BagPlan:
    base_path, base_ref = resolve_base(h, base)
    resolver = (lambda ref: client.pull_dataset(h, ModelRef.parse(ref))) if h else None
    corpus = load_corpus(spec, resolve=resolver)
    manifests = sample_bags(corpus, tuple(ratios or spec.ratios), seed=seed, bootstrap=bootstrap)
    try:  # fail on bad settings before any work
        TrainConfig(base=str(base_path), seed=seed, **train)
    except ValidationError as exc:
        raise UserError(f"training settings: {format_validation_error(exc)}") from None
    return BagPlan(
        corpus, base_path, base_ref, tuple(manifests), experiment, {"seed": seed, **train}
    )


def resolve_base(h: Hub | None, base: str) -> tuple[Path, str | None]:
    """A local folder as is (no pinned ref), or a Hub ref pulled at its pinned commit."""
    if Path(base).is_dir():
        return Path(base).resolve(), None
    if h is None:
        raise UserError(f"--base {base}: no such folder")
    pulled = client.pull_member(h, ModelRef.parse(base))
    return pulled.path, f"{pulled.repo_id}@{pulled.sha}"


def _job(plan: BagPlan, manifest: BagManifest, out: Path) -> TrainJob:
    rows = select_rows(plan.corpus, manifest)
    own = frozenset(d.name for d in plan.corpus.datasets if not d.in_batch_negatives)
    train_sets = {
        name: to_train_columns(ds, all_negatives=name in own)
        for name, ds in rows.items()
        if len(ds)
    }
    prompts = {
        d.name: d.instruction
        for d in plan.corpus.datasets
        if d.instruction and d.name in train_sets
    }
    config = TrainConfig(base=str(plan.base_path), **plan.train)
    folder = Path(out) / f"{plan.experiment}-{ratio_name(manifest.ratio)}"
    return TrainJob(
        train_sets,
        config,
        folder,
        prompts or None,
        name=f"bag {ratio_name(manifest.ratio)}",
        own_candidates=own & set(train_sets),
    )


def to_train_columns(ds: datasets.Dataset, *, all_negatives: bool = False) -> datasets.Dataset:
    """zoo.data rows {query, pos[], neg[], label, group} -> trainer rows {anchor, positive, negative...}.

    The first positive is used. Datasets trained with in-batch negatives get the first hard negative
    when every row has one; own-candidates datasets (classification, clustering: no in-batch
    negatives) get all of them as negative_1..negative_k, k the smallest count over the rows.
    """
    pos, neg = ds["pos"], ds["neg"]
    columns = {"anchor": list(ds["query"]), "positive": [p[0] for p in pos]}
    k = min((len(n) for n in neg), default=0)
    if all_negatives:
        if k == 0:
            raise UserError(
                "a dataset without in-batch negatives needs hard negatives on every row"
            )
        columns.update({f"negative_{i + 1}": [n[i] for n in neg] for i in range(k)})
    elif k:
        columns["negative"] = [n[0] for n in neg]
    return datasets.Dataset.from_dict(columns)


def _finish(
    plan: BagPlan, manifest: BagManifest, result: TrainResult, eval_task_dirs: Sequence[str] = ()
) -> BagOutcome:
    path = Path(result.out)
    if plan.base_ref is None:  # a local base has no pinned ref: the bag is not a zoo member
        return BagOutcome(manifest.ratio, path, None, result)
    meta = ZooMetadata(
        kind="bag",
        base_model=plan.base_ref,
        adapter=_adapter(path),
        training=_training(plan, manifest, result),
        scores=_scores(path, eval_task_dirs),
    )
    (path / "zoo.json").write_text(meta.to_json(), encoding="utf-8")
    return BagOutcome(manifest.ratio, path, meta, result)


def _scores(path: Path, task_dirs: Sequence[str]) -> dict[str, float]:
    """Main score per task of a freshly trained bag (kept in its metadata), or {} without tasks."""
    if not task_dirs:
        return {}
    from zoo.eval import evaluate

    return {
        t.name: round(t.score, 6) for t in evaluate(path, task_dirs=task_dirs, progress=False).tasks
    }


def _adapter(path: Path) -> Adapter:
    config = path / "adapter_config.json"
    if config.is_file():
        return Adapter(type="lora", peft_config=json.loads(config.read_text()))
    return Adapter(type="full")


def _training(plan: BagPlan, manifest: BagManifest, result: TrainResult) -> Training:
    uses = tuple(
        DatasetUse(
            name=d.name,
            source=d.source or "",
            revision=d.source_rev,
            fingerprint=d.fingerprint or "",
            size=d.size,
            count=d.count,
            indices_sha256=d.indices_sha256,
        )
        for d in manifest.datasets
    )
    return Training(
        experiment=plan.experiment,
        corpus_manifest_hash=manifest.manifest_sha256,
        datasets=uses,
        ratio=manifest.ratio,
        seed=manifest.seed,
        bootstrap=manifest.bootstrap,
        hyperparameters=dict(result.hyperparameters),
        examples_seen=result.examples_seen,
        wall_time_s=result.wall_time_s,
        corpus_spec=spec_record(plan.corpus.spec, [d.name for d in manifest.datasets]),
    )


def spec_record(spec: Any, names: Sequence[str]) -> dict[str, Any]:
    """The corpus spec entries of the named datasets, as JSON data (kept in training records)."""
    wanted = set(names)
    entries = [
        d.model_dump(mode="json", exclude_defaults=True) for d in spec.datasets if d.name in wanted
    ]
    return {"datasets": entries, "seed": spec.seed}


def _publish(h: Hub, outcome: BagOutcome, repo_id: str) -> BagOutcome:
    sha, meta = push(h, outcome.path, repo_id)
    return BagOutcome(outcome.ratio, outcome.path, meta, outcome.result, f"{repo_id}@{sha}")
