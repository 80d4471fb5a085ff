"""`slices:` on the streaming engine: equal to mergekit's run_merge on tiny decoders, and the
encoder (sentence-transformers) cases mergekit cannot run.

Every comparison is bitwise or within 1e-6 in float32: sliced SLERP with per-filter gradients
(the LazyMergekit template), frankenmerges across models of different depths, self-stacking,
layer pruning, task arithmetic and TIES over slices with slice-level parameters, on Llama,
Mistral, Qwen2, Gemma 2/3 and Phi-3 (the output loads with AutoModelForCausalLM).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from tests import tiny as tm
from zoo.cli import main
from zoo.errors import UserError
from zoo.merge.engine import MergeInput, OutputSlice, merge_folders, plan

DECODERS = ("llama", "mistral", "qwen2", "gemma2", "gemma3", "phi3")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    cache: dict = {}

    def get(arch: str, seed: int, layers: int) -> Path:
        key = (arch, seed, layers)
        if key not in cache:
            folder = root / f"{arch}-{seed}-{layers}"
            cache[key] = tm.build_decoder(
                folder, arch, layers=layers, seed=seed, tie_word_embeddings=False
            )
        return cache[key]

    return get


def _slices(config: dict) -> list[OutputSlice]:
    return [
        OutputSlice(
            tuple(MergeInput(Path(s["model"]), s.get("parameters") or {}) for s in sl["sources"]),
            tuple(tuple(s["layer_range"]) for s in sl["sources"]),
            Path(sl["base_model"]) if sl.get("base_model") else None,
            sl.get("parameters") or {},
        )
        for sl in config["slices"]
    ]


def _without_layer_lists(config: dict, scratch: Path) -> dict:
    """Return config with each model that has per-layer config lists (layer_types) replaced by
    a copy whose config.json has the output's depth and no such list: mergekit 0.1.5 sets
    num_hidden_layers but leaves layer_types, so transformers' config validation stops its
    run_merge on any change of depth of such models. Same weight files; zoo rebuilds the lists."""
    depth = sum(
        sl["sources"][0]["layer_range"][1] - sl["sources"][0]["layer_range"][0]
        for sl in config["slices"]
    )
    text = json.dumps(config)
    for path in {s["model"] for sl in config["slices"] for s in sl["sources"]}:
        settings = json.loads((Path(path) / "config.json").read_text())
        if "layer_types" not in settings:
            continue
        copy = scratch / f"{Path(path).name}-{depth}"
        if not copy.exists():
            copy.mkdir(parents=True)
            for item in Path(path).iterdir():
                (copy / item.name).symlink_to(item)
            (copy / "config.json").unlink()
            del settings["layer_types"]
            settings["num_hidden_layers"] = depth
            (copy / "config.json").write_text(json.dumps(settings))
        text = text.replace(json.dumps(path), json.dumps(str(copy)))
    return json.loads(text)


def _mergekit(config: dict, out: Path) -> dict[str, torch.Tensor]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = _without_layer_lists(config, out.parent / "no-layer-lists")
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, device="cpu")
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)
    return tm.load_all(out)


def _zoo(config: dict, out: Path, **options) -> dict[str, torch.Tensor]:
    base = Path(config["base_model"]) if config.get("base_model") else None
    params = config.get("parameters") or {}
    merge_folders(
        [],
        base,
        config["merge_method"],
        params,
        out,
        slices=_slices(config),
        progress=False,
        **options,
    )
    return tm.load_all(out)


def _assert_equal(ours: dict, theirs: dict, atol: float = 0.0) -> None:
    assert sorted(ours) == sorted(theirs)
    worst = max((ours[k].float() - theirs[k].float()).abs().max().item() for k in ours)
    assert worst <= atol, worst


def _src(model: Path, start: int, stop: int, **params) -> dict:
    return {"model": str(model), "layer_range": [start, stop]} | (
        {"parameters": params} if params else {}
    )


def lazy_slerp(a: Path, b: Path, layers: int) -> dict:
    """The LazyMergekit SLERP template: per-filter t gradients over one slice."""
    return {
        "merge_method": "slerp",
        "base_model": str(a),
        "dtype": "float32",
        "slices": [{"sources": [_src(a, 0, layers), _src(b, 0, layers)]}],
        "parameters": {
            "t": [
                {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
                {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
                {"value": 0.5},
            ]
        },
    }


def frankenmerge(a: Path, b: Path, c: Path) -> dict:
    """Overlapping ranges from three models of two depths, with a scaled o_proj slice."""
    return {
        "merge_method": "passthrough",
        "dtype": "float32",
        "slices": [
            {"sources": [_src(a, 0, 4)]},
            {
                "sources": [_src(b, 2, 6)],
                "parameters": {"scale": [{"filter": "o_proj", "value": 0.5}, {"value": 1.0}]},
            },
            {"sources": [_src(c, 1, 4)]},
        ],
    }


@pytest.mark.parametrize("arch", DECODERS)
def test_sliced_slerp_and_frankenmerge_equal_mergekit(models, tmp_path, arch):
    a, b, c = models(arch, 1, 6), models(arch, 2, 6), models(arch, 3, 4)
    for name, config in (("slerp", lazy_slerp(a, b, 6)), ("frank", frankenmerge(a, b, c))):
        ours = _zoo(config, tmp_path / f"zoo-{name}")
        _assert_equal(ours, _mergekit(config, tmp_path / f"mk-{name}"))
    out = json.loads((tmp_path / "zoo-frank" / "config.json").read_text())
    assert out["num_hidden_layers"] == 4 + 4 + 3
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "zoo-frank")
    assert model.config.num_hidden_layers == 11
    assert model(torch.tensor([[1, 2, 3]])).logits.isfinite().all()


def test_self_stacking_pruning_and_task_arithmetic_over_slices(models, tmp_path):
    a, b, c = models("llama", 1, 6), models("llama", 2, 6), models("llama", 3, 4)
    cases = {
        "stack": {
            "merge_method": "passthrough",
            "dtype": "float32",
            "slices": [{"sources": [_src(a, 0, 4)]}, {"sources": [_src(a, 2, 6)]}],
        },
        "prune": {
            "merge_method": "passthrough",
            "dtype": "float32",
            "slices": [{"sources": [_src(a, 0, 2)]}, {"sources": [_src(a, 4, 6)]}],
        },
        "task_arithmetic": {
            "merge_method": "task_arithmetic",
            "base_model": str(a),
            "dtype": "float32",
            "parameters": {"lambda": 0.9},
            "slices": [
                {"sources": [_src(a, 0, 3), _src(b, 0, 3, weight=0.5), _src(c, 0, 3, weight=0.3)]},
                {
                    "sources": [
                        _src(a, 3, 6),
                        _src(b, 3, 6, weight=0.2),
                        _src(c, 1, 4, weight=0.7),
                    ],
                    "parameters": {"lambda": 1.1},
                },
            ],
        },
        "ties": {
            "merge_method": "ties",
            "base_model": str(a),
            "dtype": "float32",
            "parameters": {"density": 0.5, "weight": 0.5},
            "slices": [
                {"sources": [_src(a, 0, 6), _src(b, 0, 6), _src(c, 0, 4) | {"layer_range": [0, 6]}]}
            ],
        },
    }
    cases["ties"]["slices"][0]["sources"][2] = _src(models("llama", 4, 6), 0, 6)
    for name, config in cases.items():
        _assert_equal(
            _zoo(config, tmp_path / f"zoo-{name}"), _mergekit(config, tmp_path / f"mk-{name}"), 1e-6
        )
    stacked = tm.load_all(tmp_path / "zoo-stack")
    source = tm.load_all(a)
    key = "model.layers.{}.self_attn.q_proj.weight"
    assert torch.equal(stacked[key.format(4)], source[key.format(2)])  # layer 2 again, 5th
    pruned = tm.load_all(tmp_path / "zoo-prune")
    assert torch.equal(pruned[key.format(2)], source[key.format(4)])
    assert (
        json.loads((tmp_path / "zoo-prune" / "config.json").read_text())["num_hidden_layers"] == 4
    )


def test_chunked_kernels_on_slices_match_whole_tensors(models, tmp_path):
    a, b = models("qwen2", 1, 6), models("qwen2", 2, 6)
    config = {
        "merge_method": "task_arithmetic",
        "base_model": str(a),
        "dtype": "float32",
        "slices": [{"sources": [_src(a, 1, 5), _src(b, 0, 4, weight=0.6)]}],
    }
    whole = _zoo(config, tmp_path / "whole", chunk_bytes=None)
    chunked = _zoo(config, tmp_path / "chunked", chunk_bytes=4096)  # row chunks of every tensor
    _assert_equal(chunked, whole, 1e-6)


def test_per_layer_config_lists_follow_their_layers(models, tmp_path):
    """Gemma 3's layer_types (sliding / full attention per layer) is rebuilt layer by layer."""
    a = models("gemma3", 1, 6)
    types = json.loads((a / "config.json").read_text())["layer_types"]
    config = {
        "merge_method": "passthrough",
        "dtype": "float32",
        "slices": [{"sources": [_src(a, 4, 6)]}, {"sources": [_src(a, 0, 3)]}],
    }
    _zoo(config, tmp_path / "out")
    out = json.loads((tmp_path / "out" / "config.json").read_text())
    assert out["num_hidden_layers"] == 5
    assert out["layer_types"] == types[4:6] + types[0:3]
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "out").config.num_hidden_layers == 5


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {
        arch: [
            tm.build_st(root / f"{arch}-{i}", arch, seed=i, dense=True, num_hidden_layers=4)
            for i in range(2)
        ]
        for arch in ("bert", "roberta", "xlm-roberta")
    }


