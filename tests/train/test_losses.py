"""OwnCandidatesLoss against its formula; the pipeline routes own-candidates datasets to it."""

import datasets
import pytest
import torch

from zoo.errors import UserError
from zoo.train.inputs import prepare
from zoo.train.losses import OwnCandidatesLoss


class Identity(torch.nn.Module):
    def forward(self, features):
        return {"sentence_embedding": features["x"]}


def test_formula_matches_manual_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    a, p, n1, n2 = (torch.randn(5, 8, generator=gen) for _ in range(4))
    loss = OwnCandidatesLoss(Identity(), scale=20.0)([{"x": a}, {"x": p}, {"x": n1}, {"x": n2}])
    cos = torch.nn.functional.cosine_similarity
    expected = 0.0
    for i in range(5):
        scores = torch.stack([cos(a[i], c[i], dim=0) for c in (p, n1, n2)]) * 20.0
        expected += -torch.log_softmax(scores, 0)[0] / 5
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_no_in_batch_terms():
    """Changing another row's candidates does not change a row's loss."""
    gen = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(4, 8, generator=gen) for _ in range(3))
    loss = OwnCandidatesLoss(Identity())
    first = loss([{"x": a[:1]}, {"x": p[:1]}, {"x": n[:1]}])
    both = loss([{"x": a[:2]}, {"x": p[:2]}, {"x": n[:2]}])
    second = loss([{"x": a[1:2]}, {"x": p[1:2]}, {"x": n[1:2]}])
    torch.testing.assert_close(both, (first + second) / 2)


def test_prepare_checks_own_candidates_datasets():
    ds = datasets.Dataset.from_dict(
        {"anchor": ["a"], "positive": ["b"], "negative_1": ["c"], "negative_2": ["d"]}
    )
    prepared = prepare({"cls": ds}, own_candidates=["cls"])
    assert prepared.own_candidates == {"cls"}
    assert prepared.datasets["cls"].column_names == [
        "anchor",
        "positive",
        "negative_1",
        "negative_2",
    ]
    plain = datasets.Dataset.from_dict({"anchor": ["a"], "positive": ["b"]})
    with pytest.raises(UserError, match="no negative column"):
        prepare({"cls": plain}, own_candidates=["cls"])
    with pytest.raises(UserError, match="unknown"):
        prepare({"cls": ds}, own_candidates=["other"])
