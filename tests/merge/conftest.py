"""The merge tests' own tiny family (the shared tiny models are in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests import tiny as tm


@pytest.fixture(scope="session")
def bert_family(tiny_root):
    """BERT + Dense + Normalize: a base and 3 variants; pooler.dense.bias stays all-zero in all."""
    return tm.family(tiny_root, "bert", n=3, dense=True, keep=("pooler.dense.bias",))
