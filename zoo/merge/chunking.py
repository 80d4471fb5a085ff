"""Merge large tensors in row chunks: the pass driver (which tensors to chunk, and in how many
rows: zoo.merge.chunk_plan).

A tensor merged in chunks has its rows read a slice at a time (safetensors reads only those
rows), passed through the kernel's statistics passes, and written at their place in the output
file. Peak memory for such a tensor is about the budget, whatever its size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

from zoo.merge.kernels.chunked import ChunkedKernel

# read(a, b, which) -> rows a:b of the sources in `which` (None: all), compute dtype, on device:
# a list of tensors, or one tensor of shape (sources, rows, ...)
Reader = Callable[[int, int, "Sequence[int] | None"], Sequence[torch.Tensor]]
# write(a, rows, checked): output rows starting at row a; checked: they are in the output dtype
# and checked finite already (ChunkedKernel.checked), else the rows of an input or a kernel's
Writer = Callable[[int, torch.Tensor, bool], None]


def row_bounds(rows: int, step: int) -> list[tuple[int, int]]:
    """Return [(a, b), ...] covering rows 0..rows in steps of `step`."""
    return [(a, min(a + step, rows)) for a in range(0, rows, step)]


class RowSchedule:
    """The order in which run_chunked reads one tensor's row chunks: all chunks once per
    statistics pass and once more for the output (or once, for the pass-through reads)."""

    def __init__(self, bounds: Sequence[tuple[int, int]], passes: Callable[[], int]):
        self.bounds = list(bounds)
        self.passes = passes  # asked at every round: a kernel may add passes after its first
        self.seen: Counter = Counter()

    @property
    def rounds(self) -> int:
        return self.passes() + 1 if len(self.bounds) > 1 else 1  # one chunk is read once

    def after(self, a: int, b: int, which: tuple | None) -> tuple[int, int] | None:
        """Record the read of rows a:b of `which`; return the rows read next, if any."""
        n = self.seen[which]
        self.seen[which] += 1
        index, round_ = n % len(self.bounds), n // len(self.bounds)
        if index + 1 < len(self.bounds):
            return self.bounds[index + 1]
        rounds = self.rounds if which is None else 1
        return self.bounds[0] if round_ + 1 < rounds else None


class KeptChunks:
    """One tensor's chunks kept in memory from the first pass for the later ones, when
    `keeping` (the tensor's inputs fit the budget for it): each chunk is read once instead of
    once per pass, and dropped after its last pass (`passes()` + 1 reads, asked each time)."""

    def __init__(self, passes: Callable[[], int], keeping: bool):
        self.passes = passes
        self.keeping = keeping
        self._chunks: dict[tuple[int, int], Any] = {}
        self._reads: Counter = Counter()

    def get(self, a: int, b: int) -> Any | None:
        """Return the kept chunk a:b (counting the read), or None when it is not kept."""
        if (a, b) not in self._chunks:
            return None
        self._reads[a, b] += 1
        if self._reads[a, b] > self.passes():
            return self._chunks.pop((a, b))
        return self._chunks[a, b]

    def put(self, a: int, b: int, chunk: Any) -> Any:
        """Keep chunk a:b read for the first time (when keeping); return it."""
        if self.keeping and self.passes():
            self._chunks[a, b] = chunk
            self._reads[a, b] = 1
        return chunk


def run_chunked(
    kernel: ChunkedKernel,
    read: Reader,
    write: Writer,
    bounds: Sequence[tuple[int, int]],
    identity_on_equal: bool,
) -> bool:
    """Merge one tensor chunk by chunk, writing every output row once, in order.

    Mirrors the engine's whole-tensor rule: identical inputs come back unchanged when they are
    all zero or the method returns equal inputs unchanged. Kernels without statistics passes
    apply the rule chunk by chunk (equal within rounding to applying it to the whole tensor).
    Returns True when the tensor passed through unchanged. Kernel errors propagate.
    """
    if len(bounds) == 1:  # one chunk: read it once for every pass
        whole = read(*bounds[0], None)
        read = in_memory_reader(whole, bounds[0][0])
    if kernel.passes == 0:
        return _single_pass(kernel, read, write, bounds, identity_on_equal)
    equal, nonzero = True, False
    for a, b in bounds:
        chunk = read(a, b, None)
        equal = equal and _all_equal(chunk)
        nonzero = nonzero or bool(torch.any(chunk[0]))
        kernel.observe(0, chunk)
    if equal and (identity_on_equal or not nonzero):
        for a, b in bounds:
            write(a, read(a, b, [0])[0], False)
        return True
    kernel.end_pass(0)
    for p in range(1, kernel.passes):
        for a, b in bounds:
            kernel.observe(p, read(a, b, None))
        kernel.end_pass(p)
    for a, b in bounds:
        _write_parts(write, a, kernel.output_parts(read(a, b, None)), kernel.checked)
    return False


def _write_parts(write: Writer, a: int, parts: Sequence[torch.Tensor], checked: bool) -> None:
    """Write consecutive row blocks starting at row a."""
    for part in parts:
        write(a, part, checked)
        a += part.shape[0] if part.dim() else 1


def _single_pass(kernel, read, write, bounds, identity_on_equal) -> bool:
    passed = True
    for a, b in bounds:
        chunk = read(a, b, None)
        if _all_equal(chunk) and (identity_on_equal or not torch.any(chunk[0])):
            write(a, chunk[0], False)
        else:
            passed = False
            _write_parts(write, a, kernel.output_parts(chunk), kernel.checked)
    return passed


def _all_equal(chunk: Sequence[torch.Tensor]) -> bool:
    return all(torch.equal(chunk[0], t) for t in chunk[1:])


def in_memory_reader(tensors: Sequence[torch.Tensor], first_row: int = 0) -> Reader:
    """Return a Reader over in-memory tensors whose row 0 is row `first_row` of the tensor."""

    def read(a: int, b: int, which: Sequence[int] | None) -> Sequence[torch.Tensor]:
        if which is None and torch.is_tensor(tensors) and tensors.dim() > 1:
            return tensors[:, a - first_row : b - first_row]
        picked = tensors if which is None else [tensors[i] for i in which]
        return [t[a - first_row : b - first_row] for t in picked]

    return read


def merge_whole_in_chunks(
    kernel: ChunkedKernel, tensors: Sequence[torch.Tensor], rows: int, identity: bool = True
) -> tuple[torch.Tensor, bool]:
    """Run a chunked kernel over in-memory tensors, `rows` rows at a time; return (out, passed)."""
    out = torch.empty_like(tensors[0])
    bounds = row_bounds(tensors[0].shape[0], rows)

    def write(a: int, part: torch.Tensor, checked: bool) -> None:
        out[a : a + part.shape[0]] = part

    passed = run_chunked(kernel, in_memory_reader(tensors), write, bounds, identity)
    return out, passed
