"""`zoo merge`: recipe -> select -> pin (lock) -> pull -> merge out of core -> package -> publish."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.cards.merged import merged_card
from zoo.errors import UserError
from zoo.hashing import folder_digest
from zoo.hub import client
from zoo.hub.metadata import ZooMetadata
from zoo.hub.session import Hub, open_hub
from zoo.merge import engine
from zoo.merge.planning import MergeInput
from zoo.pipelines.search import SEARCH_FILE
from zoo.recipe.lock import LOCK_FILE, Lock, build_lock, check_files, load_lock
from zoo.recipe.plan import Candidate, MergeSpec, merge_spec, select
from zoo.recipe.schema import Recipe, load_recipe
from zoo.types import ModelRef

RECIPE_FILE = "recipe.yaml"


@dataclass
class MergeOutcome:
    """What `zoo merge` did: the lock, and (unless dry-run) the output and publication."""

    lock: Lock | None
    plan: dict[str, Any]
    out: Path | None = None
    report: engine.MergeReport | None = None
    published: str | None = None
    tag: str | None = None
    results: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Options:
    hub: str | None
    token: str | None
    device: str
    allow_pickle: bool
    progress: bool


def merge(
    recipe_path: Path | None = None,
    *,
    lock_path: Path | None = None,
    out: Path | None = None,
    publish: bool = False,
    dry_run: bool = False,
    hub: str | None = None,
    token: str | None = None,
    device: str = "cpu",
    allow_pickle: bool = False,
    progress: bool = True,
    search: bool = False,
) -> MergeOutcome:
    """Run a recipe (or re-run a lock) end to end; see the module docstring for the stages.

    search: first run the recipe's zoo.search (see zoo.pipelines.search) and merge its best
    candidate. Writes only `out` (atomically, via the engine) and, with publish, one commit + tag.
    """
    recipe, lock = _load(recipe_path, lock_path)
    if search and (lock is not None or recipe.zoo.search is None):
        raise UserError(
            "--search runs a recipe's zoo.search block (task_dirs and grid or greedy); "
            + ("a lock already records the chosen weights" if lock else f"{recipe.source} has none")
        )
    opts = _Options(hub, token, device, allow_pickle, progress)
    if publish and recipe.zoo.publish is None:
        raise UserError(f"{recipe.source}: --publish needs zoo.publish.repo_id in the recipe")
    if out is not None and out.exists() and not dry_run:
        raise UserError(f"--out {out} already exists; remove it or choose another folder")
    with (
        _hub_if_needed(recipe, lock, publish, opts) as h,
        tempfile.TemporaryDirectory(prefix="zoo-merge-") as tmp,
    ):
        spec = lock.spec() if lock else merge_spec(recipe, _selected(h, recipe))
        if dry_run:
            return _dry_run(h, spec, recipe, Path(tmp), opts)
        pinned = _fetch(h, spec, lock)
        searched = None
        if search:
            spec, searched = _search(spec, recipe, pinned, opts, Path(tmp))
        lock = lock or build_lock(
            spec, recipe.text, recipe.sha256, {r: (p, f) for r, (p, f, _) in pinned.items()}
        )
        target = out or Path("merged") / _default_name(recipe)
        report = _run_engine(spec, pinned, target, opts)
        results = _evaluate(recipe, spec, pinned, target, opts) if recipe.zoo.eval else None
        _write_extras(target, recipe, lock, h, results, searched)
        outcome = MergeOutcome(
            lock=lock,
            plan=_plan_dict(spec, lock),
            out=target,
            report=report,
            results=results,
            search=searched,
        )
        if publish:
            outcome.published, outcome.tag = _publish(h, target, recipe, results)
    return outcome


def _load(recipe_path: Path | None, lock_path: Path | None) -> tuple[Recipe, Lock | None]:
    if lock_path is not None:
        lock = load_lock(lock_path)
        return load_recipe(lock.recipe), lock
    if recipe_path is None:
        raise UserError("give a recipe file or --lock FILE")
    return load_recipe(recipe_path), None


def _is_local(ref: str) -> bool:
    return Path(ref).expanduser().is_dir()


@contextlib.contextmanager
def _hub_if_needed(
    recipe: Recipe, lock: Lock | None, publish: bool, opts: _Options
) -> Iterator[Hub | None]:
    refs = [i.pinned for i in lock.inputs()] if lock else _recipe_refs(recipe)
    if publish or recipe.zoo.select is not None or any(not _is_local(r) for r in refs):
        with open_hub(opts.hub, opts.token) as h:
            yield h
    else:
        yield None


def _recipe_refs(recipe: Recipe) -> list[str]:
    refs = [str(m["model"]) for m in recipe.merge.get("models") or []]
    return refs + ([str(recipe.merge["base_model"])] if recipe.merge.get("base_model") else [])


def _selected(h: Hub | None, recipe: Recipe) -> list[str] | None:
    sel = recipe.zoo.select
    if sel is None:
        return None
    query = dict(sel.meta)
    if sel.experiment:
        query["experiment"] = sel.experiment
    members = client.find_members(h, kind=sel.kind, tags=sel.tags, query=query)
    if sel.base_model:
        members = [m for m in members if (m.meta.base_model or "").split("@")[0] == sel.base_model]
    return select(sel, [Candidate(m.ref, m.repo_id, m.meta.flat()) for m in members])


def _fetch(
    h: Hub | None, spec: MergeSpec, lock: Lock | None
) -> dict[str, tuple[str, dict[str, str], Path]]:
    """Pull every input at its pinned commit; {requested: (pinned, {file: sha256}, local path)}."""
    locked = {i.pinned: i for i in lock.inputs()} if lock else {}
    out = {}
    for ref in spec.refs():
        if _is_local(ref):
            path = Path(ref).expanduser().resolve()
            pinned = str(path)
        else:
            pulled = client.pull_member(h, ModelRef.parse(ref))
            path, pinned = pulled.path, f"{pulled.repo_id}@{pulled.sha}"
        files = folder_digest(path)
        if ref in locked:
            check_files(locked[ref], files)
        out[ref] = (pinned, files, path)
    return out


def _run_engine(spec: MergeSpec, pinned: dict, target: Path, opts: _Options) -> engine.MergeReport:
    base = pinned[spec.base][2] if spec.base else None
    inputs = [MergeInput(pinned[m.ref][2], m.params) for m in spec.models]
    return engine.merge_folders(
        inputs,
        base,
        spec.method,
        spec.params,
        target,
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        tokenizer_source=spec.tokenizer_source,
        device=opts.device,
        allow_pickle=opts.allow_pickle,
        progress=opts.progress,
        seed=spec.seed,
    )


def _search(
    spec: MergeSpec, recipe: Recipe, pinned: dict, opts: _Options, tmp: Path
) -> tuple[MergeSpec, dict[str, Any]]:
    """Run zoo.search: candidates merged quietly and scored on the dev task folders."""
    from zoo.eval import evaluate
    from zoo.pipelines.search import run_search

    dirs = recipe.zoo.search.task_dirs
    quiet = replace(opts, progress=False)

    def merge_to(candidate: MergeSpec, out: Path) -> None:
        _run_engine(candidate, pinned, out, quiet)

    def score(path: Path) -> dict[str, float]:
        return {t.name: t.score for t in evaluate(path, task_dirs=dirs, progress=False).tasks}

    paths = [pinned[m.ref][2] for m in spec.models]
    chosen, result = run_search(spec, recipe.zoo.search, paths, merge_to, score, tmp / "search")
    return chosen, result.to_json()


def _dry_run(
    h: Hub | None, spec: MergeSpec, recipe: Recipe, tmp: Path, opts: _Options
) -> MergeOutcome:
    """Resolve and plan without downloading a weight byte (safetensors headers only)."""
    paths, pinned = {}, {}
    for i, ref in enumerate(spec.refs()):
        if _is_local(ref):
            paths[ref], pinned[ref] = Path(ref).expanduser().resolve(), ref
        else:
            sha, _ = client.pull_skeleton(h, ModelRef.parse(ref), tmp / str(i))
            paths[ref], pinned[ref] = tmp / str(i), f"{ModelRef.parse(ref).repo_id}@{sha}"
    plan = engine.plan(
        [MergeInput(paths[m.ref], m.params) for m in spec.models],
        paths[spec.base] if spec.base else None,
        spec.method,
        spec.params,
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        tokenizer_source=spec.tokenizer_source,
        device=opts.device,
        allow_pickle=opts.allow_pickle,
    )
    data = {
        "method": spec.method,
        "params": spec.params,
        "seed": spec.seed,
        "base": pinned.get(spec.base) if spec.base else None,
        "models": [{"ref": pinned[m.ref], "params": m.params} for m in spec.models],
        "tensors_to_merge": plan.tensors_to_merge,
        "tensors": len(plan.tasks),
        "out_files": list(plan.out_files),
        "out_bytes": plan.out_bytes,
        "estimated_peak_bytes": plan.peak_bytes,
        "device": plan.device,
    }
    return MergeOutcome(lock=None, plan=data)


def _plan_dict(spec: MergeSpec, lock: Lock) -> dict[str, Any]:
    return {
        "method": spec.method,
        "params": spec.params,
        "seed": spec.seed,
        "base": lock.base.pinned if lock.base else None,
        "models": [{"ref": m.pinned, "params": m.params} for m in lock.models],
    }


def _default_name(recipe: Recipe) -> str:
    if recipe.zoo.publish:
        return recipe.zoo.publish.repo_id.replace("/", "--")
    return Path(recipe.source).stem if recipe.source != "<recipe>" else "merged"


def _evaluate(
    recipe: Recipe, spec: MergeSpec, pinned: dict, target: Path, opts: _Options
) -> dict[str, Any]:
    """Evaluate base, every parent and the merged model on the recipe's tasks; write the files."""
    from zoo.pipelines import evaluation as ev

    ev_spec = recipe.zoo.eval
    entrants = (
        [ev.Entrant("base", pinned[spec.base][0], pinned[spec.base][2], _sha(pinned[spec.base][0]))]
        if spec.base
        else []
    )
    entrants += [
        ev.Entrant(
            ev.label_of(pinned[m.ref][0]),
            pinned[m.ref][0],
            pinned[m.ref][2],
            _sha(pinned[m.ref][0]),
        )
        for m in spec.models
        if m.ref != spec.base
    ]
    entrants.append(ev.Entrant(ev.MERGED, str(target), target))
    reports = ev.evaluate_lineup(
        entrants, tasks=ev_spec.tasks, task_dirs=ev_spec.task_dirs, progress=opts.progress
    )
    results = ev.card_results(entrants, reports)
    name = recipe.zoo.publish.repo_id if recipe.zoo.publish else target.name
    ev.write_eval_files(target, results, reports, name)
    return results


