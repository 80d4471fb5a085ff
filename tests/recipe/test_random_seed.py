"""`zoo.random_seed`: DARE/DELLA masks drawn as `mergekit-yaml --random-seed N` draws them.

Through the CLI on a recipe file: the output equals mergekit's run_merge under the same seed bit
for bit, the lock records the seed and reruns the same bytes, and without it zoo's own
per-tensor seed gives other masks.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from tests import tiny as tm
from zoo.cli import main


@pytest.fixture(scope="module")
def llamas(tmp_path_factory):
    root = tmp_path_factory.mktemp("llamas")
    return [tm.build_decoder(root / f"m{i}", "llama", seed=i) for i in range(3)]


def _recipe(llamas, method: str, **zoo) -> dict:
    base, *others = llamas
    config = {
        "merge_method": method,
        "base_model": str(base),
        "dtype": "float32",
        "parameters": {"density": 0.6} | ({"epsilon": 0.1} if "della" in method else {}),
        "models": [{"model": str(m), "parameters": {"weight": 0.5}} for m in others],
    }
    return config | ({"zoo": zoo} if zoo else {})


def _mergekit(config: dict, out, seed: int) -> dict[str, torch.Tensor]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    options = MergeOptions(
        copy_tokenizer=False, write_model_card=False, quiet=True, device="cpu", random_seed=seed
    )
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)
    return tm.load_all(out)


def _zoo(config: dict, tmp_path, name: str) -> dict[str, torch.Tensor]:
    recipe = tmp_path / f"{name}.yaml"
    recipe.write_text(yaml.safe_dump(config))
    assert main(["merge", str(recipe), "--out", str(tmp_path / name), "--quiet"]) == 0
    return tm.load_all(tmp_path / name)


@pytest.mark.parametrize("method", ["dare_ties", "della_linear"])
def test_random_seed_draws_mergekits_masks(llamas, tmp_path, method):
    theirs = _mergekit(_recipe(llamas, method), tmp_path / "mk", seed=7)
    ours = _zoo(_recipe(llamas, method, random_seed=7), tmp_path, "zoo")
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    lock = json.loads((tmp_path / "zoo" / "zoo.lock.json").read_text())
    assert lock["random_seed"] == 7
    again = tmp_path / "again"
    args = ["merge", "--lock", str(tmp_path / "zoo" / "zoo.lock.json"), "--out", str(again)]
    assert main([*args, "--quiet"]) == 0
    assert (again / "model.safetensors").read_bytes() == (
        tmp_path / "zoo" / "model.safetensors"
    ).read_bytes()
    own = _zoo(_recipe(llamas, method), tmp_path, "own-seed")
    assert not all(torch.equal(own[k], theirs[k]) for k in own)  # zoo.seed draws other masks
