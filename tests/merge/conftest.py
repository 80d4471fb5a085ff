"""Session-scoped tiny models for the merge tests (each folder builds in well under a second)."""

from __future__ import annotations

import pytest
import torch

from tests.merge import tiny_models as tm

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def bert_family(tiny_root):
    """BERT + Dense + Normalize: a base and 3 variants; pooler.dense.bias stays all-zero in all."""
    return tm.family(tiny_root, "bert", n=3, dense=True, keep=("pooler.dense.bias",))


@pytest.fixture(scope="session")
def families(tiny_root):
    """One base + 3 variants per architecture, built on first use."""
    cache: dict[str, dict] = {}

    def get(arch: str) -> dict:
        if arch not in cache:
            cache[arch] = tm.family(tiny_root / "families", arch, n=3)
        return cache[arch]

    return get
