"""The torch side of the fused loops (zoo.merge.kernels.fused): when they serve a tensor, how a
chunk read as stored reaches them, and the output buffer they write in the output's dtype.

A chunked kernel on the fused path takes its chunks as stored (`read_dtype`: bfloat16 at 2 bytes
an element), hands the loops one (sources, elements) array of their bits, and returns output rows
already in the output dtype and checked finite (ChunkedKernel.checked): the engine writes them
as they are. numba is imported only by the calls that run a loop.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from zoo.merge.parallel import Pool, row_blocks, stacked

_BITS = {torch.float32: torch.uint32, torch.bfloat16: torch.uint16}
FUSED_STORAGE = tuple(_BITS)  # the stored dtypes the fused loops read as they are
OUTPUTS = tuple(_BITS)  # the output dtypes they write


class NotFinite(ArithmeticError):
    """A fused output loop found results that are NaN or beyond the output dtype's range."""


def fusable(shape) -> bool:
    """Whether the fused loops serve a tensor of this Shape (zoo.merge.kernels.chunked): float32
    on CPU, in a merge large enough for them (shape.fuse); ZOO_FUSED=1 or 0 overrides the size
    (to compare the two paths in tests and benchmarks)."""
    if shape.device.type != "cpu" or shape.dtype != torch.float32:
        return False
    forced = os.environ.get("ZOO_FUSED")
    return shape.fuse if forced not in ("0", "1") else forced == "1"


def stored_dtype(stored: torch.dtype, shape) -> torch.dtype:
    """Return the dtype a fused kernel reads inputs stored in `stored` in: as stored where the
    loops read it, else the compute dtype."""
    return stored if stored in FUSED_STORAGE and fusable(shape) else shape.dtype


def out_dtype(shape) -> torch.dtype:
    """The dtype the fused output loops write for this Shape: its output dtype when they can
    write it (float32, bfloat16), else float32 (the engine converts and checks)."""
    return shape.out_dtype if shape.out_dtype in OUTPUTS else torch.float32


def final(shape) -> bool:
    """Whether the fused output loops write this Shape's output dtype itself (checked finite
    there), so that their rows are final (ChunkedKernel.checked)."""
    return (shape.out_dtype or shape.dtype) in OUTPUTS


def widened(chunk: Sequence[torch.Tensor]) -> Sequence[torch.Tensor]:
    """Return a chunk read as stored (bfloat16, for the fused loops) in float32; else itself."""
    if chunk[0].dtype != torch.bfloat16:
        return chunk
    return stacked(chunk).float()


def flat_sources(chunk: Sequence[torch.Tensor]) -> tuple[np.ndarray, int, int]:
    """Return a chunk's values as stored (float32 or bfloat16) as one C-contiguous (sources,
    elements) array of their bits (a view of the reader's stacked buffer), the shift that widens
    them to float32 bits, and the elements per row."""
    whole = stacked(chunk).contiguous()
    row = whole[0, 0].numel() if whole.dim() > 1 else 1
    bits = whole.view(_BITS[whole.dtype]).reshape(whole.shape[0], -1)
    return bits.numpy(), 32 - 8 * whole.element_size(), row


def output_buffer(like: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, np.ndarray, float]:
    """Return an empty output of like's shape in dtype, the flat array of its bits the loops
    write, and the largest finite value of dtype (the loops' range check)."""
    out = torch.empty(like.shape, dtype=dtype)
    flat = out.view(_BITS[dtype]).numpy().reshape(-1)
    return out, flat, float(torch.finfo(dtype).max)


def check(bad: int) -> None:
    """Raise NotFinite when an output loop counted bad results."""
    if bad:
        raise NotFinite(f"{bad} merged values are NaN or Inf in the output dtype")


def weighted(
    chunk: Sequence[torch.Tensor],
    pool: Pool,
    dtype: torch.dtype,
    inputs: Sequence[int],
    coefficients: Sequence[float],
    base: int | None = None,
    divisor: float = 1.0,
    lam: float = 1.0,
    fma: bool = True,
) -> torch.Tensor:
    """Return ((sum_j c_j (x_j - base)) / divisor * lam + base) over a chunk read as stored, in
    dtype (fused.weighted_output), its row blocks on the pool; raise NotFinite. fma: each term
    is added with one rounding, as torch's add_(alpha=)/addcmul_ do (linear, multislerp), else
    after its product's (mergekit's sum of products: task arithmetic)."""
    from zoo.merge.kernels import fused

    whole, shift, row = flat_sources(chunk)
    out, flat, limit = output_buffer(chunk[0], dtype)
    sources = np.array(inputs, dtype=np.int64)
    c = np.array(coefficients, dtype=np.float32)
    params = (-1 if base is None else base, sources, c, fma, np.float32(divisor), np.float32(lam))

    def block(ab: tuple[int, int]) -> int:
        e0, e1 = ab[0] * row, ab[1] * row
        return fused.weighted_output(whole, shift, e0, e1, *params, np.float32(limit), flat)

    check(sum(pool.map(block, row_blocks(chunk))))
    return out
