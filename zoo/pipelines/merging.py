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
from zoo.hub.session import Hub
from zoo.merge import prepared
from zoo.pipelines.merge_inputs import (
    Input,
    fetch,
    plan_merge,
    push_inputs,
    run_engine,
    selected,
)
from zoo.pipelines.merge_job import MergeJob, MergeOptions
from zoo.pipelines.multi_merge import run_steps
from zoo.pipelines.published import merged_record, publish_record
from zoo.recipe.lock import LOCK_FILE, Lock, LockedMerge, build_lock, load_lock
from zoo.recipe.multi import MultiRecipe, load_multi
from zoo.recipe.plan import MergeSpec, merge_spec
from zoo.recipe.schema import Recipe
from zoo.types import is_local_ref


@dataclass
class MergeOutcome:
    """What `zoo merge` did: the lock, and (unless dry-run) the output and publication."""

    lock: Lock | None
    plan: dict[str, Any]
    out: Path | None = None
    report: prepared.MergeReport | None = None
    published: str | None = None
    tag: str | None = None
    pr_url: str | None = None  # with pr: the pull request that proposes the published commit
    results: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


def prepare_merge(
    recipe: Path | Recipe | None = None,
    lock_path: Path | None = None,
    options: MergeOptions | None = None,
) -> MergeJob:
    """Load the recipe (or re-run lock_path) and check the options against it; no network."""
    options = options or MergeOptions()
    loaded, lock = _load(recipe, lock_path)
    _check(loaded.final, lock, options)
    job = MergeJob(loaded.final, lock, options, loaded.steps, loaded.name)
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
        built, steps, plans = run_steps(hub, job, Path(tmp))
        spec = job.lock.spec() if job.lock else merge_spec(recipe, selected(hub, recipe))
        if opts.dry_run:
            return _dry_run(hub, spec, Path(tmp) / "final", opts, built, plans)
        pushed = push_inputs(hub, spec, recipe, opts)
        inputs = fetch(hub, spec, job.lock, pushed, built)
        searched = None
        if opts.search:
            spec, searched = _search(spec, recipe, inputs, opts, Path(tmp))
        pins = {r: (i.pinned, i.files) for r, i in inputs.items()}
        lock = job.lock or build_lock(
            spec, recipe.text, recipe.sha256, pins, name=job.name, steps=steps
        )
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
    report = run_engine(spec, inputs, target, opts)
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


def _load(recipe: Path | Recipe | None, lock_path: Path | None) -> tuple[MultiRecipe, Lock | None]:
    if lock_path is not None:
        lock = load_lock(lock_path)
        loaded = load_multi(lock.recipe)
        if [s.name for s in lock.steps] != list(loaded.names) or lock.name != loaded.name:
            raise UserError(f"{lock_path}: invalid lock (its merges are not its recipe's)")
        return loaded, lock
    if recipe is None:
        raise UserError("give a recipe file or --lock FILE")
    return (MultiRecipe(recipe) if isinstance(recipe, Recipe) else load_multi(recipe)), None


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


def _search(
    spec: MergeSpec, recipe: Recipe, inputs: dict[str, Input], opts: MergeOptions, tmp: Path
) -> tuple[MergeSpec, dict[str, Any]]:
    """Run zoo.search: candidates merged quietly and scored on the dev task folders."""
    from zoo.eval import evaluate
    from zoo.pipelines.search import run_search

    dirs = recipe.zoo.search.task_dirs
    quiet = replace(opts, progress=False)

    def merge_to(candidate: MergeSpec, out: Path) -> None:
        run_engine(candidate, inputs, out, quiet)

    def score(path: Path) -> dict[str, float]:
        return {t.name: t.score for t in evaluate(path, task_dirs=dirs, progress=False).tasks}

    paths = [inputs[m.ref].path for m in spec.models]
    chosen, result = run_search(spec, recipe.zoo.search, paths, merge_to, score, tmp / "search")
    return chosen, result.to_json()


def _dry_run(
    h: Hub | None,
    spec: MergeSpec,
    tmp: Path,
    opts: MergeOptions,
    built: dict[str, Input],
    merges: list[dict[str, Any]],
) -> MergeOutcome:
    """Resolve and plan without downloading a weight byte (safetensors headers only)."""
    _, data = plan_merge(h, spec, tmp, opts, built)
    data.pop("paths")
    if merges:
        data["merges"] = merges
    return MergeOutcome(lock=None, plan=data)


def _plan_dict(spec: MergeSpec, lock: LockedMerge) -> dict[str, Any]:
    steps = lock.merges()[:-1]  # a multi-merge's earlier merges
    return {
        **({"name": lock.name} if lock.name else {}),
        "method": spec.method,
        "params": spec.params,
        "seed": spec.seed,
        "base": lock.base.pinned if lock.base else None,
        "models": [{"ref": m.ref, "params": m.params} for m in lock.models],
        **({"merges": [_plan_dict(s.spec(), s) for s in steps]} if steps else {}),
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
        if m.ref != spec.base and not m.adapter
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
