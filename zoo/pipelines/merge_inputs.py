"""A merge's inputs: pulled at their pinned commits and hash-checked, local folders, both parts of
a 'model+adapter', a multi-merge's earlier outputs; and the engine run or planned on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.hashing import folder_digest
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.merge import engine
from zoo.merge.planning import MergeInput
from zoo.pipelines.members import push
from zoo.recipe.lock import LockedMerge, check_files
from zoo.recipe.plan import Candidate, MergeSpec, select
from zoo.recipe.schema import Recipe
from zoo.types import ModelRef, is_local_ref

if TYPE_CHECKING:
    from zoo.pipelines.merging import MergeOptions


@dataclass(frozen=True)
class Input:
    """One merge input, pinned: the ref it is pinned to, its files' sha256, its local folder."""

    pinned: str
    files: dict[str, str]
    path: Path


def selected(h: Hub | None, recipe: Recipe) -> list[str] | None:
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


def push_inputs(
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


def fetch(
    h: Hub | None,
    spec: MergeSpec,
    lock: LockedMerge | None,
    pushed: dict[str, str],
    built: dict[str, Input],
) -> dict[str, Input]:
    """Pull every input at its pinned commit (a pushed local input: at its new commit; an
    earlier merge of a multi-merge: its output, built)."""
    locked = {i.pinned: i for i in lock.inputs()} if lock else {}
    out = {}
    for ref in spec.refs():
        source = pushed.get(ref, ref)
        if ref in built:
            path, pinned = built[ref].path, built[ref].pinned
        elif is_local_ref(source):
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


def merge_inputs(spec: MergeSpec, paths: dict[str, Path]) -> list[MergeInput]:
    """The engine's inputs; a 'model+adapter' is the adapter folded into the model."""
    return [
        MergeInput(paths[m.adapter], m.params, adapter_base=paths[m.ref])
        if m.adapter
        else MergeInput(paths[m.ref], m.params)
        for m in spec.models
    ]


def run_engine(
    spec: MergeSpec, inputs: dict[str, Input], target: Path, opts: MergeOptions
) -> engine.MergeReport:
    base = inputs[spec.base].path if spec.base else None
    return engine.merge_folders(
        merge_inputs(spec, {r: i.path for r, i in inputs.items()}),
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


def plan_merge(
    h: Hub | None, spec: MergeSpec, tmp: Path, opts: MergeOptions, built: dict[str, Input]
) -> tuple[engine.MergePlan, dict[str, Any]]:
    """The engine's plan of spec from headers alone, and its plain data ('paths': the folders)."""
    paths, pinned = {}, {}
    for i, ref in enumerate(spec.refs()):
        if ref in built:
            paths[ref], pinned[ref] = built[ref].path, built[ref].pinned
        elif is_local_ref(ref):
            paths[ref], pinned[ref] = Path(ref).expanduser().resolve(), ref
        else:
            sha, _ = client.pull_skeleton(h, ModelRef.parse(ref), tmp / str(i))
            paths[ref], pinned[ref] = tmp / str(i), f"{ModelRef.parse(ref).repo_id}@{sha}"
    plan = engine.plan(
        merge_inputs(spec, paths),
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
        "models": [_plan_model(m, pinned) for m in spec.models],
        "tensors_to_merge": plan.tensors_to_merge,
        "tensors": len(plan.tasks),
        "out_files": list(plan.out_files),
        "out_bytes": plan.out_bytes,
        "estimated_peak_bytes": plan.peak_bytes,
        "device": plan.device,
        "paths": paths,
    }
    return plan, data


def _plan_model(m: Any, pinned: dict[str, str]) -> dict[str, Any]:
    ref = f"{pinned[m.ref]}+{pinned[m.adapter]}" if m.adapter else pinned[m.ref]
    return {"ref": ref, "params": m.params}
