"""`zoo push --kind bag --as-lora R`: a full bag published as a small LoRA adapter over its base
(pulled from the Hub), with the rank, the energy kept and the source on the card and in zoo.json."""

from __future__ import annotations

import json

import pytest
import yaml

from tests import tiny as tm
from tests.recipe.conftest import bag_meta
from zoo.cli import main


def hub_args(hub):
    return ["--hub", hub.url, "--token", hub.admin_token]


@pytest.fixture(scope="module")
def full_bag(tiny_base, tmp_path_factory):
    folder = tm.perturb(tiny_base["path"], tmp_path_factory.mktemp("as-lora") / "bag-0.6", seed=5)
    meta = bag_meta(tiny_base["ref"], "as-lora", 0.6)
    (folder / "zoo.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _front_matter(card: str) -> dict:
    return yaml.safe_load(card.split("---")[1])


def test_a_full_bag_lands_as_a_lora_adapter_with_its_card_lines(hub, tiny_base, full_bag, capsys):
    capsys.readouterr()
    argv = ["push", str(full_bag), "demo/bag-0.6-lora8", "--kind", "bag", "--as-lora", "8"]
    assert main([*argv, "--json", *hub_args(hub)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["lora_rank"] == 8 and 0 < data["retained_energy"] < 1
    api = hub.api()
    files = set(api.list_repo_files("demo/bag-0.6-lora8"))
    assert {"adapter_config.json", "adapter_model.safetensors", "extract_lora.json"} <= files
    assert "model.safetensors" not in files and "config.json" not in files
    zoo_json = json.loads(open(api.hf_hub_download("demo/bag-0.6-lora8", "zoo.json")).read())
    assert zoo_json["adapter"]["type"] == "lora" and zoo_json["kind"] == "bag"
    assert zoo_json["adapter"]["peft_config"]["r"] == 8
    assert zoo_json["adapter"]["peft_config"]["base_model_name_or_path"] == "zoo/tiny-bert"
    assert zoo_json["base_model"] == tiny_base["ref"]
    assert zoo_json["training"]["experiment"] == "as-lora"  # the bag's record is kept
    labels = zoo_json["labels"]
    assert labels["lora_rank"] == "8" and labels["extracted_from"] == "bag-0.6"
    assert float(labels["retained_energy"]) == pytest.approx(data["retained_energy"], abs=1e-6)
    card = open(api.hf_hub_download("demo/bag-0.6-lora8", "README.md")).read()
    front = _front_matter(card)
    assert front["base_model_relation"] == "adapter" and front["base_model"] == ["zoo/tiny-bert"]
    energy = f"{data['retained_energy']:.2%}"
    assert (
        "This LoRA adapter (rank 8) was extracted by truncated SVD from the full fine-tune "
        f"bag-0.6; it keeps {energy}" in card
    )
    assert "| LoRA rank | 8 |" in card and f"| energy kept | {energy} |" in card
    assert "| extracted from | bag-0.6 |" in card


def test_the_published_adapter_loads_back_with_zoo(hub, tiny_base, full_bag, tmp_path, capsys):
    from zoo.merge.engine import MergeInput, merge_folders

    assert (
        main(["push", str(full_bag), "demo/bag-full-rank", "--as-lora", "64", *hub_args(hub)]) == 0
    )
    assert "100.0000% of the energy kept" in capsys.readouterr().err
    assert main(["pull", "demo/bag-full-rank", "--to", str(tmp_path / "p"), *hub_args(hub)]) == 0
    inputs = [MergeInput(tmp_path / "p", {"weight": 1.0}, adapter_base=tiny_base["path"])]
    merge_folders(inputs, None, "linear", {}, tmp_path / "out", progress=False)
    ours, ref = tm.load_all(tmp_path / "out"), tm.load_all(full_bag)
    assert sorted(ours) == sorted(ref)
    assert max((ours[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5


def test_as_lora_errors_are_one_line(hub, tiny_base, full_bag, tmp_path, capsys):
    adapter = tmp_path / "ad"
    tm.lora_adapter(tiny_base["path"], adapter, seed=0, target_modules=["query"])
    cases = [
        (["push", str(adapter), "demo/x", "--as-lora", "4"], "is already a LoRA adapter"),
        (["push", str(tiny_base["path"]), "demo/x", "--as-lora", "4"], "base model is unknown"),
        (["push", str(full_bag), "demo/x", "--base", str(full_bag)], "--base: only with --as-lora"),
        (["push", str(full_bag), "demo/x", "--as-lora", "0"], "rank: must be a whole number"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main([*argv, *hub_args(hub)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
