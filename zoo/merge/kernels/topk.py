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
30 of 180 800 elements differed, by up to 7.2e-2. That is why ties uses zoo's selection only for
tensors merged in several chunks or larger than MERGEKIT_TOPK elements (zoo.merge.kernels.
chunked); a smaller tensor merged in one chunk goes through mergekit's own top-k and equals
mergekit-yaml bit for bit.

WindowSelect finds the same threshold and ties in a single pass when the threshold falls inside
a window guessed from a sample (the fused ties path); RadixSelect is its fallback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

_BINS = 1 << 16
_INT_OF = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def magnitude_keys(magnitudes: torch.Tensor) -> torch.Tensor:
    """Return the order-preserving integer keys of non-negative float magnitudes (flat; a view
    as int32/int64 for 32/64-bit floats, widened to int32 for 16-bit ones)."""
    flat = magnitudes.reshape(-1)
    keys = flat.view(_INT_OF[flat.element_size()])
    return keys.to(torch.int32) if keys.dtype == torch.int16 else keys


Histogram = tuple[torch.Tensor, "torch.Tensor | None"]  # (counts, float64 sums or None)


@dataclass
class RadixSelect:
    """Find the k-th largest key of a stream of chunks; `passes` times: add(partial(...)) for
    every chunk (or observe), then end_pass. Partials are pure (a thread per block may make them);
    adding them in stream order makes the result independent of how the work was split.

    After the last pass: `threshold` (the k-th largest key), `above` (how many keys are larger),
    `ties` (how many keys equal to the threshold are kept: the first `ties` in stream order),
    `equal` (how many keys equal the threshold) and `kept_sum` (the float64 sum of the kept
    magnitudes).
    """

    k: int
    bits: int
    sums: bool = True  # also track kept_sum (costs a weighted histogram per pass)
    prefix: int = 0
    done: int = 0  # digits resolved so far
    above: int = 0
    above_sum: float = 0.0
    equal: int = 0
    _counts: torch.Tensor | None = None
    _sums: torch.Tensor | None = None

    @property
    def passes(self) -> int:
        return self.bits // 16

    def partial(self, keys: torch.Tensor, magnitudes: torch.Tensor | None) -> Histogram:
        """Return one chunk's histogram of the next digit among the remaining candidates, from
        its keys (magnitude_keys) and magnitudes (needed only when tracking sums)."""
        return self.histogram(*self.digits(keys, magnitudes))

    def histogram(self, digits: torch.Tensor, mags: torch.Tensor | None) -> Histogram:
        """Return the histogram of candidates' digits (and magnitudes) from digits()."""
        # as long as the largest digit present (bins above it are empty): far fewer than _BINS
        # in a first pass over magnitudes below 2, whose keys' top bits stop at 0x3FFF
        counts = torch.bincount(digits)
        sums = torch.bincount(digits, weights=mags.to(torch.float64)) if self.sums else None
        return counts, sums

    def digits(
        self, keys: torch.Tensor, magnitudes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the next digit of the candidates among keys (those sharing the digits resolved
        so far; all of them in the first pass) and, when tracking sums, their magnitudes."""
        shift = self.bits - 16 * (self.done + 1)
        mags = magnitudes.reshape(-1) if self.sums else None
        if self.done:
            hit = (keys >> (shift + 16)) == self.prefix
            keys = keys[hit]
            mags = mags[hit] if self.sums else None
        digits = keys >> shift if shift else keys
        return (digits & (_BINS - 1) if self.done else digits), mags

    def add(self, histogram: Histogram) -> None:
        """Add one chunk's partial histogram to this pass (in stream order)."""
        counts, sums = histogram
        if self._counts is None:
            self._counts = torch.zeros(_BINS, dtype=torch.int64)
            self._sums = torch.zeros(_BINS, dtype=torch.float64) if self.sums else None
        self._counts[: len(counts)] += counts
        if sums is not None:
            self._sums[: len(sums)] += sums

    def observe(self, keys: torch.Tensor, magnitudes: torch.Tensor | None) -> None:
        """Add one chunk's keys and magnitudes to this pass."""
        self.add(self.partial(keys, magnitudes))

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
        self.equal = int(counts[digit])
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
    """Keep the keys above the threshold and the first `ties` keys equal to it, in stream order.

    `mask(keys, before)` takes the number of threshold keys earlier in the stream, so blocks of
    one chunk can be masked side by side once each block's `count` is known; without `before`,
    blocks are taken to arrive in stream order.
    """

    def __init__(self, threshold: int, ties: int, equal: int | None = None):
        self.threshold = threshold
        self.ties = ties
        self.all_kept = equal is not None and equal <= ties  # no tie straddles the threshold
        self.seen = 0

    def count(self, keys: torch.Tensor) -> int:
        """Return how many of keys equal the threshold (0 when every tie is kept anyway)."""
        return 0 if self.all_kept else int((keys == self.threshold).sum())

    def cut(self, before: int | None, count: int | None) -> str | None:
        """How a block whose `count` threshold keys follow `before` earlier ones is cut: ">="
        (all its threshold keys kept), ">" (none kept), or None (it holds the last kept tie, or
        the counts are unknown: mask() must pick)."""
        if self.all_kept:
            return ">="
        if count is None or before is None:
            return None
        if count <= self.ties - before:
            return ">="
        return ">" if before >= self.ties else None

    def floor(self, before: int | None, count: int | None) -> float | None:
        """Return the float32 magnitude m such that the block keeps exactly the magnitudes > m
        (one comparison, no masks), or None when cut() is None. For float32 keys only."""
        cut = self.cut(before, count)
        if cut is None:
            return None
        return self._value(self.threshold - 1 if cut == ">=" else self.threshold)

    @property
    def value(self) -> float:
        """The threshold as a float32 magnitude (float32 keys only)."""
        return self._value(self.threshold)

    def _value(self, key: int) -> float:
        return float(torch.tensor([max(key, 0)], dtype=torch.int32).view(torch.float32))

    def mask(
        self, keys: torch.Tensor, before: int | None = None, count: int | None = None
    ) -> torch.Tensor:
        """Return the keep-mask of one block's keys (flat). Without `before`, the block is the
        next in stream order (and the cursor advances); with it, nothing changes here. `count`,
        the block's number of threshold keys when known, spares counting them."""
        cut = self.cut(before, count)
        if cut is not None:
            return keys >= self.threshold if cut == ">=" else keys > self.threshold
        streaming = before is None
        before = self.seen if streaming else before
        left = self.ties - before
        keep = keys > self.threshold
        equal = keys == self.threshold
        count = int(equal.sum())
        if left > 0:
            if count > left:  # the last kept tie is in this block
                equal &= equal.cumsum(0, dtype=torch.int32) <= left
            keep |= equal
        if streaming:
            self.seen += count
        return keep


@dataclass
class WindowSelect:
    """Find the k-th largest of n magnitudes in one pass, exactly, when it falls inside a window
    [lo, hi] guessed beforehand (`guess`, from a sample). The pass (fused.ties_window) counts,
    block by block, the magnitudes above hi, equal to lo and equal to hi, and keeps those
    strictly between as candidates; `resolve` then finds the threshold: hi, lo or a candidate.
    Counting the ends keeps a magnitude shared by many elements (common in 16-bit checkpoints)
    out of the candidates. When the threshold falls outside the window (the sample misled, or
    too many candidates: `overflow`), `resolve` returns False and the caller selects by
    RadixSelect.

    After resolve: `threshold` (the k-th largest, as a float32 key), `ties` (how many keys equal
    to it are kept: the first in stream order), `equal`, `block_ties` (each block's keys equal
    to it, in stream order) and `kept_sum` (float64 sum of the kept magnitudes, with sums)."""

    k: int
    n: int
    sums: bool = True  # also find kept_sum
    lo: float = 0.0
    hi: float = math.inf
    above: int = 0
    above_sum: float = 0.0
    total: float = 0.0
    held: int = 0  # candidates kept so far
    overflow: bool = False
    blocks: list = field(default_factory=list)  # per block: (candidates, at lo, at hi)

    MARGIN = 0.0025  # quantile margin on each side of the sample's estimate, + 3 / sqrt(sample)
    MAX_HELD = 0.15  # of n: more candidates than this and the window is given up

    def guess(self, sample: torch.Tensor) -> None:
        """Set the window from a sample of the magnitudes (any order): the sample quantiles of
        the threshold's rank, widened by MARGIN + 3 / sqrt(len(sample)) on each side (six
        standard deviations of a sample quantile, and some)."""
        values = sample.reshape(-1).float()
        m = len(values)
        below = 1 - self.k / self.n  # the threshold's quantile from below
        margin = self.MARGIN + 3 / math.sqrt(max(m, 1))
        low, high = math.floor((below - margin) * m), math.ceil((below + margin) * m)
        self.lo = float(values.kthvalue(low + 1).values) if m and low > 0 else 0.0
        self.hi = float(values.kthvalue(high + 1).values) if m and high < m else math.inf

    def add(self, above: int, at_lo: int, at_hi: int, above_sum: float, total: float,
            found: torch.Tensor) -> None:  # fmt: skip
        """Add one block's results (in stream order)."""
        self.above += above
        self.above_sum += above_sum
        self.total += total
        self.held += len(found)
        if self.held > self.MAX_HELD * self.n:
            self.overflow, self.blocks = True, []
        if not self.overflow:
            self.blocks.append((found, at_lo if self.lo < self.hi else 0, at_hi))

    def resolve(self) -> bool:
        """Find the threshold in the window; False when it is not there. From the top, the
        window holds hi's ties, the candidates, then lo's ties."""
        at_hi = sum(b[2] for b in self.blocks)
        at_lo = sum(b[1] for b in self.blocks)
        need = self.k - self.above  # the threshold's rank among the window's magnitudes
        if self.overflow or need <= 0 or need > at_hi + self.held + at_lo:
            return False
        every = torch.cat([b[0] for b in self.blocks]) if self.blocks else torch.zeros(0)
        hi_sum = at_hi * self.hi if at_hi else 0.0
        if need <= at_hi:
            value, larger, larger_sum, column = self.hi, 0, 0.0, 2
        elif need > at_hi + self.held:
            value, larger, column = self.lo, at_hi + self.held, 1
            larger_sum = hi_sum + (float(every.sum(dtype=torch.float64)) if self.sums else 0.0)
        else:
            from zoo.merge.kernels.fused import above

            value, column = float(every.kthvalue(self.held - (need - at_hi) + 1).values), None
            count, total = above(every.numpy(), value, self.sums)
            larger, larger_sum = at_hi + count, hi_sum + total
        self.block_ties = [int((b[0] == value).sum()) if column is None else b[column]
                           for b in self.blocks]  # fmt: skip
        self.equal = sum(self.block_ties)
        self.ties = need - larger
        self.threshold = int(torch.tensor([value], dtype=torch.float32).view(torch.int32))
        self.kept_sum = self.above_sum + larger_sum + self.ties * value
        self.blocks = []
        return True
