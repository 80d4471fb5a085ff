"""Every shipped recipe (recipes/*.yaml) runs as written, on tiny models published under the
names it uses (zoo/all-MiniLM-L6-v2, demo/bag-R, LoRA bags of boom-minilm-lora) on a Hub of its
own, and gives a model that sentence-transformers loads and that differs from every input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests import tiny as tm
from tests.recipe.conftest import bag_meta
from tests.recipe.test_merge_pipeline import run_merge
from zoo.hub.session import open_hub
from zoo.pipelines import push

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
RATIOS = (0.4, 0.6, 0.8, 1.0)


@pytest.fixture(scope="module")
def recipe_hub(tmp_path_factory):
    """A Hub folder with the tiny stand-ins for every name the shipped recipes use."""
    root = tmp_path_factory.mktemp("shipped")
    hub_dir = root / "hub"
    fam = tm.family(root / "fam", "bert", n=len(RATIOS))
    inputs = {}
    with open_hub(str(hub_dir), create=True) as h:
        sha, _ = push(h, fam["base"], "zoo/all-MiniLM-L6-v2", kind="base")
        base_ref = f"zoo/all-MiniLM-L6-v2@{sha}"
        for i, (variant, ratio) in enumerate(zip(fam["variants"], RATIOS)):
            inputs[f"demo/bag-{ratio}"] = _publish(
                h, variant, f"demo/bag-{ratio}", bag_meta(base_ref, "boom-minilm", ratio)
            )
            adapter = tm.lora_adapter(
                fam["base"], root / f"lora-{ratio}", seed=i, target_modules=["query", "value"]
            )
            peft = json.loads((adapter / "adapter_config.json").read_text())
            _publish(
                h,
                adapter,
                f"demo/lora-bag-{ratio}",
                bag_meta(base_ref, "boom-minilm-lora", ratio)
                | {"adapter": {"type": "lora", "peft_config": peft}},
            )
    return {"hub": str(hub_dir), "inputs": inputs, "base": fam["base"]}


def _publish(h, folder: Path, repo: str, meta: dict) -> Path:
    (folder / "zoo.json").write_text(json.dumps(meta))
    push(h, folder, repo)
    (folder / "zoo.json").unlink()
    return folder


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_runs_on_tiny_models(recipe_hub, path, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "out"
    outcome = run_merge(recipe_hub["hub"], path, out=out, progress=False)
    assert outcome.lock.models and (out / "zoo.lock.json").is_file()
    assert (out / "recipe.yaml").read_text() == path.read_text()
    merged = tm.load_all(out)
    for source in [recipe_hub["base"], *recipe_hub["inputs"].values()]:
        theirs = tm.load_all(source)
        assert any(not torch.equal(merged[k], theirs[k]) for k in theirs if k in merged)
    model = SentenceTransformer(str(out), device="cpu")
    embedding = model.encode(["a tiny sentence"], convert_to_tensor=True)
    assert (
        torch.isfinite(embedding).all() and embedding.shape[-1] == model.get_embedding_dimension()
    )
