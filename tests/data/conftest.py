"""Fixtures of the data-layer tests: the tiny suite, built once per session."""

from pathlib import Path

import pytest

from zoo.data.suite import build_suite


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory) -> Path:
    """The tiny offline suite, built from sources present after `pip install` (no apt)."""
    return build_suite("tiny", tmp_path_factory.mktemp("suite") / "tiny")
