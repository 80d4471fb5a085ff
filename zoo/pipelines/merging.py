"""`zoo merge`: recipe -> select -> pin (lock) -> pull -> merge out of core -> package -> publish.

Two steps: `prepare_merge` loads and checks the recipe (or lock) and says whether a Hub is needed
and written to; `merge(hub, job)` runs it with that Hub open (None when no Hub is needed).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.hashing import folder_digest
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.merge import engine
from zoo.merge.planning import MergeInput
from zoo.pipelines.members import push
from zoo.pipelines.published import merged_record, publish_record
from zoo.recipe.lock import LOCK_FILE, Lock, build_lock, check_files, load_lock
from zoo.recipe.plan import Candidate, MergeSpec, merge_spec, select, tokenizer_refs
from zoo.recipe.schema import Recipe, load_recipe
from zoo.types import ModelRef, is_local_ref


@dataclass
class MergeOutcome:
    """What `zoo merge` did: the lock, and (unless dry-run) the output and publication."""

    lock: Lock | None
    plan: dict[str, Any]
    out: Path | None = None
    report: engine.MergeReport | None = None
    published: str | None = None
    tag: str | None = None
    pr_url: str | None = None  # with pr: the pull request that proposes the published commit
    results: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


@dataclass(frozen=True)
class MergeOptions:
    """How to run a merge (the `zoo merge` flags)."""

    out: Path | None = None  # None: merged/<name>, replaced by a later run of the same recipe
    publish: bool = False
    pr: bool = False  # with publish: open a pull request on the target repo, not a push to main
    dry_run: bool = False
    search: bool = False  # run the recipe's zoo.search and merge its best candidate
    push_inputs: bool = False  # push local inputs to the Hub first, pinned, for the lineage
    device: str = "cpu"
    allow_pickle: bool = False
    progress: bool = True


@dataclass(frozen=True)
class MergeJob:
    """A loaded, checked merge: the recipe, its lock (when re-running one), the options."""

    recipe: Recipe
    lock: Lock | None
    options: MergeOptions

    def refs(self) -> list[str]:
        """The inputs as the lock pins them or the recipe names them (not the selected ones)."""
        return [i.pinned for i in self.lock.inputs()] if self.lock else _recipe_refs(self.recipe)

    @property
    def writes_hub(self) -> bool:
        """True when the merge pushes to the Hub (its directory is then created if missing)."""
        o = self.options
        return (o.publish or o.push_inputs) and not o.dry_run

    @property
    def needs_hub(self) -> bool:
        """True when the merge talks to a Hub: it writes, selects, or has a Hub input."""
        selects = self.recipe.zoo.select is not None and self.lock is None
        return self.writes_hub or selects or any(not is_local_ref(r) for r in self.refs())


@dataclass(frozen=True)
class Input:
    """One merge input, pinned: the ref it is pinned to, its files' sha256, its local folder."""

    pinned: str
    files: dict[str, str]
    path: Path


def prepare_merge(
    recipe: Path | Recipe | None = None,
    lock_path: Path | None = None,
    options: MergeOptions = MergeOptions(),
) -> MergeJob:
    """Load the recipe (or re-run lock_path) and check the options against it; no network."""
    loaded, lock = _load(recipe, lock_path)
    _check(loaded, lock, options)
    job = MergeJob(loaded, lock, options)
    _check_lineage(job)
    return job


def merge(hub: Hub | None, job: MergeJob) -> MergeOutcome:
    """Run a prepared merge end to end; see the module docstring for the stages.

    hub: the open Hub (None only when not job.needs_hub). Writes only the output folder
    (atomically, via the engine) and, with publish, one commit + tag (and one per pushed input).
    """
    if hub is None and job.needs_hub:
        raise UserError(f"{job.recipe.source}: this merge needs a hub (--hub)")
    recipe, opts = job.recipe, job.options
    with tempfile.TemporaryDirectory(prefix="zoo-merge-") as tmp:
        spec = job.lock.spec() if job.lock else merge_spec(recipe, _selected(hub, recipe))
        if opts.dry_run:
            return _dry_run(hub, spec, Path(tmp), opts)
        inputs = _fetch(hub, spec, job.lock, _push_inputs(hub, spec, recipe, opts))
        searched = None
        if opts.search:
            spec, searched = _search(spec, recipe, inputs, opts, Path(tmp))
        pins = {r: (i.pinned, i.files) for r, i in inputs.items()}
        lock = job.lock or build_lock(spec, recipe.text, recipe.sha256, pins)
        with _output(recipe, opts.out) as target:
            outcome = _merge_into(hub, target, recipe, spec, inputs, lock, searched, opts)
    return outcome


