"""`zoo extract-lora`: a full fine-tune minus its base as a peft LoRA adapter, checked through
peft, sentence-transformers and zoo's own LoRA folding, on tiny BERT and Qwen3 ST folders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from tests import tiny as tm
from zoo.cli import main
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.extract import ExtractSettings, low_rank
from zoo.pipelines.extract import extract

SENTENCES = ["the json module encodes objects", "paths are joined with a slash", "hello world"]


def rank_update(base, dst, rank: int, seed: int):
    """Copy base adding a random rank-`rank` update to every linear weight (nothing else)."""
    shutil.copytree(base, dst)
    file = dst / "model.safetensors"
    with safe_open(str(file), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    gen = torch.Generator().manual_seed(seed)
    for name, t in sorted(tensors.items()):
        if t.dim() == 2 and "embed" not in name:
            b = torch.randn(t.shape[0], rank, generator=gen) * 0.1
            a = torch.randn(rank, t.shape[1], generator=gen) * 0.1
            tensors[name] = t + b @ a
    save_file(tensors, str(file), metadata={"format": "pt"})
    return dst


@pytest.fixture(scope="module")
def models(tiny_root):
    root = tiny_root / "extract"
    out = {}
    for arch in ("bert", "qwen3"):
        base = tm.build_st(root / f"{arch}-base", arch, dense=arch == "bert")
        out[arch] = {
            "base": base,
            "rank3": rank_update(base, root / f"{arch}-rank3", 3, seed=1),
            "full": tm.perturb(base, root / f"{arch}-full", seed=7),
        }
    return out


def _peft_state(base, adapter):
    from peft import PeftModel
    from transformers import AutoModel

    model = PeftModel.from_pretrained(AutoModel.from_pretrained(str(base)), str(adapter))
    return model.merge_and_unload().state_dict()


def _hidden(model, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    with torch.no_grad():
        return model(**tok(SENTENCES, return_tensors="pt", padding=True)).last_hidden_state


def _peft_outputs_match(base, adapter, finetuned, tol):
    from peft import PeftModel
    from transformers import AutoModel

    peft_model = PeftModel.from_pretrained(AutoModel.from_pretrained(str(base)), str(adapter))
    ours = _hidden(peft_model.eval(), finetuned)
    ref = _hidden(AutoModel.from_pretrained(str(finetuned)).eval(), finetuned)
    assert (ours - ref).abs().max() <= tol


@pytest.mark.parametrize("arch", ["bert", "qwen3"])
def test_an_exact_rank_r_update_comes_back_exactly(models, arch, tmp_path):
    m = models[arch]
    report = extract(m["rank3"], m["base"], tmp_path / "ad", ExtractSettings(rank=3))
    assert report.rank == 3 and len(report.matrices) >= 12
    assert all(x.rank == 3 and x.retained == pytest.approx(1.0, abs=1e-9) for x in report.matrices)
    assert report.retained == pytest.approx(1.0, abs=1e-9)
    assert report.saved_whole == {}  # the Dense head is unchanged, so not reported
    assert report.dropped == {} and report.unchanged > 0  # norms and embeddings untouched
    config = json.loads((tmp_path / "ad" / "adapter_config.json").read_text())
    assert config["r"] == config["lora_alpha"] == 3 and config["modules_to_save"] is None
    _peft_outputs_match(m["base"], tmp_path / "ad", m["rank3"], 1e-5)
    saved = json.loads((tmp_path / "ad" / "extract_lora.json").read_text())
    assert saved["rank"] == 3 and saved["retained_energy"] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("arch", ["bert", "qwen3"])
def test_full_rank_gives_back_the_fine_tune_through_peft_and_zoo(models, arch, tmp_path):
    m = models[arch]
    report = extract(m["full"], m["base"], tmp_path / "ad", ExtractSettings(rank=512))
    assert report.retained == pytest.approx(1.0, abs=1e-9)
    assert any("LayerNorm" in k or "norm" in k for k in report.saved_whole)
    ref = {k: v for k, v in tm.load_all(m["full"]).items() if "/" not in k}
    peft_state = _peft_state(m["base"], tmp_path / "ad")
    assert sorted(peft_state) == sorted(ref)
    assert max((peft_state[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5
    # zoo's own LoRA folding reads the adapter: a merge of it alone is the fine-tune
    inputs = [MergeInput(tmp_path / "ad", {"weight": 1.0}, adapter_base=m["base"])]
    merge_folders(inputs, None, "linear", {}, tmp_path / "zoo", progress=False)
    folded = tm.load_all(tmp_path / "zoo")
    assert (
        max((folded[k] - v).abs().max().item() for k, v in tm.load_all(m["full"]).items()) <= 1e-5
    )


def test_the_adapter_folder_loads_in_sentence_transformers(models, tmp_path):
    from sentence_transformers import SentenceTransformer

    m = models["bert"]
    extract(m["full"], m["base"], tmp_path / "ad", ExtractSettings(rank=512))
    assert not (tmp_path / "ad" / "config.json").exists()  # an adapter, not a full model
    ours = SentenceTransformer(str(tmp_path / "ad"), device="cpu").encode(SENTENCES)
    ref = SentenceTransformer(str(m["full"]), device="cpu").encode(SENTENCES)
    assert abs(ours - ref).max() <= 1e-5


def test_truncation_keeps_the_top_singular_values(models, tmp_path):
    m = models["bert"]
    report = extract(m["full"], m["base"], tmp_path / "ad", ExtractSettings(rank=2))
    name = "encoder.layer.0.attention.self.query"
    delta = tm.load_all(m["full"])[f"{name}.weight"] - tm.load_all(m["base"])[f"{name}.weight"]
    s = torch.linalg.svdvals(delta.double())
    row = next(x for x in report.matrices if x.name == name)
    assert row.rank == 2 and row.retained == pytest.approx(float((s[:2] ** 2).sum() / (s**2).sum()))
    assert 0 < report.retained < 0.5


def test_low_rank_is_the_best_rank_k_approximation():
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(9, 6, generator=gen, dtype=torch.float64)
    for distribute in (True, False):
        f = low_rank(delta, 2, distribute_scale=distribute)
        u, s, vh = torch.linalg.svd(delta, full_matrices=False)
        assert torch.allclose(f.b @ f.a, u[:, :2] @ torch.diag(s[:2]) @ vh[:2], atol=1e-12)
    assert low_rank(delta, 100).rank == 6  # capped at min(shape)
    assert low_rank(delta, 6, sv_epsilon=float(s[2])).rank == 2  # singular values <= epsilon go


def test_embed_lora_extracts_embeddings_as_lora(models, tmp_path):
    m = models["bert"]
    settings = ExtractSettings(rank=512, embed_lora=True)
    report = extract(m["full"], m["base"], tmp_path / "ad", settings)
    assert "embeddings.word_embeddings" in {x.name for x in report.matrices}
    with safe_open(str(tmp_path / "ad" / "adapter_model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "base_model.model.embeddings.word_embeddings.lora_embedding_A" in keys
    ref = {k: v for k, v in tm.load_all(m["full"]).items() if "/" not in k}
    state = _peft_state(m["base"], tmp_path / "ad")
    assert max((state[k] - ref[k]).abs().max().item() for k in ref) <= 1e-5


def test_excluded_and_skipped_modules_are_reported(models, tmp_path):
    m = models["bert"]
    settings = ExtractSettings(rank=4, exclude=(r"\.value$",), skip_undecomposable=True)
    report = extract(m["full"], m["base"], tmp_path / "ad", settings)
    assert "encoder.layer.0.attention.self.value" in report.dropped
    assert "encoder.layer.0.output.LayerNorm" in report.dropped
    assert all("value" not in x.name for x in report.matrices)


def test_the_cli_prints_the_energy_per_matrix(models, tmp_path, capsys):
    m = models["qwen3"]
    argv = ["extract-lora", str(m["rank3"]), "--base", str(m["base"]), "--rank", "3"]
    assert main([*argv, "--out", str(tmp_path / "ad")]) == 0
    out = capsys.readouterr().out
    assert "layers.0.self_attn.q_proj" in out and "100.0000%" in out
    assert main([*argv, "--out", str(tmp_path / "ad2"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rank"] == 3 and data["retained_energy"] == pytest.approx(1.0)


def _changed_width(base, dst):
    return tm.build_st(dst, "bert", hidden_size=16, intermediate_size=32)


@pytest.mark.parametrize(
    "case, message",
    [
        ("rank0", "rank: must be a whole number >= 1"),
        ("nobase", "--base: "),
        ("exists", "already exists"),
        ("regex", "exclude_regex: '(' is not a regex"),
        ("same", "does not differ from the base"),
        ("width", "(only embeddings may change size)"),
        ("epsilon", "sv_epsilon: must be >= 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(models, tmp_path, capsys, case, message):
    m = models["bert"]
    ft, base, out, extra = m["full"], m["base"], tmp_path / "ad", []
    if case == "rank0":
        extra = ["--rank", "0"]
    elif case == "nobase":
        base = tmp_path / "missing"
    elif case == "exists":
        out.mkdir()
    elif case == "regex":
        extra = ["-e", "("]
    elif case == "same":
        ft = base
    elif case == "width":
        ft = _changed_width(base, tmp_path / "narrow")
    elif case == "epsilon":
        extra = ["--sv-epsilon", "-1"]
    argv = ["extract-lora", str(ft), "--base", str(base), "--rank", "4", "--out", str(out)]
    capsys.readouterr()
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_a_base_buffer_the_fine_tune_no_longer_saves_is_not_required(models, tmp_path):
    """The packaged all-MiniLM-L6-v2 stores BERT's integer position_ids; a bag trained with
    transformers 5 does not save that buffer. It is not a weight: extraction goes on."""
    m = models["bert"]
    base = shutil.copytree(m["base"], tmp_path / "base-with-buffer")
    file = base / "model.safetensors"
    with safe_open(str(file), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    save_file(tensors, str(file), metadata={"format": "pt"})
    report = extract(m["rank3"], base, tmp_path / "ad", ExtractSettings(rank=3))
    assert report.to_dict()["retained_energy"] == pytest.approx(1.0, abs=1e-9)


def test_module_kinds_follow_mergekit_extract_loras_rules():
    """An LM head named embed_out (GPT-NeoX) is a Linear output, not an input embedding."""
    from zoo.merge.extract import Decision, Module, decide

    def how(name: str, shape: tuple, bias: bool = False, **settings) -> Decision:
        params = {"weight": (f"{name}.weight",) * 2} | (
            {"bias": (f"{name}.bias",) * 2} if bias else {}
        )
        shapes = {f"{name}.weight": shape, f"{name}.bias": shape[:1]}
        module = Module(name, params)
        return decide(module, ExtractSettings(rank=4, **settings), lambda b, f: (shapes[b],) * 2)

    assert how("embed_out", (50, 8), embed_lora=True).how == "lora"
    assert how("lm_head", (50, 8), embed_lora=True).how == "lora"
    assert how("gpt_neox.embed_in", (50, 8), embed_lora=True).how == "embedding"
    assert how("embed_out", (50, 8)).how == "whole"  # embeddings and heads whole by default
    assert how("layers.0.mlp.up", (16, 8), bias=True).how == "lora"
    assert how("layers.0.norm", (8,)).how == "whole"
