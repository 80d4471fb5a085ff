"""A multi-merge's earlier merges, run in dependency order before the final one.

Each runs like a merge of its own into a scratch folder; its output is then an input of the
merges that name it, pinned in the lock as 'merge:NAME' with the sha256 of every file it wrote.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.hashing import folder_digest
from zoo.hub.session import Hub
from zoo.pipelines.merge_inputs import (
    Input,
    fetch,
    plan_merge,
    push_inputs,
    run_engine,
    selected,
    write_skeleton_of,
)
from zoo.pipelines.merge_job import MergeJob
from zoo.recipe.lock import LockedStep, locked_merge
from zoo.recipe.multi import label, step_ref
from zoo.recipe.plan import merge_spec


def run_steps(
    h: Hub | None, job: MergeJob, tmp: Path
) -> tuple[dict[str, Input], tuple[LockedStep, ...], list[dict[str, Any]]]:
    """Run a multi-merge's earlier merges in order into tmp/merges/NAME (dry: plan each, its
    output a skeleton); return the outputs by name and by 'merge:NAME', the locked steps, and
    (dry) the plans. Re-running a lock, each output must have the sha256 the lock records."""
    built: dict[str, Input] = {}
    locked, plans = [], []
    quiet = replace(job.options, progress=False)
    for i, step in enumerate(job.steps):
        was = job.lock.steps[i] if job.lock else None
        spec = was.spec() if was else merge_spec(step.recipe, selected(h, step.recipe))
        out = tmp / "merges" / step.name
        if job.options.dry_run:
            _, data = plan_merge(h, spec, tmp / f"step-{i}", job.options, built)
            write_skeleton_of(spec, data.pop("paths"), out, job.options)
            built[step.name] = built[step_ref(step.name)] = Input(step_ref(step.name), {}, out)
            plans.append({"name": step.name, **data})
            continue
        pushed = push_inputs(h, spec, job.recipe, job.options)
        inputs = fetch(h, spec, was, pushed, built)
        report = run_engine(spec, inputs, out, quiet)
        files = folder_digest(out, known=report.files)  # hashed while written: nothing re-read
        _check_outputs(step.name, files, was)
        pins = {ref: (got.pinned, got.files) for ref, got in inputs.items()}
        locked.append(LockedStep(outputs=files, **locked_merge(spec, pins, step.name)))
        built[step.name] = built[step_ref(step.name)] = Input(step_ref(step.name), files, out)
    return built, tuple(locked), plans


def _check_outputs(name: str, files: dict[str, str], was: LockedStep | None) -> None:
    if was is not None and files != was.outputs:
        differ = sorted(set(files.items()) ^ set(was.outputs.items()))[0][0]
        raise UserError(
            f"merge {label(name)}: its output {differ} differs from the lock's (sha256); "
            "the lock's inputs give other bytes here"
        )
