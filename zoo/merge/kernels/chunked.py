"""Row-chunked versions of mergekit's linear, task_arithmetic, ties and multislerp kernels.

A chunked kernel sees one tensor as a sequence of row chunks (every input's rows a:b, in the
compute dtype, or as stored where the kernel says so: `read_dtype`). It first makes `passes`
statistics passes over all chunks, in row order, to collect the per-tensor global quantities the
method needs, then an output pass in which each chunk's output rows depend only on that chunk
and those scalars. Within a chunk the work is cut into row blocks run on the kernel's thread pool
(zoo.merge.parallel); statistics of the blocks are added in block order, so the bytes out do not
depend on the number of threads.

- linear, task_arithmetic: element-wise, no statistics pass.
- ties: in zoo.merge.kernels.ties (a TaskArithmeticChunks with a top-k per input).
- multislerp: 1 pass for the Gram matrix of the (base-relative) inputs, in float64; norms, the
  normalised weighted mean and the tangent-space terms all follow from it, and the output is a
  weighted sum of the inputs with coefficients computed from it (as cheap as linear).

Each output equals mergekit 0.1.5's whole-tensor kernel up to floating-point rounding (tested at
1e-6 in float32). Kernel objects are per tensor and not reusable. Inputs are borrowed, never
modified. Pure maths, no I/O.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from zoo.merge.kernels.fusing import final, fusable, out_dtype, stored_dtype, weighted, widened
from zoo.merge.parallel import SERIAL, Pool, stacked

Chunk = Sequence[torch.Tensor]


@dataclass(frozen=True)
class Shape:
    """What a chunked kernel knows up front: n inputs of numel elements, compute dtype, device,
    the threads it may use, whether the merge is large enough for compiled loops (`fuse`:
    Prepared.fuse; they cost a fixed 117 MiB of resident memory), and the output's dtype (None:
    the compute dtype)."""

    n: int
    numel: int
    dtype: torch.dtype
    device: torch.device
    pool: Pool = field(default=SERIAL, compare=False)
    fuse: bool = True
    out_dtype: torch.dtype | None = None


class ChunkedKernel(abc.ABC):
    """One tensor's merge, run as `passes` statistics passes then one output pass over chunks."""

    passes: int = 0
    # True when the parts output_parts last returned are in the output dtype and were checked
    # finite there (the fused loops' outputs): the engine writes them as they are
    checked: bool = False

    def __init__(self, shape: Shape):
        self.pool = shape.pool

    def _fuse(self, shape: Shape, allowed: bool = True) -> None:
        """Put every output through the fused loops where they serve this Shape (and allowed)."""
        self.fused = fusable(shape) and allowed
        self.checked = self.fused and final(shape)
        self.out_dtype = out_dtype(shape)

    @classmethod
    def read_dtype(cls, stored: torch.dtype, shape: Shape) -> torch.dtype:
        """Return the dtype this kernel takes its chunks in, for inputs all stored in `stored`:
        the compute dtype (the reader converts), unless the kernel widens them itself."""
        return shape.dtype

    # observe and end_pass are optional hooks: a kernel without statistics passes needs neither.
    def observe(self, p: int, chunk: Chunk) -> None:  # noqa: B027
        """Accumulate statistics pass p over one chunk (chunks arrive in row order)."""

    def end_pass(self, p: int) -> None:  # noqa: B027
        """Finish statistics pass p."""

    def output(self, chunk: Chunk) -> torch.Tensor:
        """Return the merged rows of one chunk (called in row order after the last pass)."""
        parts = self.output_parts(chunk)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def output_parts(self, chunk: Chunk) -> list[torch.Tensor]:
        """Return the merged rows of one chunk as consecutive row blocks (see output)."""
        return self.pool.blocks(self.output_block, chunk)

    @abc.abstractmethod
    def output_block(self, block: Chunk) -> torch.Tensor:
        """Return the merged rows of one row block of a chunk."""


GRAM_BLOCK = 1024  # float32 products summed this many at a time, the sums added in float64


def _non_base(n: int, base_index: int | None) -> list[int]:
    return [i for i in range(n) if i != base_index]


def deltas_of(block: Chunk, inputs: Sequence[int], base: int | None) -> torch.Tensor:
    """Return the (inputs, ...) tensor of block[i] - block[base] for i in inputs (a new tensor;
    block[inputs] itself, a view when possible, when there is no base)."""
    whole = stacked(block)
    contiguous = list(inputs) == list(range(inputs[0], inputs[-1] + 1))
    picked = whole[inputs[0] : inputs[-1] + 1] if contiguous else whole[list(inputs)]
    return picked if base is None else torch.sub(picked, whole[base])