@pytest.mark.parametrize("arch", ["bert", "roberta", "xlm-roberta"])
def test_encoder_slices_keep_the_sentence_transformers_modules(encoders, tmp_path, arch):
    """mergekit's run_merge cannot merge these folders; the reference is the layer algebra."""
    from sentence_transformers import SentenceTransformer

    a, b = encoders[arch]
    config = {
        "merge_method": "linear",
        "dtype": "float32",
        "slices": [
            {"sources": [_src(a, 0, 2, weight=0.5), _src(b, 0, 2, weight=0.5)]},
            {"sources": [_src(a, 3, 4, weight=0.25), _src(b, 1, 2, weight=0.75)]},
        ],
    }
    ours = _zoo(config, tmp_path / "out")
    A, B = tm.load_all(a), tm.load_all(b)
    q = "encoder.layer.{}.attention.self.query.weight"
    assert torch.allclose(
        ours[q.format(2)], 0.25 * A[q.format(3)] + 0.75 * B[q.format(1)], atol=1e-6
    )
    emb = "embeddings.word_embeddings.weight"
    assert torch.allclose(ours[emb], 0.5 * A[emb] + 0.5 * B[emb], atol=1e-6)
    pooler = "pooler.dense.weight"  # after the layers: the last slice's (mergekit's bert.json)
    assert torch.allclose(ours[pooler], 0.25 * A[pooler] + 0.75 * B[pooler], atol=1e-6)
    dense = "2_Dense/linear.weight"
    assert torch.allclose(ours[dense], 0.25 * A[dense] + 0.75 * B[dense], atol=1e-6)  # last slice
    assert not any(".layer.3." in k for k in ours)
    model = SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert model[0].auto_model.config.num_hidden_layers == 3
    assert [type(m).__name__ for m in model] == [
        type(m).__name__ for m in SentenceTransformer(str(a), device="cpu")
    ]
    assert model.encode(["a sentence"]).shape == (1, 16)


