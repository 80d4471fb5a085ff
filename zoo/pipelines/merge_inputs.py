"""A merge's inputs: pulled at their pinned commits and hash-checked, local folders, both parts of
a 'model+adapter', a multi-merge's earlier outputs; and the engine run or planned on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.hashing import folder_digest
from zoo.hub import client
from zoo.hub.session import Hub
from zoo.merge import prepared
from zoo.merge.planning import MergeInput
from zoo.merge.skeleton import write_skeleton
from zoo.pipelines.members import push
from zoo.pipelines.merge_job import MergeOptions
from zoo.recipe.lock import LockedMerge, check_files
from zoo.recipe.plan import Candidate, MergeSpec, select, tokenizer_refs
from zoo.recipe.schema import Recipe
from zoo.types import ModelRef, is_local_ref


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
        if ref in built:  # an earlier merge's output, hashed when it was written
            path, pinned, files = built[ref].path, built[ref].pinned, built[ref].files
        elif is_local_ref(source):
            path = Path(source).expanduser().resolve()
            pinned, files = str(path), folder_digest(path)
        else:
            pulled = client.pull_member(h, ModelRef.parse(source))
            path, pinned = pulled.path, f"{pulled.repo_id}@{pulled.sha}"
            files = folder_digest(path)
        if ref in locked:
            check_files(locked[ref], files)
        out[ref] = Input(pinned, files, path)
    return out


def engine_inputs(spec: MergeSpec, paths: dict[str, Path]) -> dict[str, Any]:
    """The engine's inputs, base, method, parameters, slices and tokenizer settings, with refs
    made local paths; a 'model+adapter' is the adapter folded into the model."""
    tokenizer_source, tokenizer = tokenizer_refs(spec, paths.__getitem__)
    slices = None
    if spec.slices:
        slices = [
            prepared.OutputSlice(
                tuple(MergeInput(paths[s.ref], s.params) for s in sl.sources),
                tuple(s.layer_range for s in sl.sources),
                paths[sl.base] if sl.base else None,
                sl.params,
            )
            for sl in spec.slices
        ]
    inputs = [
        MergeInput(paths[m.adapter], m.params, adapter_base=paths[m.ref])
        if m.adapter
        else MergeInput(paths[m.ref], m.params)
        for m in spec.models
    ]
    return {
        "inputs": [] if slices else inputs,
        "base": paths[spec.base] if spec.base else None,
        "method": spec.method,
        "params": spec.scopes,
        "slices": slices,
        "tokenizer_source": tokenizer_source,
        "tokenizer": tokenizer,
        "chat_template": spec.chat_template,
    }


def run_engine(
    spec: MergeSpec, inputs: dict[str, Input], target: Path, opts: MergeOptions
) -> prepared.MergeReport:
    from zoo.merge import engine  # imports torch: only a real merge needs it

    return engine.merge_folders(
        **engine_inputs(spec, {ref: i.path for ref, i in inputs.items()}),
        out=target,
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        device=opts.device,
        threads=opts.threads,
        allow_pickle=opts.allow_pickle,
        progress=opts.progress,
        seed=spec.seed,
        mergekit_seed=spec.random_seed,
    )


def write_skeleton_of(
    spec: MergeSpec, paths: dict[str, Path], out: Path, opts: MergeOptions
) -> None:
    """Write into out what merging spec would, without a weight byte (zoo.merge.skeleton)."""
    write_skeleton(
        out,
        **engine_inputs(spec, paths),
        dtype=spec.dtype,
        out_dtype=spec.out_dtype,
        device=opts.device,
        allow_pickle=opts.allow_pickle,
    )


def plan_merge(
    h: Hub | None, spec: MergeSpec, tmp: Path, opts: MergeOptions, built: dict[str, Input]
) -> tuple[prepared.MergePlan, dict[str, Any]]:
    """The engine's plan of spec from headers alone, and its plain data ('paths': the folders)."""
    paths, pinned = _skeletons(h, spec, tmp, built)
    plan = prepared.plan(
        **engine_inputs(spec, paths),
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
        "models": [_plan_model(m, pinned) for m in spec.models],
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
    return plan, data | {"paths": paths}


def _skeletons(
    h: Hub | None, spec: MergeSpec, tmp: Path, built: dict[str, Input]
) -> tuple[dict[str, Path], dict[str, str]]:
    """Each input's folder (a Hub one: fetched without its weights) and its pinned ref."""
    paths, pinned = {}, {}
    for i, ref in enumerate(spec.refs()):
        if ref in built:
            paths[ref], pinned[ref] = built[ref].path, built[ref].pinned
        elif is_local_ref(ref):
            paths[ref], pinned[ref] = Path(ref).expanduser().resolve(), ref
        else:
            sha, _ = client.pull_skeleton(h, ModelRef.parse(ref), tmp / str(i))
            paths[ref], pinned[ref] = tmp / str(i), f"{ModelRef.parse(ref).repo_id}@{sha}"
    return paths, pinned


def _slices_plan(spec: MergeSpec, plan: prepared.MergePlan, pinned: dict[str, str]) -> list[dict]:
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


def _plan_model(m: Any, pinned: dict[str, str]) -> dict[str, Any]:
    ref = f"{pinned[m.ref]}+{pinned[m.adapter]}" if m.adapter else pinned[m.ref]
    return {"ref": ref, "params": m.params}
