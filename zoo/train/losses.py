"""Losses beyond sentence-transformers' own: InfoNCE over a row's own candidates only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


class OwnCandidatesLoss(nn.Module):
    """InfoNCE where each anchor is scored only against its own positive and hard negatives.

    BOOM's rule for classification and clustering data: the negatives of a query are texts of
    other labels from its own dataset, chosen at conversion, never other rows of the batch (which
    may share the query's label). Columns: anchor, positive, negative[_1.._k]; cosine scores times
    scale, cross-entropy with the positive as the target.
    """

    def __init__(self, model: Any, scale: float = 50.0):
        super().__init__()
        self.model = model
        self.scale = scale

    def forward(
        self,
        sentence_features: Iterable[dict[str, torch.Tensor]],
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        embeddings = [self.model(f)["sentence_embedding"] for f in sentence_features]
        anchor = nn.functional.normalize(embeddings[0], dim=-1)
        candidates = nn.functional.normalize(torch.stack(embeddings[1:], dim=1), dim=-1)
        scores = torch.einsum("bd,bkd->bk", anchor, candidates) * self.scale
        target = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
        return nn.functional.cross_entropy(scores, target)

    @property
    def citation(self) -> str:
        return "BOOM, arXiv 2602.05787 (classification/clustering data without in-batch negatives)"
