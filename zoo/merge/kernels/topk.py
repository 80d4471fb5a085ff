"""Exact streaming top-k thresholds: radix selection over the bit patterns of magnitudes.

A non-negative IEEE float orders like its bit pattern read as a signed integer, so the k-th
largest magnitude of a tensor can be found exactly by a most-significant-digit radix select:
one pass per 16-bit digit (1 pass for 16-bit floats, 2 for float32, 4 for float64), each pass a
65 536-bin histogram of the candidates' next digit. The tensor is seen chunk by chunk, in the
same order every pass, so memory is one chunk plus the histograms. Pure and deterministic.

Among elements whose magnitude equals the threshold, the first ones in flat (row-major) order
are kept, i.e. the choice of a stable descending sort. mergekit's `torch.argsort` is not stable,
so where ties straddle the threshold the two keep the same number of elements with the same
magnitudes, but may pick different positions. Such ties are common in float16/bfloat16
checkpoints (few distinct magnitudes): on a tiny fp16 Llama with mergekit's examples/ties.yml,
30 of 180 800 elements differed, by up to 7.2e-2. That is why ties uses this selection only for
tensors merged in several chunks; a tensor merged in one chunk (any tensor within the chunk
budget) goes through mergekit's own top-k and equals mergekit-yaml bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_BINS = 1 << 16
_INT_OF = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def magnitude_keys(magnitudes: torch.Tensor) -> torch.Tensor:
    """Return the order-preserving integer keys of non-negative float magnitudes (flat; a view
    as int32/int64 for 32/64-bit floats, widened to int32 for 16-bit ones)."""
    flat = magnitudes.reshape(-1)
    keys = flat.view(_INT_OF[flat.element_size()])
    return keys.to(torch.int32) if keys.dtype == torch.int16 else keys


@dataclass
class RadixSelect:
    """Find the k-th largest key of a stream of chunks; call observe/end_pass `passes` times.

    After the last pass: `threshold` (the k-th largest key), `above` (how many keys are larger),
    `ties` (how many keys equal to the threshold are kept: the first `ties` in stream order) and
    `kept_sum` (the float64 sum of the kept magnitudes).
    """

    k: int
    bits: int
    sums: bool = True  # also track kept_sum (costs a weighted histogram per pass)
    prefix: int = 0
    done: int = 0  # digits resolved so far
    above: int = 0
    above_sum: float = 0.0
    _counts: torch.Tensor | None = None
    _sums: torch.Tensor | None = None

    @property
    def passes(self) -> int:
        return self.bits // 16

    def observe(self, keys: torch.Tensor, magnitudes: torch.Tensor | None) -> None:
        """Add one chunk's keys (from magnitude_keys) and their magnitudes (needed only when
        tracking sums) to this pass."""
        shift = self.bits - 16 * (self.done + 1)
        mags = magnitudes.reshape(-1) if self.sums else None
        if self.done:
            hit = (keys >> (shift + 16)) == self.prefix
            keys = keys[hit]
            mags = mags[hit] if self.sums else None
        digits = (keys >> shift) & (_BINS - 1)
        counts = torch.bincount(digits, minlength=_BINS)
        self._counts = counts if self._counts is None else self._counts + counts
        if self.sums:
            sums = torch.bincount(digits, weights=mags.to(torch.float64), minlength=_BINS)
            self._sums = sums if self._sums is None else self._sums + sums

    def end_pass(self) -> None:
        """Fix the next digit: the bin holding the k-th largest of the remaining candidates."""
        counts = self._counts if self._counts is not None else torch.zeros(_BINS, dtype=torch.int64)
        sums = self._sums if self._sums is not None else torch.zeros(_BINS, dtype=torch.float64)
        # from_top[d] = number of candidates in bins >= d
        from_top = counts.flip(0).cumsum(0).flip(0)
        need = self.k - self.above
        digit = int((from_top >= need).nonzero().max()) if bool((from_top >= need).any()) else 0
        higher = slice(digit + 1, None)
        self.above += int(counts[higher].sum())
        self.above_sum += float(sums[higher].sum())
        self.prefix = (self.prefix << 16) | digit
        self.done += 1
        self._counts = self._sums = None

    @property
    def threshold(self) -> int:
        return self.prefix

    @property
    def ties(self) -> int:
        return self.k - self.above

    def threshold_value(self, dtype: torch.dtype) -> float:
        """Return the threshold as a magnitude of the float dtype the keys came from."""
        key = torch.tensor([self.threshold], dtype=torch.int64).to(_INT_OF[dtype.itemsize])
        return float(key.view(dtype))

    def kept_sum(self, dtype: torch.dtype) -> float:
        return self.above_sum + self.ties * self.threshold_value(dtype)


class TieCursor:
    """Keep the first `ties` keys equal to the threshold, across chunks seen in stream order."""

    def __init__(self, threshold: int, ties: int):
        self.threshold = threshold
        self.left = ties

    def mask(self, keys: torch.Tensor) -> torch.Tensor:
        """Return the keep-mask of one chunk's keys (flat): above the threshold, or an early tie."""
        keep = keys > self.threshold
        if self.left > 0:
            equal = keys == self.threshold
            count = int(equal.sum())
            if count > self.left:  # the last kept tie is in this chunk
                equal &= equal.cumsum(0, dtype=torch.int32) <= self.left
            keep |= equal
            self.left -= min(count, self.left)
        return keep
