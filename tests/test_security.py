"""zoo never runs code it was handed: no trust_remote_code, no pickles outside --allow-pickle."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from tests import tiny as tm
from zoo.errors import UserError
from zoo.eval.model import ModelSpec
from zoo.eval.model import load_model as eval_load
from zoo.train.config import TrainConfig
from zoo.train.model import load_model as train_load

ZOO = Path(__file__).resolve().parents[1] / "zoo"
EVIL = "from pathlib import Path\nPath(__file__).with_name('RAN').write_text('code ran')\n"


def _keyword_uses(name: str):
    for path in sorted(ZOO.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.keyword) and node.arg == name:
                yield f"{path.relative_to(ZOO)}:{node.lineno}", node.value
            if isinstance(node, ast.Constant) and node.value == name:
                yield f"{path.relative_to(ZOO)}:{node.lineno}", None


def test_zoo_never_passes_trust_remote_code():
    assert list(_keyword_uses("trust_remote_code")) == []


def test_torch_load_is_only_called_with_weights_only():
    calls = [(where, value) for where, value in _keyword_uses("weights_only")]
    assert calls, "the pickle reader should name weights_only explicitly"
    assert all(isinstance(v, ast.Constant) and v.value is True for _, v in calls), calls


@pytest.fixture
def custom_code(tiny_bert, tmp_path):
    """A model whose config asks transformers to import its own evil.py."""
    folder = tmp_path / "custom"
    shutil.copytree(tiny_bert, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="evil-bert",
        auto_map={"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(EVIL)
    return folder


def _loaders(folder: Path):
    return {
        "eval": lambda: eval_load(ModelSpec(folder.name, None, "test", folder), "cpu"),
        "train": lambda: train_load(TrainConfig(base=str(folder))),
    }


@pytest.mark.parametrize("loader", ["eval", "train"])
def test_a_model_asking_for_its_own_code_is_refused_and_never_run(custom_code, loader):
    with pytest.raises(UserError) as err:
        _loaders(custom_code)[loader]()
    assert "trust_remote_code" in str(err.value) and "\n" not in str(err.value)
    assert not (custom_code / "RAN").exists()


@pytest.mark.parametrize("loader", ["eval", "train"])
def test_pickle_only_weights_are_refused_before_any_load(tiny_bert, tmp_path, loader):
    pickled = tm.rewrite_root(tiny_bert, tmp_path / "pickled", pickle=True)
    assert (pickled / "pytorch_model.bin").is_file()
    with pytest.raises(UserError, match="only pickle weights"):
        _loaders(pickled)[loader]()
