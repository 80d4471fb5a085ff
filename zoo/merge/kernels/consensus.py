"""Consensus merging with TALL masks (Wang et al., ICML 2024, arXiv 2405.07813).

With task vectors tau_t = theta_t - theta_0 and a multi-task vector tau_MTL (task arithmetic:
sum_t w_t tau_t; or TIES), the TALL mask of task t keeps the weights that matter to it,
    m_t = |tau_t| > lambda_t * |tau_MTL - tau_t|
    (that is |theta_0 - theta_t| > lambda_t |theta_MTL - theta_t|)
and the consensus mask keeps weights that at least k tasks use (k=2 drops "selfish" and
"catastrophic" weights):  theta = theta_0 + alpha * 1[sum_t m_t >= k] * tau_MTL.
Masks are element-wise, so computing them tensor by tensor is exact for task arithmetic. For the
TIES variant the trimming is per tensor (mergekit's TIES), not over the flattened model as in the
reference code (github.com/nik-dim/tall_masks). lambda_t is tuned on validation data in the paper
(grid 0.2-0.6); here it is a parameter (default 0.4, the middle of that grid).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from zoo.merge.kernels.mergekit_kernels import run_mergekit
from zoo.merge.kernels.spec import PerNonBase


def consensus_ta(
    tensors: Sequence[torch.Tensor],
    base_index: int,
    name: str,
    *,
    weight: PerNonBase[float] = 1.0,
    tall_lambda: PerNonBase[float] = 0.4,
    k: int = 2,
    lambda_: float = 1.0,
) -> torch.Tensor:
    """Consensus Task Arithmetic: tau_MTL = sum_t weight_t * tau_t, masked by task consensus."""
    base, taus, ids = _task_vectors(tensors, base_index)
    multi = torch.zeros_like(base)
    for i, tau in zip(ids, taus):
        multi.add_(tau, alpha=weight[i])
    merged = _consensus(base, taus, multi, [tall_lambda[i] for i in ids], k, lambda_)
    return merged.to(tensors[base_index].dtype)


def consensus_ties(
    tensors: Sequence[torch.Tensor],
    base_index: int,
    name: str,
    *,
    weight: PerNonBase[float] = 1.0,
    density: PerNonBase[float] = 0.2,
    tall_lambda: PerNonBase[float] = 0.4,
    k: int = 2,
    lambda_: float = 1.0,
) -> torch.Tensor:
    """Consensus TIES: tau_MTL = mergekit TIES (disjoint sum, normalize=False), then masked."""
    base, taus, ids = _task_vectors(tensors, base_index)
    params = {"weight": weight, "density": density, "normalize": False}
    ties = run_mergekit("ties", tensors, base_index, name, params)
    multi = ties.to(base.dtype) - base
    merged = _consensus(base, taus, multi, [tall_lambda[i] for i in ids], k, lambda_)
    return merged.to(tensors[base_index].dtype)


def _task_vectors(tensors, base_index):
    dtype = torch.float64 if tensors[base_index].dtype == torch.float64 else torch.float32
    base = tensors[base_index].to(dtype)
    ids = [i for i in range(len(tensors)) if i != base_index]
    return base, [tensors[i].to(dtype) - base for i in ids], ids


def _consensus(base, taus, multi, lambdas, k, scale):
    # One task at a time, so scratch stays a few tensors however many models are merged.
    count = torch.zeros(base.shape, dtype=torch.int32, device=base.device)
    for tau, lam in zip(taus, lambdas):
        count += tau.abs() > (multi - tau).abs_().mul_(lam)
    return base + scale * (count >= k) * multi
