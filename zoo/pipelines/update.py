"""`zoo update`: a light update model on new data plus a replay of the old, merged into the
current model and published as that repo's next revision.

    CURRENT's lineage -> the exact rows it was trained on (history) -> a seeded replay fraction
    -> train on new data + replay (the same loop as bags) -> publish kind=update
    -> recipe (CURRENT + update) -> merge -> evaluate -> publish as CURRENT's repo, tag vN+1

The history comes from the training records of every member in CURRENT's lineage: each record
names its datasets (fingerprint, size), how its rows were drawn (ratio, seed) and the corpus spec
entries that load them; local sources resolve against `data_root` (default: the new corpus's
folder), Hub sources are pulled at their pinned revision, and every dataset must match its
recorded fingerprint. A model without training records (a community model) needs
`replay_corpus`: the corpus it was trained on, replayed whole.

`weights="auto"` weighs CURRENT and the update model in proportion to the examples each has seen
(CURRENT: every trained member of its lineage; the update: its own run).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.data.corpus import Corpus, load_corpus
from zoo.data.replay import History, HistoryDraw, history, replay_indices, select_history, whole
from zoo.data.sampler import indices_sha256
from zoo.data.spec import load_corpus_spec, parse_corpus_spec
from zoo.errors import UserError
from zoo.hub import client
from zoo.hub.metadata import DatasetUse, Training, ZooMetadata
from zoo.hub.session import Hub
from zoo.merge.registry import get_method
from zoo.pipelines.bags import spec_record
from zoo.pipelines.members import adapter_of, push
from zoo.pipelines.merging import MergeOptions, MergeOutcome, merge, prepare_merge
from zoo.recipe.build import build_recipe, write_recipe
from zoo.recipe.schema import Recipe
from zoo.train.config import TrainConfig, TrainResult
from zoo.train.inputs import train_sets
from zoo.types import ModelRef

INITS = ("base", "current")
RECIPE = "update-recipe.yaml"  # in the run's working folder


@dataclass(frozen=True)
class UpdateOutcome:
    """What `zoo update` did."""

    current: str  # CURRENT, pinned
    update: str  # the update model, published (repo@sha)
    recipe: Path
    merged: MergeOutcome
    new_rows: int
    replay_rows: int
    weights: tuple[float, float]
    result: TrainResult


@dataclass(frozen=True)
class UpdateOptions:
    """One update (the `zoo update` flags); train holds TrainConfig fields."""

    replay: float  # fraction of CURRENT's rows trained on again, in (0, 1]
    init: str = "base"  # train the update model from CURRENT's base or from CURRENT
    method: str = "multislerp"
    weights: str | Sequence[float] = "auto"  # of CURRENT and the update model
    publish: bool = True  # the merged model as CURRENT's repo's next revision
    pr: bool = False  # ... proposed as a pull request on CURRENT's repo instead (implies publish)
    update_repo: str | None = None  # None: CURRENT's repo + '-updates'
    replay_corpus: Path | None = None  # the data of a model without zoo lineage
    data_root: Path | None = None  # None: the new corpus's folder
    task_dirs: tuple[str, ...] = ()
    seed: int = 0
    out: Path = Path(".zoo/update")
    progress: bool = True
    train: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_options(self)  # bad flags fail before the Hub is opened


@dataclass(frozen=True)
class _Current:
    pinned: str
    meta: ZooMetadata | None
    lineage: list[tuple[str, ZooMetadata]]  # every member reachable, CURRENT first

    @property
    def repo_id(self) -> str:
        return self.pinned.split("@")[0]

    @property
    def trained(self) -> list[tuple[str, ZooMetadata]]:
        return [(ref, m) for ref, m in self.lineage if m.training is not None]


@dataclass(frozen=True)
class _Data:
    """The update's training data: new corpus, the old one, CURRENT's history, what is replayed."""

    new: Corpus
    old: Corpus
    hist: History
    picked: dict  # dataset name -> replayed row indices
    replayed: dict  # dataset name -> replayed rows


def update(hub: Hub, current: str, corpus: Path, o: UpdateOptions) -> UpdateOutcome:
    """Run one incremental update of `current` with the data of `corpus` (see the module doc)."""
    spec = load_corpus_spec(corpus)  # a bad spec fails before any Hub call
    cur = _resolve_current(hub, current)
    data = _data(hub, cur, spec, o.data_root or Path(corpus).parent, o)
    init_path, init_ref = _init(hub, cur, o.init)
    out = Path(o.out) / _run_key(cur, corpus, o.replay, o.seed, o.init)  # a rerun resumes its own
    result, folder = _train(data, init_path, out, o)
    meta = _update_meta(cur, init_ref, data, o, result, folder)
    (folder / "zoo.json").write_text(meta.to_json(), encoding="utf-8")
    repo = o.update_repo or f"{cur.repo_id}-updates"
    sha, _ = push(hub, folder, repo, tag=client.next_version_tag(hub, repo), meta=meta)
    update_ref, pair = f"{repo}@{sha}", _weights(o.weights, cur, result)
    recipe = write_recipe(_recipe(cur, update_ref, o.method, pair, o.task_dirs), out / RECIPE)
    target = out / "merged"
    if target.exists():
        shutil.rmtree(target)
    options = MergeOptions(out=target, publish=o.publish or o.pr, pr=o.pr, progress=o.progress)
    merged = merge(hub, prepare_merge(recipe, options=options))
    rows = (sum(len(d) for d in data.new.datasets), sum(len(r) for r in data.replayed.values()))
    return UpdateOutcome(cur.pinned, update_ref, Path(recipe.source), merged, *rows, pair, result)


def _data(h: Hub, cur: _Current, spec: Any, data_root: Path, o: UpdateOptions) -> _Data:
    resolver = client.dataset_resolver(h)
    hist, old = _history(cur, o.replay_corpus, data_root, resolver)
    new = load_corpus(spec, resolve=resolver)
    _check_names(new, hist)
    picked = replay_indices(hist, o.replay, o.seed)
    return _Data(new, old, hist, picked, select_history(old, hist, picked))


def _run_key(cur: _Current, corpus: Path, replay: float, seed: int, init: str) -> str:
    """The working subfolder of one update: CURRENT, the new data, replay, seed and init."""
    text = f"{cur.pinned}|{Path(corpus).read_bytes().hex()}|{replay!r}|{seed}|{init}"
    return f"{cur.pinned.split('@')[1][:8]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _check_options(o: UpdateOptions) -> None:
    if o.init not in INITS:
        raise UserError(f"--init: expected one of {', '.join(INITS)}, got {o.init!r}")
    get_method(o.method)
    replay = o.replay
    if isinstance(replay, bool) or not isinstance(replay, (int, float)) or not 0 < replay <= 1:
        raise UserError(f"--replay: fraction {replay!r} is outside (0, 1]")
    w = o.weights
    if w != "auto" and (len(w) != 2 or any(x < 0 for x in w) or not sum(w)):
        raise UserError(f"--weights: expected 'auto' or two non-negative numbers A,B, got {w!r}")


def parse_weights(text: str) -> str | tuple[float, float]:
    """'auto' or 'A,B' -> the weights of CURRENT and the update model."""
    if text == "auto":
        return text
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--weights: expected 'auto' or A,B (two numbers), got {text!r}") from None
    if len(values) != 2:
        raise UserError(f"--weights: expected 'auto' or A,B (two numbers), got {text!r}")
    return values  # type: ignore[return-value]


def _resolve_current(h: Hub, current: str) -> _Current:
    ref = ModelRef.parse(current)
    sha = client.resolve(h, ref)
    pinned = f"{ref.repo_id}@{sha}"
    meta = client.read_metadata(h, ref.repo_id, sha)
    return _Current(pinned, meta, _walk(h, pinned, meta))


def _walk(h: Hub, pinned: str, meta: ZooMetadata | None) -> list[tuple[str, ZooMetadata]]:
    """Every member reachable through parents and base_model, each once, CURRENT first."""
    seen, order, frontier = {pinned}, [], [(pinned, meta)]
    while frontier:
        ref, m = frontier.pop(0)
        if m is None:
            continue
        order.append((ref, m))
        for parent in (*m.parents, *([m.base_model] if m.base_model else [])):
            if parent not in seen:
                seen.add(parent)
                repo, _, sha = parent.partition("@")
                frontier.append((parent, client.read_metadata(h, repo, sha)))
    return order


def _history(
    cur: _Current, replay_corpus: Path | None, data_root: Path, resolver
) -> tuple[History, Corpus]:
    """The rows CURRENT was trained on, and the corpus that holds them."""
    draws = [d for ref, m in cur.trained for d in _draws(ref, m)]
    if replay_corpus is not None:
        old = load_corpus(load_corpus_spec(replay_corpus), resolve=resolver)
        names = {d.name for d in old.datasets}
        mine = [d for d in draws if d.name in names]
        return (history(mine) if mine else whole(old)), old
    if not draws:
        raise UserError(
            f"{cur.pinned} has no zoo training lineage (no bag or update records), so the data "
            "it was trained on is unknown; pass --replay-corpus OLD_CORPUS.yaml naming it"
        )
    entries: dict[str, dict] = {}
    for ref, m in cur.trained:
        if m.training.corpus_spec is None:
            raise UserError(
                f"{ref} records no corpus spec (trained before zoo kept one), so its rows cannot "
                "be loaded again; pass --replay-corpus OLD_CORPUS.yaml naming its data"
            )
        for entry in m.training.corpus_spec.get("datasets", []):
            entries.setdefault(entry["name"], entry)
    hist = history(draws)
    raw = {"datasets": [entries[name] for name in hist.indices]}
    spec = parse_corpus_spec(
        raw, base_dir=Path(data_root).resolve(), origin="the lineage's corpus spec"
    )
    return hist, load_corpus(spec, resolve=resolver)


def _draws(ref: str, m: ZooMetadata) -> list[HistoryDraw]:
    t = m.training
    return [
        HistoryDraw(
            ref,
            d.name,
            d.fingerprint,
            d.size if d.size is not None else d.count,
            t.ratio or 1.0,
            t.seed,
            t.bootstrap,
            d.indices_sha256,
        )
        for d in t.datasets
        if d.role == "train"
    ]


def _check_names(new: Corpus, hist: History) -> None:
    clash = sorted({d.name for d in new.datasets} & set(hist.indices))
    if clash:
        raise UserError(
            f"new corpus dataset {clash[0]!r} is also in the model's history; give new data new "
            "names (old data is replayed with --replay)"
        )


def _init(h: Hub, cur: _Current, init: str) -> tuple[Path, str]:
    """The model the update trains from: the lineage's base (default) or CURRENT itself."""
    ref = cur.meta.base_model if init == "base" and cur.meta and cur.meta.base_model else cur.pinned
    pulled = client.pull_member(h, ModelRef.parse(ref))
    return pulled.path, f"{pulled.repo_id}@{pulled.sha}"