def _sha(pinned: str) -> str | None:
    return pinned.split("@")[1] if "@" in pinned and not _is_local(pinned) else None


def _write_extras(
    target: Path,
    recipe: Recipe,
    lock: Lock,
    h: Hub | None,
    results: dict[str, Any] | None = None,
    searched: dict[str, Any] | None = None,
) -> None:
    """Add the recipe as written, the lock, the search (if run) and (for Hub inputs) zoo.json."""
    (target / RECIPE_FILE).write_text(recipe.text, encoding="utf-8")
    if searched is not None:
        (target / SEARCH_FILE).write_text(json.dumps(searched, indent=1) + "\n", encoding="utf-8")
    (target / LOCK_FILE).write_text(lock.to_json(), encoding="utf-8")
    meta = merged_metadata(lock, h)
    if meta is not None and results:
        meta = meta.model_copy(update={"scores": dict(results["scores"]["merged"])})
    if meta is not None:
        (target / "zoo.json").write_text(meta.to_json(), encoding="utf-8")


def merged_metadata(lock: Lock, h: Hub | None) -> ZooMetadata | None:
    """kind=merged with parents@sha; None when an input is a local folder (no pinned lineage)."""
    items = lock.inputs()
    if h is None or any(_is_local(i.pinned) for i in items):
        return None
    parents = tuple(m.pinned for m in lock.models)
    base = lock.base.pinned if lock.base else _common_base(h, parents)
    return ZooMetadata(
        kind="merged",
        base_model=base,
        parents=parents,
        labels={"merge_method": lock.method, "recipe_sha256": lock.recipe_sha256},
    )


