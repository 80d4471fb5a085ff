"""The training tests' base model, built once per session from the shared tiny builder."""

from pathlib import Path

import pytest

from tests import tiny


@pytest.fixture(scope="session")
def tiny_base(tiny_root) -> Path:
    """A 2-layer, 64-wide random BERT sentence-transformers folder, mean pooling (read-only)."""
    return tiny.build_st(tiny_root / "train-bert", "bert", **tiny.TRAIN_BERT)
