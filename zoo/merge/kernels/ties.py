"""mergekit's `ties` as a row-chunked kernel: per input, the exact top-k of |delta| (density),
optionally L1-rescaled, then TIES' sign consensus (TaskArithmeticChunks).

On CPU in float32 (the usual case) the inputs are read as stored (bfloat16 at 2 bytes an element)
and each pass is a compiled loop (zoo.merge.kernels.fused): one window pass (topk.WindowSelect:
the magnitudes above a window guessed from a sample of the first chunk are counted, those inside
kept), then the output pass. Where the window misses, and on other devices and dtypes, radix
selection (2 passes in float32) and torch operations do it; `ZOO_FUSED=0` forces that path
(the same bytes, tests/merge/test_fused.py).

A tensor merged whole (one chunk) of at most MERGEKIT_TOPK elements (or any whole tensor off the
fused path) keeps exactly the elements mergekit keeps: the top-k is mergekit's own
`sparsify.magnitude` (its unstable argsort decides which of the magnitudes tied at the density
threshold survive; such ties are common in 16-bit checkpoints). Any other tensor keeps the same
number of elements with the same magnitudes, but among threshold ties the first in row-major
order (see `topk`): the choice of an unstable sort cannot be streamed, and sorting a large
tensor costs 0.1 s per million elements.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from zoo.merge.kernels.chunked import Chunk, Shape, TaskArithmeticChunks, deltas_of
from zoo.merge.kernels.fusing import (
    check,
    final,
    flat_sources,
    fusable,
    out_dtype,
    output_buffer,
    stored_dtype,
    widened,
)
from zoo.merge.kernels.topk import RadixSelect, TieCursor, WindowSelect, magnitude_keys
from zoo.merge.parallel import block_of, row_blocks, stacked


class TiesChunks(TaskArithmeticChunks):
    """mergekit `ties`: per-input magnitude top-k (density) with optional L1 rescale, then sign
    consensus. The k-th largest |delta| of each input is found exactly: on CPU in float32, in
    one pass that counts the magnitudes above a window guessed from the first chunk and keeps
    those inside it (WindowSelect, fused loops), then one output pass (fused); otherwise, or
    where the window missed, by radix selection (2 more passes)."""

    consensus = True

    def __init__(self, params: Mapping[str, Any], base_index: int, shape: Shape):
        super().__init__(params, base_index, shape)
        self.rescale = bool(params["rescale"])
        self.densities = [params["density"][i] for i in self.inputs]
        self.numel = shape.numel
        # mergekit sorts CPU magnitudes in float32, others in the compute dtype
        self._key_dtype = torch.float32 if shape.device.type == "cpu" else shape.dtype
        self.selects = {
            j: RadixSelect(max(1, int(d * self.numel)), self._key_dtype.itemsize * 8, self.rescale)
            for j, d in enumerate(self.densities)
            if 0 < d < 1 and self.numel
        }
        self.radix_passes = max((s.passes for s in self.selects.values()), default=0)
        self.fused = fusable(shape) and all(d > 0 for d in self.densities)
        self.out_dtype = out_dtype(shape)
        self.final = final(shape)
        self.windows = (
            {j: WindowSelect(s.k, self.numel, self.rescale) for j, s in self.selects.items()}
            if self.fused
            else {}
        )
        self.offset = 1 if self.windows else 0  # statistics passes before the radix passes
        self._guessed = False
        self.passes = self.offset or self.radix_passes
        self.totals = [0.0] * len(self.inputs)
        self.cursors: dict[int, TieCursor] = {}
        self.factors: dict[int, float] = {}
        self.candidates: dict[int, list[tuple]] = {}  # last-pass (digits, magnitudes) by block
        self.tie_counts: dict[int, deque[int]] = {}  # threshold keys per block, stream order

    @classmethod
    def read_dtype(cls, stored: torch.dtype, shape: Shape) -> torch.dtype:
        """As stored, where the fused loops read it (bfloat16 at 2 bytes an element)."""
        return stored_dtype(stored, shape)

    def _mergekit_topk(self, elements: int) -> bool:
        """Whether a chunk of this many elements takes mergekit's own top-k: when it is the
        whole tensor, and the tensor is small (MERGEKIT_TOPK) or not fused."""
        return elements == self.numel and (elements <= MERGEKIT_TOPK or not self.fused)

    def observe(self, p: int, chunk: Chunk) -> None:
        if self._mergekit_topk(chunk[0].numel()):  # the whole tensor: mergekit's, in sparsify()
            self.windows = {}  # nothing to select here, in any pass
            return
        if p < self.offset:
            return self._observe_window(chunk)
        r = p - self.offset
        for part in self.pool.blocks(lambda block: self._stats(r, block), chunk):
            for j, (histogram, total, found) in part.items():
                self.totals[j] += total
                if histogram is not None:
                    self.selects[j].add(histogram)
                else:
                    self.candidates.setdefault(j, []).append(found)

    def _stats(self, r: int, block: Chunk) -> dict[int, tuple[Any, float, Any]]:
        """Return {input j: (its radix histogram of pass r, its L1 sum or 0, None)} for one
        block; in a last pass that filters candidates, (None, 0, the candidates' last digits
        and magnitudes): they are few, and kept to count each block's threshold ties."""
        mags = deltas_of(widened(block), self.inputs, self.base).abs_()
        sums = r == 0 and self.rescale and not self.offset  # a window pass summed them already
        out = {}
        for j, select in self.selects.items():
            total = float(mags[j].sum(dtype=torch.float64)) if sums else 0.0
            found = select.digits(magnitude_keys(mags[j].to(self._key_dtype)), mags[j])
            if r == self.radix_passes - 1 and r > 0:
                out[j] = (None, total, found)
            else:
                out[j] = (select.histogram(*found), total, None)
        return out

    def _observe_window(self, chunk: Chunk) -> None:
        """The window pass over one chunk: the first chunk also sets each input's window."""
        whole, shift, row = flat_sources(chunk)
        order = list(self.windows)
        if not self._guessed:  # a strided sample of the first chunk sets the windows
            self._guessed = True
            step = max(1, math.ceil(whole.shape[1] / WINDOW_SAMPLE))
            sample = stacked(chunk).reshape(len(whole), -1)[:, ::step].float()
            base = sample[self.base]
            self.pool.map(
                lambda j: self.windows[j].guess((sample[self.inputs[j]] - base).abs_()), order
            )
        sources = np.array([self.inputs[j] for j in order], dtype=np.int64)
        lo = np.array([self.windows[j].lo for j in order], dtype=np.float32)
        hi = np.array([self.windows[j].hi for j in order], dtype=np.float32)

        def block(ab: tuple[int, int]) -> list[tuple]:
            from zoo.merge.kernels import fused

            e0, e1 = ab[0] * row, ab[1] * row
            counts = np.zeros((len(order), 4), dtype=np.int64)  # above, at lo, at hi, held
            above_sum, total = np.zeros((2, len(order)), dtype=np.float64)
            cand = np.empty((len(order), e1 - e0), dtype=np.float32)
            fused.ties_window(
                whole, shift, e0, e1, self.base, sources, lo, hi, self.rescale,
                counts, above_sum, total, cand,
            )  # fmt: skip
            return [
                (*counts[i, :3].tolist(), float(above_sum[i]), float(total[i]),
                 torch.from_numpy(cand[i, : counts[i, 3]].copy()))
                for i in range(len(order))
            ]  # fmt: skip

        for part in self.pool.map(block, row_blocks(chunk)):
            for j, result in zip(order, part):
                self.windows[j].add(*result)

    def end_pass(self, p: int) -> None:
        if p < self.offset:
            return self._end_window()
        r = p - self.offset
        for j, select in self.selects.items():
            found = self.candidates.get(j)
            if found is not None:  # the last pass's histogram, from every block's candidates
                digits = torch.cat([d for d, _ in found])
                mags = torch.cat([m for _, m in found]) if select.sums else None
                select.add(select.histogram(digits, mags))
            select.end_pass()
            if r == self.radix_passes - 1:
                self.cursors[j] = TieCursor(select.threshold, select.ties, select.equal)
                self.factors[j] = self._rescale(self.totals[j], select.kept_sum(self._key_dtype))
                self._count_ties(j, select.threshold & 0xFFFF)

    def _end_window(self) -> None:
        """Take each input's threshold from its window; the missed ones go on to radix passes."""
        if not self.windows:  # the whole tensor took mergekit's top-k: no more passes
            return
        found = self.pool.map(lambda window: window.resolve(), list(self.windows.values()))
        for (j, window), resolved in zip(self.windows.items(), found):
            self.totals[j] = window.total
            if not resolved:
                continue
            self.cursors[j] = TieCursor(window.threshold, window.ties, window.equal)
            self.factors[j] = self._rescale(window.total, window.kept_sum)
            if not self.cursors[j].all_kept:
                self.tie_counts[j] = deque(window.block_ties)
            del self.selects[j]
        self.windows = {}
        self.passes = self.offset + (self.radix_passes if self.selects else 0)

    def _count_ties(self, j: int, digit: int) -> None:
        """Turn input j's kept candidates of every block into its blocks' threshold counts."""
        blocks = self.candidates.pop(j, None)
        if blocks is not None and not self.cursors[j].all_kept:
            self.tie_counts[j] = deque(int((d == digit).sum()) for d, _ in blocks)

    def _rescale(self, before: float, after: float) -> float:
        if not self.rescale:
            return 1.0
        return 1.0 if before < 1e-7 or after < 1e-7 else before / after

    def output_parts(self, chunk: Chunk) -> list[torch.Tensor]:
        self.checked = False
        if self._mergekit_topk(chunk[0].numel()):  # mergekit's whole-tensor top-k: one block
            return [self.output_block(chunk)]
        bounds = row_blocks(chunk)
        items = list(zip(bounds, self._block_ties(chunk, bounds)))
        if self.fused:
            self.checked = self.final
            return [self._fused_output(chunk, items)]
        return self.pool.map(
            lambda item: self.output_block(block_of(chunk, *item[0]), item[1]), items
        )

    def _block_ties(self, chunk: Chunk, bounds: list[tuple[int, int]]) -> list:
        """Return, per block, each input's (threshold ties before the block, ties in it), or
        None for an input (or a block) that needs no counting."""
        counting = [j for j, c in self.cursors.items() if not c.all_kept]
        if not counting:
            return [None] * len(bounds)
        unknown = [j for j in counting if j not in self.tie_counts]
        if unknown:  # no last pass kept candidates (16-bit keys): count the ties here
            found = self.pool.map(
                lambda ab: self._tie_counts(unknown, block_of(chunk, *ab)), bounds
            )
            for j, column in zip(unknown, zip(*found)):
                self.tie_counts[j] = deque(column)
        return [
            [self._next_ties(j) if j in counting else None for j in range(len(self.inputs))]
            for _ in bounds
        ]

    def _fused_output(self, chunk: Chunk, items: list) -> torch.Tensor:
        """The output pass, every block in the fused loop."""
        from zoo.merge.kernels import fused

        whole, shift, row = flat_sources(chunk)
        out, flat, limit = output_buffer(chunk[0], self.out_dtype)
        sources = np.array(self.inputs, dtype=np.int64)
        factors = np.array([self.factors.get(j, 1.0) for j in range(len(self.inputs))], np.float32)
        weights = np.array(self.weights, dtype=np.float32)
        values = np.array([self._threshold(j) for j in range(len(self.inputs))], np.float32)

        def block(item: tuple) -> int:
            (a, b), ties = item
            e0, e1 = a * row, b * row
            cuts = np.array(
                [self._cut(j, ties, whole, shift, e0, e1, values) for j in range(len(values))],
                dtype=np.int64,
            )
            return fused.ties_output(
                whole, shift, e0, e1, self.base, sources, values, cuts, factors, weights,
                self.normalize, np.float32(self.lambda_), np.float32(limit), flat,
            )  # fmt: skip

        check(sum(self.pool.map(block, items)))
        return out

    def output_block(self, block: Chunk, ties: Sequence[tuple] | None = None) -> torch.Tensor:
        return super().output_block(widened(block), ties)

    def _threshold(self, j: int) -> float:
        """Input j's threshold magnitude (-1 when it keeps every element)."""
        if self.densities[j] >= 1 or not self.numel:
            return -1.0
        return self.cursors[j].value

    def _cut(self, j: int, ties, whole: np.ndarray, shift: int, e0: int, e1: int, values) -> int:
        """Return the element before which input j's threshold ties are kept in block e0:e1."""
        if values[j] < 0:
            return e0
        before, count = ties[j] if ties and ties[j] else (None, None)
        cut = self.cursors[j].cut(before, count)
        if cut is not None:
            return e1 if cut == ">=" else e0
        from zoo.merge.kernels import fused

        keep = self.cursors[j].ties - before
        source = self.inputs[j]
        return fused.tie_cut(whole, shift, e0, e1, self.base, source, values[j], keep)

    def _next_ties(self, j: int) -> tuple[int, int]:
        """Return (threshold ties of input j before the next block, ties in it); advance."""
        cursor, count = self.cursors[j], self.tie_counts[j].popleft()
        before = cursor.seen
        cursor.seen += count
        if not self.tie_counts[j]:
            del self.tie_counts[j]
        return before, count

    def _tie_counts(self, counting: Sequence[int], block: Chunk) -> list[int]:
        mags = deltas_of(widened(block), self.inputs, self.base).abs_()
        keys = [magnitude_keys(mags[j].to(self._key_dtype)) for j in counting]
        return [self.cursors[j].count(k) for j, k in zip(counting, keys)]

    def sparsify(self, j: int, delta: torch.Tensor, ties: tuple | None) -> None:
        density = self.densities[j]
        if density >= 1 or not self.numel:
            return
        if density <= 0:
            delta.zero_()
        elif self._mergekit_topk(delta.numel()):
            from mergekit.sparsify import RescaleNorm, magnitude

            delta.copy_(magnitude(delta, density, RescaleNorm.l1 if self.rescale else None))
        else:
            before, count = ties or (None, None)
            floor = self.cursors[j].floor(before, count)
            if floor is not None and delta.dtype == self._key_dtype == torch.float32:
                # |delta| > floor kept, the rest zeroed, in one pass
                torch.ops.aten.hardshrink.out(delta, floor, out=delta)
            else:
                keys = magnitude_keys(delta.abs().to(self._key_dtype))
                delta.mul_(self.cursors[j].mask(keys, before, count).view(delta.shape))
            if self.factors[j] != 1.0:
                delta.mul_(self.factors[j])


# a tensor merged whole up to this size keeps mergekit's top-k (its argsort's choice among tied
# magnitudes, bit for bit with mergekit-yaml); a larger one is selected exactly by zoo in one
# fused pass (the first tied positions kept), instead of sorting it (0.1 s per million elements)
MERGEKIT_TOPK = 1 << 16
WINDOW_SAMPLE = 1 << 16  # elements of the first chunk, per input, that guess ties' window