def _merge_into(
    hub: Hub | None,
    target: Path,
    recipe: Recipe,
    spec: MergeSpec,
    inputs: dict[str, Input],
    lock: Lock,
    searched: dict[str, Any] | None,
    opts: MergeOptions,
) -> MergeOutcome:
    """Merge, evaluate, write the record once, and (with publish) push it."""
    report = _run_engine(spec, inputs, target, opts)
    results = _evaluate(recipe, spec, inputs, target, opts) if recipe.zoo.eval else None
    record = merged_record(hub, recipe.text, lock, results, searched)
    record.write(target)
    outcome = MergeOutcome(
        lock, _plan_dict(spec, lock), target, report, results=results, search=searched
    )
    if opts.publish:
        done = publish_record(hub, target, record, recipe.zoo.publish, pr=opts.pr)
        outcome.published, outcome.tag, outcome.pr_url = done.ref, done.tag, done.pr_url
    return outcome


def _load(recipe: Path | Recipe | None, lock_path: Path | None) -> tuple[Recipe, Lock | None]:
    if lock_path is not None:
        lock = load_lock(lock_path)
        return load_recipe(lock.recipe), lock
    if recipe is None:
        raise UserError("give a recipe file or --lock FILE")
    return (recipe if isinstance(recipe, Recipe) else load_recipe(recipe)), None


def _check(recipe: Recipe, lock: Lock | None, opts: MergeOptions) -> None:
    if opts.search and (lock is not None or recipe.zoo.search is None):
        raise UserError(
            "--search runs a recipe's zoo.search block (task_dirs and grid or greedy); "
            + ("a lock already records the chosen weights" if lock else f"{recipe.source} has none")
        )
    if opts.pr and not opts.publish:
        raise UserError("--pr opens a pull request with the published model: it needs --publish")
    if opts.publish and recipe.zoo.publish is None:
        raise UserError(f"{recipe.source}: --publish needs zoo.publish.repo_id in the recipe")
    if opts.push_inputs and recipe.zoo.publish is None:
        raise UserError(
            f"{recipe.source}: --push-inputs names the input repos after zoo.publish.repo_id's "
            "namespace; the recipe has no zoo.publish"
        )
    if opts.out is not None and opts.out.exists() and not opts.dry_run:
        raise UserError(f"--out {opts.out} already exists; remove it or choose another folder")


def _check_lineage(job: MergeJob) -> None:
    """Publishing records every parent pinned: refuse local inputs before any work."""
    local = [r for r in job.refs() if is_local_ref(r)]
    if job.options.publish and local and not job.options.push_inputs and not job.options.dry_run:
        raise UserError(
            f"publishing needs every input on the hub, pinned (lineage), and {local[0]} is a "
            "local folder; pass --push-inputs to push local inputs first (or `zoo push` them)"
        )


def _push_inputs(
    h: Hub | None, spec: MergeSpec, recipe: Recipe, opts: MergeOptions
) -> dict[str, str]:
    """With push_inputs, push each local input as NAMESPACE/<folder name>; {ref: repo@sha}.

    NAMESPACE is zoo.publish.repo_id's; the kind is the folder's zoo.json's, else base.
    """
    if not opts.push_inputs:
        return {}
    namespace = recipe.zoo.publish.repo_id.split("/")[0]
    pushed = {}
    for ref in spec.refs():
        if is_local_ref(ref):
            folder = Path(ref).expanduser().resolve()
            sha, _ = push(h, folder, f"{namespace}/{folder.name}")
            pushed[ref] = f"{namespace}/{folder.name}@{sha}"
    return pushed


@contextlib.contextmanager
def _output(recipe: Recipe, out: Path | None) -> Iterator[Path]:
    """out as given; else merged/<name>, where an earlier merge's output (it holds a lock) is
    replaced once this one succeeds, and put back if it fails."""
    target = out or Path("merged") / _default_name(recipe)
    if out is not None or not target.exists():
        yield target
        return
    if not (target / LOCK_FILE).is_file():
        raise UserError(
            f"{target} exists and is not a zoo merge output; remove it or choose --out DIR"
        )
    old = target.with_name(f".{target.name}.zoo-old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    try:
        yield target
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        old.rename(target)
        raise
    shutil.rmtree(old)


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
    h: Hub | None, spec: MergeSpec, lock: Lock | None, pushed: dict[str, str]
) -> dict[str, Input]:
    """Pull every input at its pinned commit (a pushed local input: at its new commit)."""
    locked = {i.pinned: i for i in lock.inputs()} if lock else {}
    out = {}
    for ref in spec.refs():
        source = pushed.get(ref, ref)
        if is_local_ref(source):
            path = Path(source).expanduser().resolve()
            pinned = str(path)
        else:
            pulled = client.pull_member(h, ModelRef.parse(source))
            path, pinned = pulled.path, f"{pulled.repo_id}@{pulled.sha}"
        files = folder_digest(path)
        if ref in locked:
            check_files(locked[ref], files)
        out[ref] = Input(pinned, files, path)
    return out


def _run_engine(
    spec: MergeSpec, inputs: dict[str, Input], target: Path, opts: MergeOptions
) -> engine.MergeReport:
    return engine.merge_folders(
        **_engine_inputs(spec, {ref: i.path for ref, i in inputs.items()}),
        out=target,
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        device=opts.device,
        allow_pickle=opts.allow_pickle,
        progress=opts.progress,
        seed=spec.seed,
        mergekit_seed=spec.random_seed,
    )


