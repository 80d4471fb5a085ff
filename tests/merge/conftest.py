"""The merge tests' own tiny families (the shared tiny models are in tests/conftest.py)."""

from __future__ import annotations

import shutil

import pytest
from safetensors.torch import load_file, save_file

from tests import tiny as tm


@pytest.fixture(scope="session")
def bert_family(tiny_root):
    """BERT + Dense + Normalize: a base and 3 variants; pooler.dense.bias stays all-zero in all."""
    return tm.family(tiny_root, "bert", n=3, dense=True, keep=("pooler.dense.bias",))


def _as_bf16(folder, dst):
    """Copy a model folder with every floating-point tensor stored in bfloat16."""
    shutil.copytree(folder, dst)
    for file in dst.rglob("*.safetensors"):
        tensors = load_file(file)
        converted = {k: v.bfloat16() if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(converted, file, metadata={"format": "pt"})
    return dst


@pytest.fixture(scope="module")
def bf16_family(bert_family, tmp_path_factory):
    """bert_family stored in bfloat16."""
    root = tmp_path_factory.mktemp("bf16")
    variants = [_as_bf16(p, root / f"v{i}") for i, p in enumerate(bert_family["variants"])]
    return {"base": _as_bf16(bert_family["base"], root / "base"), "variants": variants}
