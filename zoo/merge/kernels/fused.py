"""Fused CPU loops for ties and the weighted sums (linear, task arithmetic, multislerp's output):
each pass over a row block is one compiled loop (numba), not a chain of full-size torch
operations that each make a round trip through memory.

Two kernels, both on a chunk stacked as one C-contiguous array of shape (sources, n) holding
float32 or bfloat16 values as they are stored on disk (viewed as uint32 or uint16: `bits`), so
16-bit checkpoints are read at 2 bytes an element and widened to float32 in registers, exact.
Each works on the elements e0:e1 of every source (a row block) and releases the GIL, so the
merge's thread pool runs blocks side by side:

- `ties_window`: one statistics pass. For each input, the |delta| above a window [lo, hi] are
  counted (and, for `rescale`, summed in float64), those equal to either end are counted, and
  those strictly inside are copied out as candidates for the exact k-th largest
  (zoo.merge.kernels.topk.WindowSelect). NaN counts as above.
- `ties_output`: the output pass: keep |delta| above the threshold, NaN, and the threshold's
  ties before a cut (found by `tie_cut` in the one block where an input's last kept tie
  falls; the first ties in element order are kept), scale by the rescale
  factor and the weight, take mergekit's sign consensus (sign of the sum, `sum >= 0` positive),
  sum the agreeing terms and their weights, divide (a divisor under 1e-8 is 1), scale by lambda,
  add the base. Every step is mergekit's float32 operation in mergekit's order, element by
  element, so blocks and threads cannot change the bytes.
- `weighted_output`: sum_j c_j (x_j - b) (or sum_j c_j x_j without a base), divided, scaled by
  lambda, plus the base: linear, task arithmetic and multislerp's output pass.

Both output loops write the result in the output's dtype (float32, or bfloat16 rounded to
nearest even as torch rounds) and count the results that are NaN or beyond +-limit (the output
dtype's largest value), the check the engine makes before writing (zoo.merge.engine._finite).

Elements are walked in tiles of TILE, so each source's loop is a straight vectorisable loop and
the per-tile scratch stays in L1. `load()` compiles on first use (about 1 s, cached on disk by
numba afterwards); callers import this module only when they use it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TILE = 1024
_JIT = {"nogil": True, "cache": True, "boundscheck": False, "error_model": "numpy"}


@njit(**_JIT)
def _widen(src, t0, m, shift, tile):
    """Write elements t0:t0+m of src (float32 or bfloat16 bits) to tile as float32 bits."""
    part, by = src[t0 : t0 + m], np.uint32(shift)
    for e in range(m):  # indices straight from range(): no wraparound check, so it vectorises
        tile[e] = np.uint32(part[e]) << by


@njit(**_JIT)
def _store(res_bits, m, dst, limit):
    """Write a tile of float32 results (res_bits, as uint32) to dst: as they are (a uint32 dst)
    or rounded to bfloat16 (a uint16 dst: round to nearest even, torch's rule). Return how many
    are NaN or beyond +-limit."""
    res, bad = res_bits.view(np.float32), 0
    for e in range(m):
        r = res[e]
        bad += not ((r >= -limit) & (r <= limit))
    if dst.itemsize == 2:
        one, bias = np.uint32(1), np.uint32(0x7FFF)
        for e in range(m):
            u = res_bits[e]
            dst[e] = np.uint16((u + (((u >> np.uint32(16)) & one) + bias)) >> np.uint32(16))
    else:
        for e in range(m):
            dst[e] = res_bits[e]
    return bad


@njit(**_JIT)
def _count(x, b, m, low, high, mags):
    """Write |x - b| of a tile to mags; return how many are above high (or NaN), equal to low,
    equal to high, and strictly between."""
    up, at_low, at_high, inside = 0, 0, 0, 0
    for e in range(m):
        a = abs(x[e] - b[e])
        mags[e] = a
        up += (a > high) | (a != a)
        at_low += a == low
        at_high += a == high
        inside += (a > low) & (a < high)
    return up, at_low, at_high, inside


@njit(**_JIT)
def _sums(mags, m, high):
    """Return the float64 sums of a tile's magnitudes above high (or NaN), and of all."""
    up_sum, tot = 0.0, 0.0
    for e in range(m):
        a = mags[e]
        tot += a
        up_sum += a if not (a <= high) else 0.0
    return up_sum, tot


@njit(**_JIT)
def ties_window(stack, shift, e0, e1, base, inputs, lo, hi, sums, counts, above_sum, total, cand):
    """For input jj = 0..: count the |x - b| above hi[jj], equal to lo[jj] and equal to hi[jj]
    into counts[jj, 0:3] (and add the float64 sum of those above to above_sum[jj], of all to
    total[jj], when sums); copy those strictly inside (lo, hi) to cand[jj, counts[jj, 3]:],
    counting them in counts[jj, 3] (cand holds e1 - e0 per input)."""
    base_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = base_bits.view(np.float32), x_bits.view(np.float32)
    mags = np.empty(TILE, np.float32)
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        _widen(stack[base], t0, m, shift, base_bits)
        for jj in range(inputs.shape[0]):
            _widen(stack[inputs[jj]], t0, m, shift, x_bits)
            low, high = lo[jj], hi[jj]
            up, at_low, at_high, inside = _count(x, b, m, low, high, mags)
            if inside:  # then the candidates, without a branch per element
                row, c = cand[jj], np.uint64(counts[jj, 3])  # unsigned: no wraparound check
                for e in range(m):
                    a = mags[e]
                    row[c] = a
                    c += np.uint64((a > low) & (a < high))
                counts[jj, 3] = np.int64(c)
            counts[jj, 0] += up
            counts[jj, 1] += at_low
            counts[jj, 2] += at_high
            if sums:  # a loop of its own: float64 sums would keep the counts from vectorising
                up_sum, tot = _sums(mags, m, high)
                above_sum[jj] += up_sum
                total[jj] += tot


@njit(**_JIT)
def tie_cut(stack, shift, e0, e1, base, source, value, keep):
    """Return the element index just past the keep-th |x - b| equal to value in e0:e1 (in
    element order), e1 when there are fewer."""
    b_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = b_bits.view(np.float32), x_bits.view(np.float32)
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        _widen(stack[base], t0, m, shift, b_bits)
        _widen(stack[source], t0, m, shift, x_bits)
        for e in range(m):
            if abs(x[e] - b[e]) == value:
                keep -= 1
                if keep <= 0:
                    return t0 + e + 1
    return e1


@njit(**_JIT)
def ties_output(stack, shift, e0, e1, base, inputs, values, cuts, factors, weights, normalize,
                lam, limit, out):  # fmt: skip
    """Write the ties merge of elements e0:e1 to out[e0:e1] (float32 or bfloat16 bits; see the
    module docstring); return how many are NaN or beyond +-limit. Input jj keeps the |delta|
    above values[jj], NaN, and those equal to it before element cuts[jj]."""
    n_in = inputs.shape[0]
    zero, one = np.float32(0), np.float32(1)
    base_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = base_bits.view(np.float32), x_bits.view(np.float32)
    terms = np.empty((n_in, TILE), np.float32)
    total = np.empty(TILE, np.float32)
    mixed = np.empty(TILE, np.float32)
    divisor = np.empty(TILE, np.float32)
    res_bits = np.empty(TILE, np.uint32)
    res, bad = res_bits.view(np.float32), 0
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        _widen(stack[base], t0, m, shift, base_bits)
        total[:m] = zero
        for jj in range(n_in):
            _widen(stack[inputs[jj]], t0, m, shift, x_bits)
            value, factor, w = values[jj], factors[jj], weights[jj]
            cut = cuts[jj] - t0  # tile elements before it keep their ties
            row = terms[jj]
            for e in range(m):
                d = x[e] - b[e]
                a = abs(d)
                keep = (a > value) | (a != a) | ((a == value) & (e < cut))
                v = (d * factor) * w if keep else zero
                row[e] = v
                total[e] += v
        mixed[:m] = zero
        divisor[:m] = zero
        for jj in range(n_in):
            row, w = terms[jj], weights[jj]
            for e in range(m):
                v = row[e]
                agree = (v > zero) if total[e] >= zero else (v < zero)
                mixed[e] += v if agree else zero
                divisor[e] += w if agree else zero
        for e in range(m):
            r = mixed[e]
            if normalize:
                dv = divisor[e]
                r = r / (one if abs(dv) < np.float32(1e-8) else dv)
            if lam != one:
                r = r * lam
            res[e] = b[e] + r
        bad += _store(res_bits, m, out[t0 : t0 + m], limit)
    return bad


@njit(**_JIT)
def _add_terms(acc, x, c, m):
    for e in range(m):
        acc[e] = acc[e] + x[e] * c


@njit(**_JIT, fastmath={"contract"})
def _fma_terms(acc, x, c, m):
    """acc + x * c rounded once (a fused multiply-add where the CPU has one): torch's addcmul_
    and add_(alpha=) on such CPUs, so mergekit's linear."""
    for e in range(m):
        acc[e] = acc[e] + x[e] * c


@njit(**_JIT)
def weighted_output(stack, shift, e0, e1, base, inputs, coefficients, fma, divisor, lam, limit,
                    out):  # fmt: skip
    """Write r = sum_jj c[jj] (x_jj - b) (each term added after rounding its product, or with
    one rounding when fma), then r / divisor (when divisor != 1), r * lam (when lam != 1), b + r,
    for elements e0:e1 to out[e0:e1] (float32 or bfloat16 bits), each step float32 in that
    order; without a base (base < 0) the terms are c[jj] x_jj and nothing is added. Return how
    many results are NaN or beyond +-limit."""
    one = np.float32(1)
    b_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = b_bits.view(np.float32), x_bits.view(np.float32)
    acc = np.empty(TILE, np.float32)
    res_bits = np.empty(TILE, np.uint32)
    res, bad = res_bits.view(np.float32), 0
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        if base >= 0:
            _widen(stack[base], t0, m, shift, b_bits)
        for jj in range(inputs.shape[0]):
            _widen(stack[inputs[jj]], t0, m, shift, x_bits)
            c = coefficients[jj]
            if base >= 0:
                for e in range(m):
                    x[e] = x[e] - b[e]
            if jj == 0:  # the first term as it is: a sum starting from 0 would turn -0 into +0
                for e in range(m):
                    acc[e] = x[e] * c
            elif fma:
                _fma_terms(acc, x, c, m)
            else:
                _add_terms(acc, x, c, m)
        for e in range(m):
            r = acc[e]
            if divisor != one:
                r = r / divisor
            if lam != one:
                r = r * lam
            res[e] = b[e] + r if base >= 0 else r
        bad += _store(res_bits, m, out[t0 : t0 + m], limit)
    return bad


@njit(**_JIT)
def above(values, value, sums):
    """Return how many of values are above value, and (when sums) their float64 sum."""
    count = 0
    for e in range(values.shape[0]):
        count += values[e] > value
    total = 0.0
    if sums:
        for e in range(values.shape[0]):
            total += values[e] if values[e] > value else 0.0
    return count, total
