"""`model: BASE+ADAPTER` (mergekit's LoRA reference): the adapter folded into its base while
streaming, as peft's merge_and_unload would, from local folders or the Hub, pinned in the lock."""

from __future__ import annotations

import json

import pytest

from tests import tiny as tm
from zoo.cli import main
from zoo.errors import UserError
from zoo.hub.session import open_hub_if
from zoo.pipelines.merging import MergeOptions, merge, prepare_merge
from zoo.recipe.lock import load_lock

TARGETS = ["query", "value", "dense"]


def _recipe(tmp_path, models, name="recipe.yaml", method="linear"):
    lines = [f"merge_method: {method}", "dtype: float32", "models:"]
    for ref, weight in models:
        lines += [f"  - model: {ref}", f"    parameters: {{weight: {weight}}}"]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def lora(families, tmp_path):
    bert = families("bert")
    adapter = tm.lora_adapter(bert["base"], tmp_path / "adapter", seed=3, target_modules=TARGETS)
    return {"base": bert["base"], "other": bert["variants"][1], "adapter": adapter}


def test_base_plus_adapter_is_the_adapter_merged_in(lora, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    plus = f"{lora['base']}+{lora['adapter']}"
    alone = _recipe(tmp_path, [(plus, 1.0)], "alone.yaml")
    mixed = _recipe(tmp_path, [(plus, 0.7), (lora["other"], 0.3)], "mixed.yaml")
    assert main(["merge", str(alone), "--out", str(tmp_path / "alone"), "--quiet"]) == 0
    assert main(["merge", str(mixed), "--out", str(tmp_path / "mixed"), "--quiet"]) == 0
    folded = tm.peft_merged(lora["base"], lora["adapter"])
    tm.assert_close(tm.root_tensors(tmp_path / "alone"), folded)
    other = tm.root_tensors(lora["other"])
    tm.assert_close(
        tm.root_tensors(tmp_path / "mixed"),
        {k: 0.7 * v + 0.3 * other[k] for k, v in folded.items()},
    )
    SentenceTransformer(str(tmp_path / "mixed"), device="cpu")  # a complete ST folder
    lock = load_lock(tmp_path / "mixed" / "zoo.lock.json")
    first = lock.models[0]
    assert (first.requested, first.pinned) == (str(lora["base"]), str(lora["base"]))
    assert first.adapter.pinned == str(lora["adapter"])
    assert "adapter_model.safetensors" in first.adapter.files
    written = json.loads(lock.to_json())["models"]
    assert lock.models[1].adapter is None and "adapter" not in written[1]  # no key when unset


def test_lock_reproduces_and_checks_the_adapter(lora, tmp_path, capsys):
    plus = f"{lora['base']}+{lora['adapter']}"
    recipe = _recipe(tmp_path, [(plus, 0.5), (lora["other"], 0.5)])
    assert main(["merge", str(recipe), "--dry-run"]) == 0
    assert f"model: {plus}" in capsys.readouterr().out
    assert main(["merge", str(recipe), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    lock_file = tmp_path / "a" / "zoo.lock.json"
    assert main(["merge", "--lock", str(lock_file), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    for name in ("model.safetensors", "zoo.lock.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    data = json.loads(lock_file.read_text())
    data["models"][0]["adapter"]["files"]["adapter_model.safetensors"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["merge", "--lock", str(tmp_path / "bad.json"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert "adapter_model.safetensors" in err and "the lock says" in err and "\n" not in err


@pytest.mark.parametrize(
    "ref, needle",
    [
        ("a+b+c", "models[0].model: 'a+b+c': expected MODEL or MODEL+LORA_ADAPTER"),
        ("a+", "models[0].model: 'a+': expected MODEL or MODEL+LORA_ADAPTER"),
    ],
)
def test_malformed_plus_reference_is_one_line(tmp_path, capsys, ref, needle):
    recipe = _recipe(tmp_path, [(ref, 1.0)])
    assert main(["merge", str(recipe), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


def test_base_model_with_an_adapter_is_refused(lora, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"merge_method: task_arithmetic\nbase_model: {lora['base']}+{lora['adapter']}\n"
        f"models:\n  - model: {lora['other']}\n    parameters: {{weight: 1.0}}\n"
    )
    assert main(["merge", str(recipe), "--out", str(tmp_path / "o")]) == 2
    assert "base_model:" in capsys.readouterr().err


def _run(hub, recipe=None, *, lock=None, **options):
    job = prepare_merge(recipe, lock, MergeOptions(progress=False, **options))
    with open_hub_if(job.needs_hub, hub.url, hub.admin_token, create=job.writes_hub) as h:
        return merge(h, job)


def test_hub_base_plus_hub_adapter_pinned_both(hub, lora, tmp_path):
    api = hub.api()
    shas = {}
    for repo, folder in (("zoo/lora-base", lora["base"]), ("zoo/lora-adapter", lora["adapter"])):
        api.create_repo(repo, exist_ok=True)
        shas[repo] = api.upload_folder(repo_id=repo, folder_path=str(folder)).oid
    recipe = _recipe(tmp_path, [("zoo/lora-base+zoo/lora-adapter@main", 1.0)])
    outcome = _run(hub, recipe, out=tmp_path / "hub")
    locked = outcome.lock.models[0]
    assert locked.pinned == f"zoo/lora-base@{shas['zoo/lora-base']}"
    assert locked.adapter.requested == "zoo/lora-adapter@main"
    assert locked.adapter.pinned == f"zoo/lora-adapter@{shas['zoo/lora-adapter']}"
    tm.assert_close(
        tm.root_tensors(tmp_path / "hub"), tm.peft_merged(lora["base"], lora["adapter"])
    )
    again = _run(hub, lock=tmp_path / "hub" / "zoo.lock.json", out=tmp_path / "again")
    assert again.lock == outcome.lock
    assert (tmp_path / "hub/model.safetensors").read_bytes() == (
        tmp_path / "again/model.safetensors"
    ).read_bytes()
    data = json.loads((tmp_path / "hub" / "zoo.lock.json").read_text())
    data["models"][0]["adapter"]["files"]["adapter_config.json"] = "0" * 64
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match="adapter_config.json has sha256 .* the lock says"):
        _run(hub, lock=tmp_path / "bad.json", out=tmp_path / "bad")


def test_equals_mergekit_yaml_on_a_causal_lm(tmp_path):
    """mergekit folds `model+lora` with peft into a cached copy, then merges; zoo streams it."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions as MkOptions
    from mergekit.merge import run_merge

    base = tm.build_decoder(tmp_path / "base", "llama", seed=0)
    other = tm.build_decoder(tmp_path / "other", "llama", seed=1)
    adapter = tm.causal_lora_adapter(base, tmp_path / "adapter", seed=5)
    models = [(f"{base}+{adapter}", 0.6), (other, 0.4)]
    recipe = _recipe(tmp_path, models)
    assert main(["merge", str(recipe), "--out", str(tmp_path / "zoo"), "--quiet"]) == 0
    config = MergeConfiguration.model_validate(
        {
            "merge_method": "linear",
            "dtype": "float32",
            "models": [{"model": str(r), "parameters": {"weight": w}} for r, w in models],
        }
    )
    options = MkOptions(
        lora_merge_cache=str(tmp_path / "lora-cache"),
        copy_tokenizer=False,
        write_model_card=False,
        quiet=True,
        device="cpu",
    )
    run_merge(config, str(tmp_path / "mk"), options=options)
    ours, theirs = tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "mk")
    assert "model.layers.0.self_attn.q_proj.weight" in ours
    tm.assert_close(ours, theirs)
    folded, second = tm.peft_merged(base, adapter, causal=True), tm.root_tensors(other)
    expected = {k: 0.6 * v + 0.4 * second[k] for k, v in folded.items()}
    tm.assert_close(ours, {k: expected[k] for k in ours})