def _engine_inputs(spec: MergeSpec, paths: dict[str, Path]) -> dict[str, Any]:
    """The engine's inputs, base, method, parameters, slices and tokenizer settings, with refs
    made local paths."""
    tokenizer_source, tokenizer = tokenizer_refs(spec, paths.__getitem__)
    slices = None
    if spec.slices:
        slices = [
            engine.OutputSlice(
                tuple(MergeInput(paths[s.ref], s.params) for s in sl.sources),
                tuple(s.layer_range for s in sl.sources),
                paths[sl.base] if sl.base else None,
                sl.params,
            )
            for sl in spec.slices
        ]
    return {
        "inputs": [] if slices else [MergeInput(paths[m.ref], m.params) for m in spec.models],
        "base": paths[spec.base] if spec.base else None,
        "method": spec.method,
        "params": spec.scopes,
        "slices": slices,
        "tokenizer_source": tokenizer_source,
        "tokenizer": tokenizer,
        "chat_template": spec.chat_template,
    }


def _search(
    spec: MergeSpec, recipe: Recipe, inputs: dict[str, Input], opts: MergeOptions, tmp: Path
) -> tuple[MergeSpec, dict[str, Any]]:
    """Run zoo.search: candidates merged quietly and scored on the dev task folders."""
    from zoo.eval import evaluate
    from zoo.pipelines.search import run_search

    dirs = recipe.zoo.search.task_dirs
    quiet = replace(opts, progress=False)

    def merge_to(candidate: MergeSpec, out: Path) -> None:
        _run_engine(candidate, inputs, out, quiet)

    def score(path: Path) -> dict[str, float]:
        return {t.name: t.score for t in evaluate(path, task_dirs=dirs, progress=False).tasks}

    paths = [inputs[m.ref].path for m in spec.models]
    chosen, result = run_search(spec, recipe.zoo.search, paths, merge_to, score, tmp / "search")
    return chosen, result.to_json()


def _dry_run(h: Hub | None, spec: MergeSpec, tmp: Path, opts: MergeOptions) -> MergeOutcome:
    """Resolve and plan without downloading a weight byte (safetensors headers only)."""
    paths, pinned = {}, {}
    for i, ref in enumerate(spec.refs()):
        if is_local_ref(ref):
            paths[ref], pinned[ref] = Path(ref).expanduser().resolve(), ref
        else:
            sha, _ = client.pull_skeleton(h, ModelRef.parse(ref), tmp / str(i))
            paths[ref], pinned[ref] = tmp / str(i), f"{ModelRef.parse(ref).repo_id}@{sha}"
    plan = engine.plan(
        **_engine_inputs(spec, paths),
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
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
        "tokenizer": spec.tokenizer if spec.tokenizer is not None else spec.tokenizer_source,
        "vocab_rows": plan.vocab_rows,
        "chat_template": spec.chat_template,
    }
    if spec.slices:
        data["slices"] = _slices_plan(spec, plan, pinned)
    data["tensor_plan"] = [
        {"name": t.key, "slice": t.part, "action": spec.method if t.kind == "merge" else "copy"}
        | ({"t": round(t.t, 6)} if t.kind == "merge" else {})
        for t in plan.tasks
    ]
    return MergeOutcome(lock=None, plan=data)


def _slices_plan(spec: MergeSpec, plan: engine.MergePlan, pinned: dict[str, str]) -> list[dict]:
    """Each output slice of a dry run: its output layers, base, parameters and sources."""
    return [
        {
            "layers": list(planned.layers),
            "base": pinned[sl.base or spec.base] if (sl.base or spec.base) else None,
            "params": sl.params,
            "sources": [
                {"ref": pinned[s.ref], "layer_range": list(s.layer_range), "params": s.params}
                for s in sl.sources
            ],
        }
        for sl, planned in zip(spec.slices, plan.slices)
    ]


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
    recipe: Recipe, spec: MergeSpec, inputs: dict[str, Input], target: Path, opts: MergeOptions
) -> dict[str, Any]:
    """Evaluate base, every parent and the merged model on the recipe's tasks; write the files."""
    from zoo.pipelines import evaluation as ev

    def entrant(label: str, i: Input) -> ev.Entrant:
        return ev.Entrant(label, i.pinned, i.path, _sha(i.pinned))

    entrants = [entrant("base", inputs[spec.base])] if spec.base else []
    entrants += [
        entrant(ev.label_of(inputs[m.ref].pinned), inputs[m.ref])
        for m in spec.models
        if m.ref != spec.base
    ]
    entrants.append(ev.Entrant(ev.MERGED, str(target), target))
    tasks = recipe.zoo.eval
    reports = ev.evaluate_lineup(
        entrants, tasks=tasks.tasks, task_dirs=tasks.task_dirs, progress=opts.progress
    )
    results = ev.card_results(entrants, reports)
    name = recipe.zoo.publish.repo_id if recipe.zoo.publish else target.name
    ev.write_eval_files(target, results, reports, name)
    return results


def _sha(pinned: str) -> str | None:
    return pinned.split("@")[1] if "@" in pinned and not is_local_ref(pinned) else None