def _train(data: _Data, init_path: Path, out: Path, o: UpdateOptions) -> tuple[TrainResult, Path]:
    from zoo.data.sampler import sample_bags, select_rows
    from zoo.train import train as run

    new = data.new
    rows = select_rows(new, sample_bags(new, (1.0,), seed=o.seed)[0]) | data.replayed
    inputs = train_sets(rows, {d.name: d for d in (*new.datasets, *data.old.datasets)})
    config = TrainConfig(base=str(init_path), seed=o.seed, **o.train)
    folder = Path(out) / "update-model"
    result = run(
        inputs.sets,
        config,
        folder,
        prompts=inputs.prompts,
        progress=o.progress,
        own_candidates=inputs.own_candidates,
    )
    return result, folder


def _update_meta(
    cur: _Current, init_ref: str, data: _Data, o: UpdateOptions, result: TrainResult, folder: Path
) -> ZooMetadata:
    uses = _uses(data)
    corpus_spec = spec_record(data.new.spec, [d.name for d in data.new.datasets])
    corpus_spec["datasets"] += spec_record(data.old.spec, list(data.picked))["datasets"]
    body = json.dumps([u.model_dump(mode="json") for u in uses], sort_keys=True).encode()
    training = Training(
        experiment=f"{cur.repo_id.split('/')[1]}-updates",
        corpus_manifest_hash=hashlib.sha256(body).hexdigest(),
        datasets=tuple(uses),
        seed=o.seed,
        hyperparameters=dict(result.hyperparameters),
        examples_seen=result.examples_seen,
        wall_time_s=result.wall_time_s,
        replay=o.replay,
        corpus_spec=corpus_spec,
    )
    return ZooMetadata(
        kind="update",
        base_model=init_ref,
        parents=(cur.pinned,),
        adapter=adapter_of(folder),
        training=training,
    )


