"""Which tensors a merge runs in row chunks, and how many rows each chunk holds (no torch).

A tensor is merged in chunks when its whole-tensor working set (K inputs in the compute dtype,
the kernel's scratch, the output) would exceed the chunk budget and its method has a chunked
kernel (`MergeMethod.chunked`); zoo.merge.chunking runs the chunks.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from zoo.merge import dtypes

DEFAULT_CHUNK_BYTES = 64 * 2**20
# the compiled loops (zoo.merge.kernels.fused) serve merges of at least this much (one model in
# the compute dtype): numba and LLVM take 117 MiB of resident memory once loaded (measured), 1.35x
# a 22M-parameter model, and at that size the torch operations are as fast (BENCHMARKS.md)
FUSE_MIN_BYTES = 512 * 2**20
MIN_CHUNK_BYTES = 8 * 2**20


def fuses(model_bytes: int) -> bool:
    """Whether a merge of one model of this size (compute dtype) runs the compiled loops where
    they apply; ZOO_FUSED=1 or 0 overrides the size (tests and benchmarks compare the paths)."""
    forced = os.environ.get("ZOO_FUSED")
    return model_bytes >= FUSE_MIN_BYTES if forced not in ("0", "1") else forced == "1"


def working_set(numel: int, itemsize: int, n: int, scratch: tuple[float, float]) -> int:
    """Return the bytes a kernel holds for numel elements of n inputs: inputs + a*n + b + out."""
    a, b = scratch
    return int(numel * itemsize * (n + a * n + b + 1))


def chunk_rows(
    shape: Sequence[int],
    itemsize: int,
    n: int,
    whole_scratch: tuple[float, float],
    chunk_scratch: tuple[float, float],
    budget: int | None,
) -> int | None:
    """Return rows per chunk for a tensor whose whole working set exceeds budget, else None.

    Chunks are whole rows (elements of a 1-D tensor); at least one row, however wide.
    """
    numel = math.prod(shape)
    if budget is None or not shape or not numel:
        return None
    if working_set(numel, itemsize, n, whole_scratch) <= budget:
        return None
    per_row = working_set(numel // shape[0], itemsize, n, chunk_scratch)
    return max(1, min(shape[0], budget // per_row))


def plan_chunks(
    tasks: Sequence[Any],
    sources: Any,
    method: Any,
    compute_dtype: Callable[[Any], str],
    budget: int | None,
    fused: bool = False,
) -> dict[str, int]:
    """Return {tensor key: rows per chunk} for the merge tasks a chunked kernel runs: every
    tensor of at least one dimension of a method that has one (a tensor within the budget is one
    chunk), neither vocabulary-permuted nor LoRA-folded. Half the budget goes to the chunk being
    merged, half to the next one read ahead and the writes still queued (zoo.merge.prefetch).
    budget None: no chunked kernels (every tensor whole, through the method's own kernel).
    fused: the merge is large enough for the compiled loops (their working set applies)."""
    if method.chunked is None or method.delta_scale is not None or budget is None:
        return {}
    chunks = {}
    n = len(sources.items)
    for task in tasks:
        if task.kind != "merge" or task.vocab or not task.shape or not task.shape[0]:
            continue
        if not all(src.can_read_rows(k) for src, k in zip(sources.items, task.keys)):
            continue
        size = dtypes.itemsize(compute_dtype(task))
        scratch = method.chunk_working_set(fused)
        rows = chunk_rows(task.shape, size, n, method.scratch, scratch, budget // 2)
        chunks[task.key] = rows or task.shape[0]
    return chunks


def fitted_budget(budget: int | str | None, model_bytes: int) -> int | None:
    """Return the chunk budget to plan with. "auto": DEFAULT_CHUNK_BYTES, shrunk to a quarter of
    one model (in the compute dtype) but never below MIN_CHUNK_BYTES, so that a small model's
    merge holds about one model beside its inputs' pages. A number (or None) is kept."""
    if budget != "auto":
        return budget
    return min(DEFAULT_CHUNK_BYTES, max(MIN_CHUNK_BYTES, model_bytes // 4))
