"""Shared fixtures of the training tests: one tiny BERT per session, built from config."""

from pathlib import Path

import pytest

from tests.train.tiny import build_tiny_bert


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random BERT sentence-transformers folder (read-only for tests)."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "base")
