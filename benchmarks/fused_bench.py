"""The fused loops alone (zoo.merge.kernels.fused): nanoseconds per element and input of ties'
window (statistics) pass and output pass, and of the weighted sum (linear's output), on one
1536 x 8960 bf16 tensor of 3 inputs + a base (a Qwen3-1.5B MLP shape), in row blocks of 29 rows,
output in bfloat16, on 1 and 2 threads (medians of 5):

    .venv/bin/python benchmarks/fused_bench.py
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from zoo.merge.kernels import fused

N = 1536 * 8960
BLOCK = 29 * 8960
INPUTS = np.array([1, 2, 3])


def main() -> None:
    bits = (torch.randn(4, N) * 0.02).bfloat16().view(torch.uint16).numpy()
    lo, hi = np.full(3, 0.0185, np.float32), np.full(3, 0.0195, np.float32)
    out = np.empty(N, np.uint16)  # bfloat16 bits
    ones = np.ones(3, np.float32)
    one, limit = np.float32(1), np.float32(torch.finfo(torch.bfloat16).max)

    def window(e0: int) -> None:
        counts, sums = np.zeros((3, 4), np.int64), np.zeros((2, 3))
        cand = np.empty((3, BLOCK), np.float32)
        e1 = min(e0 + BLOCK, N)
        fused.ties_window(bits, 16, e0, e1, 0, INPUTS, lo, hi, False, counts, *sums, cand)

    def output(e0: int) -> None:
        e1 = min(e0 + BLOCK, N)
        cuts = np.full(3, e0)
        fused.ties_output(bits, 16, e0, e1, 0, INPUTS, hi, cuts, ones, ones, True, one, limit, out)

    def weighted(e0: int) -> None:
        e1 = min(e0 + BLOCK, N)
        fused.weighted_output(
            bits, 16, e0, e1, -1, INPUTS, ones, True, np.float32(3), one, limit, out
        )

    starts = list(range(0, N, BLOCK))
    window(0), output(0), weighted(0)  # compile or load from numba's cache
    for threads in (1, 2):
        with ThreadPoolExecutor(threads) as pool:
            for name, fn in (("window", window), ("output", output), ("sum", weighted)):
                runs = []
                for _ in range(5):
                    start = time.perf_counter()
                    list(pool.map(fn, starts))
                    runs.append(time.perf_counter() - start)
                ns = statistics.median(runs) / (3 * N) * 1e9
                print(f"{threads} thread(s)  {name:6s} {ns:.2f} ns per element and input")


if __name__ == "__main__":
    main()
