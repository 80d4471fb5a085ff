"""OPCM: projection-based continual merging (Tang et al., NeurIPS 2025, arXiv 2501.09522).

Models arrive in input order. With tau_t = theta_t - theta_0 and the running sum S_1 = tau_1:
for each later model, a linear weight's update is projected away from the dominant subspace of the
merged update so far, S_{t-1} = U diag(s) V^T (SVD):  P = U^T tau_t V; zero diag(P) and the block
P[:r, :r], where r is the first index at which cumsum(s)/sum(s) > alpha; tau'_t = U P V^T. Other
parameters (biases, norms, embeddings) add tau_t unchanged. S_t = S_{t-1} + tau'_t.
The result is theta_0 + S_T / lambda_T with lambda_T = ||S_T|| / mean_t ||tau_t||, norms taken over
the whole model (as the reference implementation, fusion_bench `opcm`, does): that rescaling is a
`DeltaScale` the engine applies in a second streaming pass.
Only the first min(m, n) columns of U and V meet the zeroed entries, so the reduced SVD gives the
same tau'_t as the full one at a fraction of the memory. When S_{t-1} is zero there is no subspace
to avoid and tau'_t = tau_t (the reference would project onto an arbitrary basis there).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import torch

_EMBEDDING = re.compile(
    r"(^|[._/])(embeddings?|embed_tokens|wte|wpe|tok_embeddings|shared)([._]|$)"
)


def opcm(
    tensors: Sequence[torch.Tensor],
    base_index: int,
    name: str,
    *,
    alpha: float = 0.5,
    project_embeddings: bool = False,
) -> torch.Tensor:
    """Return theta_0 + S_T, the running sum of projected task vectors (before model scaling)."""
    dtype = torch.float64 if tensors[base_index].dtype == torch.float64 else torch.float32
    base = tensors[base_index].to(dtype)
    taus = [t.to(dtype) - base for i, t in enumerate(tensors) if i != base_index]
    projected = base.dim() == 2 and (project_embeddings or not _EMBEDDING.search(name))
    total = taus[0].clone()
    for tau in taus[1:]:
        total += project_out(total, tau, alpha) if projected else tau
    return (base + total).to(tensors[base_index].dtype)


def project_out(merged: torch.Tensor, tau: torch.Tensor, alpha: float) -> torch.Tensor:
    """Return tau without its components on the dominant singular pairs of `merged` (OPCM step)."""
    if not torch.any(merged):
        return tau
    u, s, vh = torch.linalg.svd(merged, full_matrices=False)
    split = int((s.cumsum(0) / s.sum() > alpha).float().argmax())
    coords = u.T @ tau @ vh.T
    mask = torch.eye(len(s), dtype=torch.bool, device=tau.device)
    mask[:split, :split] = True
    return tau - u @ (coords * mask) @ vh


def opcm_stats(tensors: Sequence[torch.Tensor], base_index: int, merged: torch.Tensor) -> dict:
    """Return this tensor's share of ||S_T||^2 and of every ||tau_t||^2 (summed over the model)."""
    base = tensors[base_index].double()
    stats = {"merged_sq": float((merged.double() - base).square().sum())}
    others = [t for i, t in enumerate(tensors) if i != base_index]
    for i, t in enumerate(others):
        stats[f"tau_sq.{i}"] = float((t.double() - base).square().sum())
    return stats


def opcm_scale(totals: Mapping[str, float]) -> float:
    """Return 1 / lambda_T = mean_t ||tau_t|| / ||S_T|| (1 when nothing changed)."""
    norms = [math.sqrt(v) for k, v in sorted(totals.items()) if k.startswith("tau_sq.")]
    merged = math.sqrt(totals.get("merged_sq", 0.0))
    return (sum(norms) / len(norms)) / merged if merged > 0 and norms else 1.0