def _common_base(h: Hub, parents: tuple[str, ...]) -> str:
    bases = []
    for ref in parents:
        repo, _, sha = ref.partition("@")
        meta = client.read_metadata(h, repo, sha)
        bases.append(meta.base_model if meta and meta.base_model else ref)
    return max(set(bases), key=bases.count) if bases else parents[0]


def _meta_dict(h: Hub, ref: str) -> dict | None:
    repo, _, sha = ref.partition("@")
    meta = client.read_metadata(h, repo, sha)
    return meta.model_dump(mode="json") if meta else None


def _publish(
    h: Hub, target: Path, recipe: Recipe, results: dict[str, Any] | None
) -> tuple[str, str]:
    pub = recipe.zoo.publish
    zoo_json = target / "zoo.json"
    if not zoo_json.is_file():
        raise UserError(
            "publishing needs every input on the hub, pinned (lineage); "
            "push local inputs first with `zoo push`"
        )
    meta = ZooMetadata.model_validate_json(zoo_json.read_text())
    tag = pub.tag or client.next_version_tag(h, pub.repo_id)
    lock_text = (target / LOCK_FILE).read_text()
    edges = client.lineage(h, pub.repo_id, meta)
    parents = {p: _meta_dict(h, p) for p in meta.parents}
    search_file = target / SEARCH_FILE
    searched = json.loads(search_file.read_text()) if search_file.is_file() else None
    card = merged_card(
        pub.repo_id,
        meta.model_dump(mode="json"),
        recipe.text,
        lock_text,
        edges=edges,
        parents_meta=parents,
        results=results,
        plot=results is not None,
        search=searched,
    )
    sha = client.push_member(
        h,
        target,
        pub.repo_id,
        meta,
        card,
        private=pub.private,
        tag=tag,
        message=f"zoo merge: {meta.labels.get('merge_method')} of {len(meta.parents)} models",
    )
    return f"{pub.repo_id}@{sha}", tag