def _uses(data: _Data) -> list[DatasetUse]:
    """Every dataset the update model saw: the new ones whole, the replayed rows of the old."""
    import numpy as np

    uses = [
        DatasetUse(
            name=d.name,
            source=d.source,
            revision=d.source_rev,
            fingerprint=d.fingerprint,
            size=len(d),
            count=len(d),
            indices_sha256=indices_sha256(np.arange(len(d))),
        )
        for d in data.new.datasets
    ]
    return uses + [
        DatasetUse(
            name=name,
            source=data.old[name].source,
            revision=data.old[name].source_rev,
            fingerprint=data.hist.fingerprints[name],
            size=data.hist.sizes[name],
            count=len(idx),
            indices_sha256=indices_sha256(idx),
            role="replay",
        )
        for name, idx in data.picked.items()
    ]


def _weights(
    weights: str | Sequence[float], cur: _Current, result: TrainResult
) -> tuple[float, float]:
    """(CURRENT, update) merge weights, summing to 1; 'auto' = by examples seen."""
    if weights == "auto":
        before = sum(m.training.examples_seen for _, m in cur.trained)
        pair = (float(before), float(result.examples_seen))
        if not before:  # a community model: nothing recorded, weigh them equally
            pair = (1.0, 1.0)
    else:
        pair = (float(weights[0]), float(weights[1]))
    total = sum(pair)
    return (round(pair[0] / total, 6), round(pair[1] / total, 6))


def _recipe(
    cur: _Current,
    update_ref: str,
    method: str,
    pair: tuple[float, float],
    task_dirs: Sequence[str],
) -> Recipe:
    """The merge recipe of this update: CURRENT and the update model, published as CURRENT."""
    spec = get_method(method)
    base = cur.meta.base_model if cur.meta else None
    if spec.needs_base and not base:
        raise UserError(
            f"--method {method} needs a base model, and {cur.pinned} records none; "
            "choose a method without one (e.g. multislerp, linear)"
        )
    return build_recipe(
        method,
        publish=cur.repo_id,
        base=base,
        models=((cur.pinned, pair[0]), (update_ref, pair[1])),
        task_dirs=[str(Path(d).resolve()) for d in task_dirs],
        header=f"Written by `zoo update`: {method} of {cur.pinned} and the update model "
        f"{update_ref} (weights {pair[0]}, {pair[1]}).",
    )
