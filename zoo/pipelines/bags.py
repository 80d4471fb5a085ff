"""`zoo bag train`: corpus -> bagging manifests -> one training run per bag -> zoo.json -> publish.

Two steps: `prepare_bags` loads and checks the corpus spec and says whether a Hub is needed;
`train_bags(hub, job)` trains (and publishes) with that Hub open (None when none is needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from zoo.data.corpus import Corpus, load_corpus
from zoo.data.sampler import BagManifest, sample_bags, select_rows
from zoo.data.spec import load_corpus_spec
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import DatasetUse, Training, ZooMetadata, format_validation_error
from zoo.hub.session import Hub
from zoo.pipelines.members import adapter_of, push
from zoo.train.config import TrainConfig, TrainResult
from zoo.train.executors import TrainJob, run_jobs
from zoo.train.inputs import train_sets
from zoo.train.model import resolve_bf16
from zoo.types import ModelRef, check_repo_id, is_local_ref, ratio_name


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
class BagOptions:
    """How to train bags (the `zoo bag train` flags); train holds TrainConfig fields."""

    base: str  # a local folder, or a Hub ref REPO_ID[@REV] pulled at its pinned commit
    ratios: tuple[float, ...] | None = None  # None: the corpus spec's
    seed: int = 0
    bootstrap: bool = False
    push_to: str | None = None  # publish each bag as PREFIX-<ratio> (kind=bag)
    experiment: str | None = None  # None: the push prefix's name, else the corpus file's stem
    out: Path = Path(".zoo/bags")
    executor: str = "local"
    workers: int = 1
    progress: bool = True
    eval_task_dirs: tuple[str, ...] = ()
    train: Mapping[str, Any] = field(default_factory=dict)  # lora_r, steps, batch_size, ...


@dataclass(frozen=True)
class BagJob:
    """A loaded, checked bag run: the corpus spec and the options."""

    corpus_path: Path
    spec: Any  # zoo.data.spec.CorpusSpec
    options: BagOptions

    @property
    def needs_hub(self) -> bool:
        """True when bags are published, the base is a Hub ref, or a dataset is on the Hub."""
        hub_data = any(getattr(d.source, "hub", None) for d in self.spec.datasets)
        return self.options.push_to is not None or not is_local_ref(self.options.base) or hub_data

    @property
    def experiment(self) -> str:
        o = self.options
        return o.experiment or (
            o.push_to.split("/")[-1] if o.push_to else Path(self.corpus_path).stem
        )


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


def prepare_bags(corpus_path: Path, options: BagOptions) -> BagJob:
    """Load the corpus spec and check the options against it; no network."""
    if options.push_to:
        check_repo_id(options.push_to)
        if is_local_ref(options.base):
            raise UserError(
                "publishing bags needs --base as a Hub repo (org/name[@rev]) so their "
                "base_model is pinned; publish it first with `zoo push DIR org/name`"
            )
    return BagJob(Path(corpus_path), load_corpus_spec(corpus_path), options)


def train_bags(hub: Hub | None, job: BagJob) -> list[BagOutcome]:
    """Train one model per bag ratio and (with push_to) publish each as kind=bag.

    hub: the open Hub (None only when not job.needs_hub). Writes under options.out and, when
    pushing, one commit per bag. Deterministic given seed (data and batch order).
    """
    o = job.options
    plan = _plan(hub, job)
    reused = _published_bags(hub, o.push_to, plan) if o.push_to else {}
    todo = [m for m in plan.manifests if m.manifest_sha256 not in reused]
    jobs = [_job(plan, m, o.out) for m in todo]
    results = run_jobs(jobs, executor=o.executor, workers=o.workers, progress=o.progress)
    trained = {
        m.manifest_sha256: _finish(plan, m, r, o.eval_task_dirs) for m, r in zip(todo, results)
    }
    if o.push_to:
        trained = {k: _publish(hub, b, bag_repo(o.push_to, b.ratio)) for k, b in trained.items()}
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


def _plan(h: Hub | None, job: BagJob) -> BagPlan:
    o = job.options
    base_path, base_ref = resolve_base(h, o.base)
    resolver = client.dataset_resolver(h)
    corpus = load_corpus(job.spec, resolve=resolver)
    ratios = tuple(o.ratios or job.spec.ratios)
    manifests = sample_bags(corpus, ratios, seed=o.seed, bootstrap=o.bootstrap)
    train = {"seed": o.seed, **o.train}
    try:  # fail on bad settings before any work
        TrainConfig(base=str(base_path), **train)
    except ValidationError as exc:
        raise UserError(f"training settings: {format_validation_error(exc)}") from None
    return BagPlan(corpus, base_path, base_ref, tuple(manifests), job.experiment, train)


def resolve_base(h: Hub | None, base: str) -> tuple[Path, str | None]:
    """A local folder as is (no pinned ref), or a Hub ref pulled at its pinned commit."""
    if is_local_ref(base):
        return Path(base).expanduser().resolve(), None
    if h is None:
        raise UserError(f"--base {base}: no such folder")
    pulled = client.pull_member(h, ModelRef.parse(base))
    return pulled.path, f"{pulled.repo_id}@{pulled.sha}"


def _job(plan: BagPlan, manifest: BagManifest, out: Path) -> TrainJob:
    inputs = train_sets(
        select_rows(plan.corpus, manifest), {d.name: d for d in plan.corpus.datasets}
    )
    config = TrainConfig(base=str(plan.base_path), **plan.train)
    folder = Path(out) / f"{plan.experiment}-{ratio_name(manifest.ratio)}"
    return TrainJob(
        inputs.sets,
        config,
        folder,
        inputs.prompts,
        name=f"bag {ratio_name(manifest.ratio)}",
        own_candidates=inputs.own_candidates,
    )


def _finish(
    plan: BagPlan, manifest: BagManifest, result: TrainResult, eval_task_dirs: Sequence[str] = ()
) -> BagOutcome:
    path = Path(result.out)
    if plan.base_ref is None:  # a local base has no pinned ref: the bag is not a zoo member
        return BagOutcome(manifest.ratio, path, None, result)
    meta = ZooMetadata(
        kind="bag",
        base_model=plan.base_ref,
        adapter=adapter_of(path),
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
    sha, meta = push(h, outcome.path, repo_id, meta=outcome.meta)
    return BagOutcome(outcome.ratio, outcome.path, meta, outcome.result, f"{repo_id}@{sha}")
