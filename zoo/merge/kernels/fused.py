"""Fused CPU loops for ties: each pass over a row block is one compiled loop (numba), not a
chain of full-size torch operations that each make a round trip through memory.

Two kernels, both on a chunk stacked as one C-contiguous array of shape (sources, n) holding
float32 or bfloat16 values as they are stored on disk (viewed as uint32 or uint16: `bits`), so
16-bit checkpoints are read at 2 bytes an element and widened to float32 in registers, exact.
Each works on the elements e0:e1 of every source (a row block) and releases the GIL, so the
merge's thread pool runs blocks side by side:

- `ties_window`: one statistics pass. For each input, the |delta| above a window [lo, hi] are
  counted (and, for `rescale`, summed in float64), those equal to either end are counted, and
  those strictly inside are copied out as candidates for the exact k-th largest
  (zoo.merge.kernels.topk.WindowSelect). NaN counts as above.
- `ties_output`: the output pass: keep |delta| > floor (NaN is kept), scale by the rescale
  factor and the weight, take mergekit's sign consensus (sign of the sum, `sum >= 0` positive),
  sum the agreeing terms and their weights, divide (a divisor under 1e-8 is 1), scale by lambda,
  add the base. Every step is mergekit's float32 operation in mergekit's order, element by
  element, so blocks and threads cannot change the bytes.

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
    for e in range(m):
        tile[e] = np.uint32(src[t0 + e]) << shift


@njit(**_JIT)
def ties_window(stack, shift, e0, e1, base, inputs, lo, hi, sums, counts, above_sum, total, cand):
    """For input jj = 0..: count the |x - b| above hi[jj], equal to lo[jj] and equal to hi[jj]
    into counts[jj, 0:3] (and add the float64 sum of those above to above_sum[jj], of all to
    total[jj], when sums); copy those strictly inside (lo, hi) to cand[jj, counts[jj, 3]:],
    counting them in counts[jj, 3] (cand holds e1 - e0 per input)."""
    base_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = base_bits.view(np.float32), x_bits.view(np.float32)
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        _widen(stack[base], t0, m, shift, base_bits)
        for jj in range(inputs.shape[0]):
            _widen(stack[inputs[jj]], t0, m, shift, x_bits)
            low, high, row = lo[jj], hi[jj], cand[jj]
            c, up, at_low, at_high, up_sum, tot = counts[jj, 3], 0, 0, 0, 0.0, 0.0
            for e in range(m):
                a = abs(x[e] - b[e])
                over = not (a <= high)
                up += over
                at_low += a == low
                at_high += a == high
                row[c] = a
                c += (a > low) and (a < high)
                if sums:
                    tot += a
                    up_sum += a if over else 0.0
            counts[jj, 0] += up
            counts[jj, 1] += at_low
            counts[jj, 2] += at_high
            counts[jj, 3] = c
            if sums:
                above_sum[jj] += up_sum
                total[jj] += tot


@njit(**_JIT)
def ties_output(stack, shift, e0, e1, base, inputs, floors, factors, weights, normalize, lam, out):
    """Write the ties merge of elements e0:e1 to out[e0:e1] (see the module docstring)."""
    n_in = inputs.shape[0]
    zero, one = np.float32(0), np.float32(1)
    base_bits = np.empty(TILE, np.uint32)
    x_bits = np.empty(TILE, np.uint32)
    b, x = base_bits.view(np.float32), x_bits.view(np.float32)
    terms = np.empty((n_in, TILE), np.float32)
    total = np.empty(TILE, np.float32)
    mixed = np.empty(TILE, np.float32)
    divisor = np.empty(TILE, np.float32)
    for t0 in range(e0, e1, TILE):
        m = min(TILE, e1 - t0)
        _widen(stack[base], t0, m, shift, base_bits)
        total[:m] = zero
        for jj in range(n_in):
            _widen(stack[inputs[jj]], t0, m, shift, x_bits)
            floor, factor, w = floors[jj], factors[jj], weights[jj]
            row = terms[jj]
            for e in range(m):
                d = x[e] - b[e]
                a = abs(d)
                v = (d * factor) * w if (a > floor or a != a) else zero
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
            out[t0 + e] = b[e] + r
