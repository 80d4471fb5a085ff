"""LoRA folding: exact W + B·A·scale, tensor by tensor, checked against peft merge_and_unload."""

from __future__ import annotations

import pytest
import torch

from tests import tiny as tm
from zoo.errors import UserError
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.lora import fold_lora


def test_fold_lora_formula():
    gen = torch.Generator().manual_seed(0)
    w, a, b = (torch.randn(s, generator=gen) for s in ((5, 7), (3, 7), (5, 3)))
    assert torch.allclose(fold_lora(w, a, b, 0.5), w + 0.5 * b @ a, atol=1e-6)
    assert torch.allclose(
        fold_lora(w.T.contiguous(), a, b, 2.0, transpose=True), w.T + 2.0 * (b @ a).T, atol=1e-6
    )
    with pytest.raises(UserError, match="do not fit"):
        fold_lora(w, a.T.contiguous(), b, 1.0)


def test_three_adapters_merged_linearly_equal_merged_full_models(bert_family, tmp_path):
    base = bert_family["base"]
    adapters = [
        tm.lora_adapter(
            base, tmp_path / f"ad{i}", seed=i, target_modules=["query", "value", "dense"]
        )
        for i in range(3)
    ]
    weights = [0.5, 0.3, 0.2]
    inputs = [MergeInput(adapters[0], {"weight": weights[0]})]  # base from adapter_config.json
    inputs += [
        MergeInput(a, {"weight": w}, adapter_base=base) for a, w in zip(adapters[1:], weights[1:])
    ]
    report = merge_folders(inputs, None, "linear", {}, tmp_path / "out", progress=False)
    refs = [tm.peft_merged(base, a) for a in adapters]
    expected = {k: sum(w * r[k] for w, r in zip(weights, refs)) / sum(weights) for k in refs[0]}
    tm.assert_close(tm.root_tensors(tmp_path / "out"), expected)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tmp_path / "out"), device="cpu")  # a complete ST folder
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Dense", "Normalize"]
    dense = tm.load_all(tmp_path / "out")["2_Dense/linear.weight"]
    assert torch.equal(dense, tm.load_all(base)["2_Dense/linear.weight"])  # ST head kept from base
    assert report.tensors_merged > 0 and not list(tmp_path.glob("*cache*"))


VARIANTS = {
    "rslora-patterns-embedding-modules_to_save": (
        dict(
            r=4,
            lora_alpha=6,
            use_rslora=True,
            target_modules=["query", "value", "word_embeddings"],
            rank_pattern={"value": 2},
            alpha_pattern={"query": 16},
            modules_to_save=["pooler"],
        ),
        (
            "embeddings.word_embeddings.weight",
            "pooler.dense.weight",
            "encoder.layer.1.attention.self.value.weight",
        ),
    ),
    "lora_bias": (
        dict(target_modules=["query", "value"], lora_bias=True),
        ("encoder.layer.0.attention.self.value.bias",),
    ),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_lora_variants_fold_exactly(bert_family, tmp_path, variant):
    base = bert_family["base"]
    lora, changed = VARIANTS[variant]
    adapter = tm.lora_adapter(base, tmp_path / "ad", seed=5, **lora)
    merge_folders([adapter], None, "passthrough", {}, tmp_path / "out", progress=False)
    ours = tm.root_tensors(tmp_path / "out")
    tm.assert_close(ours, tm.peft_merged(base, adapter))
    before = tm.root_tensors(base)
    for key in changed:
        assert not torch.equal(ours[key], before[key]), key  # the adapter really changed them


def test_fan_in_fan_out_conv1d(tmp_path):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    GPT2Model(
        GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=2, n_positions=32)
    ).save_pretrained(str(tmp_path / "gpt2"))
    adapter = tm.lora_adapter(
        tmp_path / "gpt2", tmp_path / "ad", seed=1, target_modules=["c_attn"], fan_in_fan_out=True
    )
    merge_folders([adapter], None, "passthrough", {}, tmp_path / "out", progress=False)
    tm.assert_close(tm.root_tensors(tmp_path / "out"), tm.peft_merged(tmp_path / "gpt2", adapter))


def test_sentence_transformers_adapter_folder_encodes_like_the_adapter(tmp_path):
    from peft import LoraConfig
    from sentence_transformers import SentenceTransformer

    base = tm.build_st(tmp_path / "base", "bert", dense=True)
    model = SentenceTransformer(str(base), device="cpu")
    torch.manual_seed(3)
    model.add_adapter(
        LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False)
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.save(str(tmp_path / "adapter"))
    merge_folders(
        [MergeInput(tmp_path / "adapter", adapter_base=base)],
        None,
        "passthrough",
        {},
        tmp_path / "out",
        progress=False,
    )
    texts = ["Return the number of items.", "open a file and read it"]
    ours = SentenceTransformer(str(tmp_path / "out"), device="cpu").encode(
        texts, convert_to_tensor=True
    )
    want = SentenceTransformer(str(tmp_path / "adapter"), device="cpu").encode(
        texts, convert_to_tensor=True
    )
    plain = SentenceTransformer(str(base), device="cpu").encode(texts, convert_to_tensor=True)
    assert torch.allclose(ours, want, atol=1e-5) and not torch.allclose(ours, plain, atol=1e-3)
    assert not (tmp_path / "out" / "adapter_config.json").exists()


def test_refused_adapters(bert_family, tmp_path):
    base = bert_family["base"]
    dora = tm.lora_adapter(base, tmp_path / "dora", seed=1, target_modules=["query"], use_dora=True)
    with pytest.raises(UserError, match="DoRA"):
        merge_folders([dora], None, "passthrough", {}, tmp_path / "o1", progress=False)
    orphan = tm.lora_adapter(base, tmp_path / "orphan", seed=1, target_modules=["query"])
    cfg = tm.read_json(orphan / "adapter_config.json") | {
        "base_model_name_or_path": "org/not-local"
    }
    (orphan / "adapter_config.json").write_text(__import__("json").dumps(cfg))
    with pytest.raises(UserError, match="without a local base"):
        merge_folders([orphan], None, "passthrough", {}, tmp_path / "o2", progress=False)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_adapter_weights_the_config_does_not_declare_are_refused(bert_family, tmp_path):
    import json

    base = bert_family["base"]
    adapter = tm.lora_adapter(base, tmp_path / "ad", seed=1, target_modules=["query", "value"])
    cfg = tm.read_json(adapter / "adapter_config.json") | {"target_modules": ["query"]}
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="target_modules does not name"):
        merge_folders([adapter], None, "passthrough", {}, tmp_path / "out", progress=False)
    cfg["target_modules"] = "encoder.*(query|value)"  # peft's regex form selects both again
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    merge_folders([adapter], None, "passthrough", {}, tmp_path / "out", progress=False)
    tm.assert_close(tm.root_tensors(tmp_path / "out"), tm.peft_merged(base, adapter))