def gram(vectors: torch.Tensor) -> torch.Tensor:
    """Return the float64 Gram matrix of the rows of a (k, n) tensor. float32 rows are multiplied
    in float32, GRAM_BLOCK products per partial sum, and the partial sums added in float64:
    within 3e-7 of the largest entry of a float64 product (tests/merge/test_parallel.py), 13x
    cheaper than widening the rows first; mergekit's own float32 norms are 4.5e-4 off on an
    11.7M-element embedding."""
    if vectors.dtype == torch.float64:
        return (vectors @ vectors.T).cpu()
    k, n = vectors.shape
    whole = n // GRAM_BLOCK * GRAM_BLOCK
    result = torch.zeros(k, k, dtype=torch.float64, device=vectors.device)
    if whole:
        parts = vectors[:, :whole].reshape(k, whole // GRAM_BLOCK, GRAM_BLOCK).transpose(0, 1)
        result += torch.bmm(parts, parts.transpose(1, 2)).sum(0, dtype=torch.float64)
    if whole < n:
        rest = vectors[:, whole:].float()
        result += (rest @ rest.T).double()
    return result.cpu()


def weighted_sum(tensors: Chunk, coefficients: Sequence[float]) -> torch.Tensor:
    """Return sum_i c_i t_i in float32 (float64 for float64 inputs), in input order."""
    dtype = torch.float64 if tensors[0].dtype == torch.float64 else torch.float32
    result = tensors[0].to(dtype) * coefficients[0]
    for tensor, c in zip(tensors[1:], coefficients[1:]):
        result.add_(tensor, alpha=c)
    return result


class LinearChunks(ChunkedKernel):
    """mergekit `linear`: sum_i w_i x_i, divided by sum_i w_i when normalize."""

    def __init__(self, params: Mapping[str, Any], base_index: int | None, shape: Shape):
        super().__init__(shape)
        self.weights = [params["weight"][i] for i in range(shape.n)]
        self.normalize = bool(params["normalize"])
        self._fuse(shape)

    @classmethod
    def read_dtype(cls, stored: torch.dtype, shape: Shape) -> torch.dtype:
        return stored_dtype(stored, shape)

    def output_parts(self, chunk: Chunk) -> list[torch.Tensor]:
        if not self.fused:
            return super().output_parts(chunk)
        total = torch.tensor(self.weights, dtype=torch.float32).sum() if self.normalize else 1.0
        n = range(len(self.weights))
        return [weighted(chunk, self.pool, self.out_dtype, n, self.weights, divisor=float(total))]

    def output_block(self, block: Chunk) -> torch.Tensor:
        result = weighted_sum(block, self.weights)
        if self.normalize:
            total = torch.tensor(self.weights, dtype=result.dtype).sum().to(result.device)
            result.div_(total)
        return result.to(block[0].dtype)


class TaskArithmeticChunks(ChunkedKernel):
    """mergekit's generalized task arithmetic without sparsification, optionally with TIES'
    sign consensus: base + lambda * sum_i m_i w_i d_i [/ sum_i m_i w_i] with d_i = x_i - base."""

    consensus = False

    def __init__(self, params: Mapping[str, Any], base_index: int, shape: Shape):
        self.base = base_index
        self.inputs = _non_base(shape.n, base_index)
        self.weights = [params["weight"][i] for i in self.inputs]
        self.normalize = bool(params["normalize"])
        self.lambda_ = params["lambda"]
        super().__init__(shape)
        self._fuse(shape, bool(self.inputs) and not self.consensus)

    @classmethod
    def read_dtype(cls, stored: torch.dtype, shape: Shape) -> torch.dtype:
        return stored_dtype(stored, shape)

    def output_parts(self, chunk: Chunk) -> list[torch.Tensor]:
        if not self.fused:  # (ties overrides this: its own fused loop)
            return super().output_parts(chunk)
        total = float(torch.tensor(self.weights, dtype=torch.float32).sum())
        divisor = (1.0 if abs(total) < 1e-8 else total) if self.normalize else 1.0
        return [
            weighted(chunk, self.pool, self.out_dtype, self.inputs, self.weights, self.base,
                     divisor, self.lambda_, fma=False)
        ]  # fmt: skip

    def sparsify(self, j: int, delta: torch.Tensor, ties: tuple | None) -> None:
        """Sparsify input j's delta rows in place (task arithmetic keeps them all)."""

    def output_block(self, block: Chunk, ties: Sequence[tuple] | None = None) -> torch.Tensor:
        """Merge one block; ties[j]: input j's (threshold ties earlier in the tensor, ties in
        this block), for ties' top-k."""
        base = block[self.base]
        if not self.inputs:
            return base
        ties = ties or [None] * len(self.inputs)
        deltas = deltas_of(block, self.inputs, self.base)
        for j in range(len(self.inputs)):
            self.sparsify(j, deltas[j], ties[j])
        weights = torch.tensor(self.weights, dtype=deltas.dtype, device=deltas.device)
        weights = weights.view(-1, *([1] * base.dim()))
        deltas.mul_(weights)
        if self.consensus:
            # mergekit: mask = sign(d) == (sum(d) >= 0) * 2 - 1; zeros match neither sign.
            # d * mask = sign * relu(d * sign), exactly (sign is +-1)
            # copysign(1, sum) is mergekit's (sum >= 0) * 2 - 1 except at a sum of -0.0, where
            # every delta is +-0 and the output is the base either way
            one = torch.ones((), dtype=deltas.dtype, device=deltas.device)
            sign = torch.copysign(one, deltas.sum(dim=0))
            agreeing = deltas.mul_(sign).clamp_(min=0)
            mixed = agreeing.sum(dim=0).mul_(sign)
            divisor = self._divisor(agreeing)
        else:
            mixed = deltas.sum(dim=0)
            divisor = weights.sum(dim=0)
            divisor[divisor.abs() < 1e-8] = 1
        del deltas
        if self.normalize:
            mixed /= divisor
        if self.lambda_ != 1:
            mixed *= self.lambda_
        return mixed.add_(base).to(base.dtype)

    def _divisor(self, agreeing: torch.Tensor) -> torch.Tensor:
        """Return sum_j w_j [agreeing_j > 0], with 1 where no input agrees (mergekit's rule;
        there the mixed delta is 0, so any non-zero divisor gives the same bytes)."""
        if len(set(self.weights)) == 1 and self.weights[0]:  # agreeing >= 0: sign = indicator
            return agreeing.sign().sum(dim=0).clamp_(min=1).mul_(self.weights[0])
        divisor = torch.zeros_like(agreeing[0])
        for w, part in zip(self.weights, agreeing):
            divisor.add_(part > 0, alpha=w)
        return divisor.masked_fill_(divisor == 0, 1)


class MultiSlerpChunks(ChunkedKernel):
    """mergekit `multislerp`: barycentric interpolation on the hypersphere. One pass gathers the
    float64 Gram matrix G of the inputs (minus the base); norms n_i = sqrt(G_ii), the weighted
    mean of unit vectors, its norm and the dots <u_i, mean> are functions of G. The result,
    avg_norm * (cos(theta) m/|m| + sin(theta)/theta * (m - c m/|m|)) with m = sum_i w_i v_i/n_i,
    is a multiple of m: sum_i a_i v_i (+ the base), one weighted sum per output row."""

    def __init__(self, params: Mapping[str, Any], base_index: int | None, shape: Shape):
        self.base = base_index
        self.inputs = _non_base(shape.n, base_index)
        self.eps = params["eps"]
        w = torch.tensor([params["weight"][i] for i in self.inputs], dtype=torch.float64)
        self.w = w / w.sum() if params["normalize_weights"] else w
        self.passes = 1 if len(self.inputs) > 1 else 0
        self.gram = torch.zeros(len(self.inputs), len(self.inputs), dtype=torch.float64)
        self.error: str | None = None
        super().__init__(shape)
        self.fused = fusable(shape)
        self.final = final(shape)
        self.out_dtype = out_dtype(shape)

    @classmethod
    def read_dtype(cls, stored: torch.dtype, shape: Shape) -> torch.dtype:
        return stored_dtype(stored, shape)

    def observe(self, p: int, chunk: Chunk) -> None:
        for gram in self.pool.blocks(self._gram, chunk):
            self.gram += gram

    def _gram(self, block: Chunk) -> torch.Tensor:
        block = widened(block)
        return gram(deltas_of(block, self.inputs, self.base).reshape(len(self.inputs), -1))

    def end_pass(self, p: int) -> None:
        norms = self.gram.diagonal().clamp(min=0).sqrt()
        scale = 1 / (norms + self.eps)
        units = self.gram * scale.view(-1, 1) * scale.view(1, -1)  # <u_i, u_j>
        mean_sq = float(self.w @ units @ self.w)
        mean_norm = math.sqrt(max(mean_sq, 0.0))
        if mean_norm < self.eps:
            if len(self.inputs) != 2:
                self.error = (
                    "The weighted sum of the input tensors is zero. This occurs when antipodal "
                    "vectors or sets of vectors have weights that exactly balance out."
                )
            self.coefficients = self.w.tolist()  # mergekit: linear for an antipodal pair
            return
        avg_norm = float(norms @ self.w)
        dots = (units @ self.w) / mean_norm  # <u_i, mean / |mean|>
        tangent_sq = float(self.w @ (units - dots.view(-1, 1) * dots.view(1, -1)) @ self.w)
        theta = math.sqrt(max(tangent_sq, 0.0)) + self.eps
        c = float(self.w @ dots)
        # result = s * m: s = avg_norm * (cos(theta)/|m| + sin(theta)/theta * (1 - c/|m|))
        s = avg_norm * (math.cos(theta) / mean_norm + math.sin(theta) / theta * (1 - c / mean_norm))
        self.coefficients = (s * self.w * scale).tolist()

    def output_parts(self, chunk: Chunk) -> list[torch.Tensor]:
        fused = self.fused and self.passes > 0
        self.checked = fused and self.final
        if not fused:
            return super().output_parts(chunk)
        if self.error:
            raise ValueError(self.error)
        return [
            weighted(chunk, self.pool, self.out_dtype, self.inputs, self.coefficients, self.base)
        ]

    def output_block(self, block: Chunk) -> torch.Tensor:
        if not self.passes:
            return block[self.inputs[0]]
        if self.error:
            raise ValueError(self.error)
        block = widened(block)
        result = weighted_sum(deltas_of(block, self.inputs, self.base), self.coefficients)
        if self.base is not None:
            result.add_(block[self.base])
        return result.to(block[0].dtype)
