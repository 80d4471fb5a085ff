"""Row-chunked versions of mergekit's linear, task_arithmetic, ties and multislerp kernels.

A chunked kernel sees one tensor as a sequence of row chunks (every input's rows a:b, in the
compute dtype). It first makes `passes` statistics passes over all chunks, in row order, to
collect the per-tensor global quantities the method needs, then an output pass in which each
chunk's output rows depend only on that chunk and those scalars:

- linear, task_arithmetic: element-wise, no statistics pass.
- ties (GTA with magnitude sparsification + sign consensus): per input, the exact k-th largest
  |delta| by radix selection (2 passes in float32), plus the L1 sums for `rescale`.
- multislerp: 1 pass for the Gram matrix of the (base-relative) inputs, in float64; norms, the
  normalised weighted mean and the tangent-space terms all follow from it.

Each output equals mergekit 0.1.5's whole-tensor kernel up to floating-point rounding (tested at
1e-6 in float32). ties, when the tensor is one chunk (it fits the budget), keeps exactly the
elements mergekit keeps: the top-k is mergekit's own `sparsify.magnitude` (its unstable argsort
decides which of the magnitudes tied at the density threshold survive; such ties are common in
16-bit checkpoints). A tensor merged in several chunks keeps the same number of elements with
the same magnitudes, but among threshold ties the first in row-major order (see `topk`): the
choice of an unstable sort cannot be streamed. Kernel objects are per tensor and not reusable.
Inputs are borrowed, never modified. Pure maths, no I/O.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from mergekit.sparsify import RescaleNorm, magnitude

from zoo.merge.kernels.topk import RadixSelect, TieCursor, magnitude_keys

Chunk = Sequence[torch.Tensor]


@dataclass(frozen=True)
class Shape:
    """What a chunked kernel knows up front: n inputs of numel elements, compute dtype, device."""

    n: int
    numel: int
    dtype: torch.dtype
    device: torch.device


class ChunkedKernel(abc.ABC):
    """One tensor's merge, run as `passes` statistics passes then one output pass over chunks."""

    passes: int = 0

    # observe and end_pass are optional hooks: a kernel without statistics passes needs neither.
    def observe(self, p: int, chunk: Chunk) -> None:  # noqa: B027
        """Accumulate statistics pass p over one chunk (chunks arrive in row order)."""

    def end_pass(self, p: int) -> None:  # noqa: B027
        """Finish statistics pass p."""

    @abc.abstractmethod
    def output(self, chunk: Chunk) -> torch.Tensor:
        """Return the merged rows of one chunk (called in row order after the last pass)."""


def _non_base(n: int, base_index: int | None) -> list[int]:
    return [i for i in range(n) if i != base_index]


class LinearChunks(ChunkedKernel):
    """mergekit `linear`: sum_i w_i x_i, divided by sum_i w_i when normalize."""

    def __init__(self, params: Mapping[str, Any], base_index: int | None, shape: Shape):
        self.weights = [params["weight"][i] for i in range(shape.n)]
        self.normalize = bool(params["normalize"])

    def output(self, chunk: Chunk) -> torch.Tensor:
        first = chunk[0]
        dtype = torch.float64 if first.dtype == torch.float64 else torch.float32
        result = torch.zeros_like(first, dtype=dtype)
        for tensor, w in zip(chunk, self.weights):
            result.addcmul_(tensor, torch.tensor(w, dtype=dtype, device=first.device))
        if self.normalize:
            result.div_(torch.tensor(self.weights, dtype=dtype).sum().to(first.device))
        return result.to(first.dtype)


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

    def delta(self, j: int, chunk: Chunk) -> torch.Tensor:
        """Return input j's (sparsified) delta rows; j indexes the non-base inputs."""
        return chunk[self.inputs[j]] - chunk[self.base]

    def output(self, chunk: Chunk) -> torch.Tensor:
        base = chunk[self.base]
        if not self.inputs:
            return base
        deltas = base.new_empty((len(self.inputs), *base.shape))
        for j in range(len(self.inputs)):
            deltas[j] = self.delta(j, chunk)
        weights = torch.tensor(self.weights, dtype=deltas.dtype, device=deltas.device)
        weights = weights.view(-1, *([1] * base.dim()))
        deltas.mul_(weights)
        if self.consensus:
            # mergekit: mask = sign(d) == (sum(d) >= 0) * 2 - 1; zeros match neither sign
            positive = deltas.sum(dim=0) >= 0
            mask = (deltas > 0).eq_(positive).logical_and_(deltas != 0)
            mixed = deltas.mul_(mask).sum(dim=0)
            divisor = torch.zeros_like(mixed)
            for w, m in zip(self.weights, mask):
                divisor.add_(m, alpha=w)
            divisor[divisor == 0] = 1
        else:
            mixed = deltas.sum(dim=0)
            divisor = weights.sum(dim=0)
            divisor[divisor.abs() < 1e-8] = 1
        del deltas
        if self.normalize:
            mixed /= divisor
        if self.lambda_ != 1:
            mixed *= self.lambda_
        return (base + mixed).to(base.dtype)