def test_bad_slices_are_one_line_errors(models, tmp_path):
    a, b = models("llama", 1, 6), models("llama", 3, 4)
    bad = [
        (
            [_src(a, 0, 7)],
            None,
            "slices[0]: sources[0].layer_range: [0, 7] is not within the 6 layers",
        ),
        (
            [_src(a, 0, 3), _src(b, 0, 2)],
            None,
            "slices[0]: every source of a slice gives the same number",
        ),
        ([_src(a, 0, 3)], b, "slices[0]: the base model"),
    ]
    for sources, base, needle in bad:
        config = {"merge_method": "passthrough", "slices": [{"sources": sources}]}
        if base is not None:
            config |= {"merge_method": "task_arithmetic", "base_model": str(base)}
        with pytest.raises(UserError) as err:
            plan(
                [], Path(base) if base else None, config["merge_method"], {}, slices=_slices(config)
            )
        assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not (tmp_path / "out").exists()


def test_cli_dry_run_lock_and_rerun(models, tmp_path, capsys, monkeypatch):
    a, b = models("mistral", 1, 6), models("mistral", 2, 6)
    recipe = tmp_path / "lazy.yaml"
    recipe.write_text(yaml.safe_dump(lazy_slerp(a, b, 6)))
    from zoo.merge import io

    def no_reads(*args, **kwargs):
        raise AssertionError("a dry run read a tensor")

    with monkeypatch.context() as patch:
        patch.setattr(io.Checkpoint, "_read", no_reads)
        assert main(["merge", str(recipe), "--dry-run", "--json"]) == 0
    plan_data = json.loads(capsys.readouterr().out)
    assert plan_data["slices"][0]["layers"] == [0, 6]
    assert plan_data["slices"][0]["sources"][1] == {
        "ref": str(b),
        "layer_range": [0, 6],
        "params": {},
    }
    by_name = {t["name"]: t for t in plan_data["tensor_plan"]}
    assert by_name["model.layers.5.mlp.up_proj.weight"] == {
        "name": "model.layers.5.mlp.up_proj.weight",
        "slice": 0,
        "action": "slerp",
        "t": 1.0,
    }
    assert main(["merge", str(recipe), "--dry-run"]) == 0
    assert f"slice 0: output layers 0-5 <- {a} [0, 6], {b} [0, 6]" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["merge", str(recipe), "--out", str(out), "--quiet"]) == 0
    again = tmp_path / "again"
    assert (
        main(["merge", "--lock", str(out / "zoo.lock.json"), "--out", str(again), "--quiet"]) == 0
    )
    assert (out / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