class TiesChunks(TaskArithmeticChunks):
    """mergekit `ties`: per-input magnitude top-k (density) with optional L1 rescale, then sign
    consensus. The k-th largest |delta| of each input is found exactly by radix selection."""

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
        self.passes = max((s.passes for s in self.selects.values()), default=0)
        self.totals = [0.0] * len(self.inputs)
        self.cursors: dict[int, TieCursor] = {}
        self.factors: dict[int, float] = {}

    def observe(self, p: int, chunk: Chunk) -> None:
        if chunk[0].numel() == self.numel:  # the whole tensor: mergekit's own top-k in delta()
            return
        for j, select in self.selects.items():
            delta = self.delta_raw(j, chunk)
            mags = delta.abs()
            if p == 0 and self.rescale:
                self.totals[j] += float(mags.sum(dtype=torch.float64))
            select.observe(magnitude_keys(mags.to(self._key_dtype)), mags)

    def end_pass(self, p: int) -> None:
        for j, select in self.selects.items():
            select.end_pass()
            if p == self.passes - 1:
                self.cursors[j] = TieCursor(select.threshold, select.ties)
                self.factors[j] = self._rescale(j, select)

    def _rescale(self, j: int, select: RadixSelect) -> float:
        if not self.rescale:
            return 1.0
        before, after = self.totals[j], select.kept_sum(self._key_dtype)
        return 1.0 if before < 1e-7 or after < 1e-7 else before / after

    def delta_raw(self, j: int, chunk: Chunk) -> torch.Tensor:
        return chunk[self.inputs[j]] - chunk[self.base]

    def delta(self, j: int, chunk: Chunk) -> torch.Tensor:
        delta = self.delta_raw(j, chunk)
        density = self.densities[j]
        if density >= 1 or not self.numel:
            return delta
        if density <= 0:
            return torch.zeros_like(delta)
        if delta.numel() == self.numel:
            return magnitude(delta, density, RescaleNorm.l1 if self.rescale else None)
        keys = magnitude_keys(delta.abs().to(self._key_dtype))
        keep = self.cursors[j].mask(keys).view(delta.shape)
        masked = delta * keep.to(delta.dtype)
        factor = self.factors[j]
        return masked if factor == 1.0 else masked * factor


class MultiSlerpChunks(ChunkedKernel):
    """mergekit `multislerp`: barycentric interpolation on the hypersphere. One pass gathers the
    float64 Gram matrix G of the inputs (minus the base); norms n_i = sqrt(G_ii), the weighted
    mean of unit vectors, its norm and the dots <u_i, mean> are functions of G."""

    def __init__(self, params: Mapping[str, Any], base_index: int | None, shape: Shape):
        self.base = base_index
        self.inputs = _non_base(shape.n, base_index)
        self.eps = params["eps"]
        w = torch.tensor([params["weight"][i] for i in self.inputs], dtype=torch.float64)
        self.w = w / w.sum() if params["normalize_weights"] else w
        self.passes = 1 if len(self.inputs) > 1 else 0
        self.gram = torch.zeros(len(self.inputs), len(self.inputs), dtype=torch.float64)
        self.error: str | None = None

    def observe(self, p: int, chunk: Chunk) -> None:
        first = chunk[self.inputs[0]]
        vectors = first.new_empty((len(self.inputs), first.numel()), dtype=torch.float64)
        for row, i in enumerate(self.inputs):
            vectors[row] = self._vector(i, chunk).reshape(-1)
        self.gram += (vectors @ vectors.T).cpu()

    def _vector(self, i: int, chunk: Chunk) -> torch.Tensor:
        return chunk[i] - chunk[self.base] if self.base is not None else chunk[i]

    def end_pass(self, p: int) -> None:
        norms = self.gram.diagonal().clamp(min=0).sqrt()
        scale = 1 / (norms + self.eps)
        units = self.gram * scale.view(-1, 1) * scale.view(1, -1)  # <u_i, u_j>
        mean_sq = float(self.w @ units @ self.w)
        self.norms = norms
        self.mean_norm = math.sqrt(max(mean_sq, 0.0))
        self.avg_norm = float(norms @ self.w)
        if self.mean_norm < self.eps:
            self.linear = len(self.inputs) == 2
            if not self.linear:
                self.error = (
                    "The weighted sum of the input tensors is zero. This occurs when antipodal "
                    "vectors or sets of vectors have weights that exactly balance out."
                )
            return
        self.linear = False
        dots = (units @ self.w) / self.mean_norm  # <u_i, mean / |mean|>
        tangent_sq = float(self.w @ (units - dots.view(-1, 1) * dots.view(1, -1)) @ self.w)
        self.theta = math.sqrt(max(tangent_sq, 0.0)) + self.eps
        self.c = float(self.w @ dots)

    def output(self, chunk: Chunk) -> torch.Tensor:
        if not self.passes:
            return chunk[self.inputs[0]]
        if self.error:
            raise ValueError(self.error)
        w = self.w.to(chunk[0].dtype)
        if self.linear:
            result = self._vector(self.inputs[0], chunk) * w[0]
            result += self._vector(self.inputs[1], chunk) * w[1]
        else:
            denominators = (self.norms.to(chunk[0].dtype) + self.eps).to(chunk[0].device)
            mean = torch.zeros_like(chunk[self.inputs[0]])
            for row, i in enumerate(self.inputs):  # sum_i w_i u_i, u_i = v_i / (|v_i| + eps)
                mean += (self._vector(i, chunk) / denominators[row]) * w[row].item()
            unit_mean = mean / self.mean_norm
            tangent = mean.sub_(unit_mean, alpha=self.c)  # = sum_i w_i (u_i - <u_i, m> m)
            result = unit_mean.mul_(math.cos(self.theta))
            result += tangent * (math.sin(self.theta) / self.theta)
            result *= self.avg_norm
        return result + chunk[self.base] if self.base is not None else result
