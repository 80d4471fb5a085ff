"""End-to-end behaviour of merge_folders: architectures, output folder, determinism, options."""

from __future__ import annotations

import pytest
import torch

from tests import tiny as tm
from tests.merge.test_kernels import f_linear, f_multislerp
from zoo.merge.engine import MergeInput, merge_folders, plan

W = [0.5, 0.3, 0.2]
TEXTS = ["Return a new list of the items.", "Open the file and read it", "x"]


def _inputs(family, weights=W):
    return [MergeInput(p, {"weight": w}) for p, w in zip(family["variants"], weights)]


@pytest.mark.parametrize("arch", tm.ARCHS)
def test_every_architecture_merges_end_to_end(families, tmp_path, arch):
    from sentence_transformers import SentenceTransformer

    family = families(arch)
    report = merge_folders(
        _inputs(family), family["base"], "multislerp", {}, tmp_path / "out", progress=False
    )
    states = [tm.load_all(v) for v in family["variants"]]
    base = tm.load_all(family["base"])
    ours = tm.load_all(tmp_path / "out")
    assert sorted(ours) == sorted(base)
    for key, value in ours.items():
        want = f_multislerp([s[key].double() for s in states], W, base[key].double())
        assert (value.double() - want).abs().max() <= 1e-6, key
    assert report.tensors_merged == len(base) and report.tensors_passed_through == 0
    model = SentenceTransformer(str(tmp_path / "out"), device="cpu")
    emb = model.encode(TEXTS, convert_to_tensor=True)
    assert torch.isfinite(emb).all() and torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)


def _manual_encode(folder, texts):
    """AutoModel + the folder's pooling + Dense + Normalize, done by hand."""
    from transformers import AutoModel, AutoTokenizer

    cfg = tm.read_json(folder / "1_Pooling" / "config.json")
    mode = (
        next(
            k.removeprefix("pooling_mode_").removesuffix("_token")
            for k, v in cfg.items()
            if k.startswith("pooling_mode") and v is True
        )
        if "pooling_mode" not in cfg
        else cfg["pooling_mode"]
    )
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    if mode == "cls":
        x = hidden[:, 0]
    elif mode == "mean":
        x = (hidden * mask).sum(1) / mask.sum(1)
    else:  # lasttoken, right padding
        x = hidden[torch.arange(len(texts)), enc["attention_mask"].sum(1) - 1]
    if (folder / "2_Dense").is_dir():
        dense = tm.load_all(folder)
        x = torch.tanh(x @ dense["2_Dense/linear.weight"].T + dense["2_Dense/linear.bias"])
    return torch.nn.functional.normalize(x, dim=-1)


@pytest.mark.parametrize("arch", ["bert", "qwen3"])
def test_output_is_a_complete_sentence_transformers_folder(bert_family, families, tmp_path, arch):
    from sentence_transformers import SentenceTransformer

    family = bert_family if arch == "bert" else families(arch)
    merge_folders(
        _inputs(family), family["base"], "ties", {"density": 0.7}, tmp_path / "out", progress=False
    )
    out = tmp_path / "out"
    for name in (
        "modules.json",
        "config.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "1_Pooling/config.json",
        "model.safetensors",
    ):
        assert (out / name).is_file(), name
    assert not (out / "README.md").exists()
    assert tm.read_json(out / "modules.json") == tm.read_json(family["base"] / "modules.json")
    model = SentenceTransformer(str(out), device="cpu")
    assert type(model[-1]).__name__ == "Normalize"
    if arch == "bert":
        assert type(model[2]).__name__ == "Dense"
        merged_dense = tm.load_all(out)["2_Dense/linear.weight"]
        assert not torch.equal(merged_dense, tm.load_all(family["base"])["2_Dense/linear.weight"])
    got = model.encode(TEXTS, convert_to_tensor=True)
    assert torch.allclose(got, _manual_encode(out, TEXTS), atol=1e-5)


@pytest.mark.parametrize("method, params", [("multislerp", {}), ("dare_ties", {"density": 0.5})])
def test_same_inputs_give_byte_identical_files(bert_family, tmp_path, method, params):
    a = merge_folders(
        _inputs(bert_family),
        bert_family["base"],
        method,
        params,
        tmp_path / "a",
        progress=False,
        seed=3,
    )
    b = merge_folders(
        _inputs(bert_family),
        bert_family["base"],
        method,
        params,
        tmp_path / "b",
        progress=False,
        seed=3,
    )
    assert a.files == b.files and "model.safetensors" in a.files
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
    if method == "dare_ties":
        c = merge_folders(
            _inputs(bert_family),
            bert_family["base"],
            method,
            params,
            tmp_path / "c",
            progress=False,
            seed=4,
        )
        assert c.files["model.safetensors"] != a.files["model.safetensors"]


def test_sharded_output_has_an_index_and_the_same_tensors(bert_family, tmp_path):
    from sentence_transformers import SentenceTransformer

    merge_folders(_inputs(bert_family), None, "linear", {}, tmp_path / "one", progress=False)
    report = merge_folders(
        _inputs(bert_family),
        None,
        "linear",
        {},
        tmp_path / "many",
        progress=False,
        max_shard_bytes=40_000,
    )
    shards = sorted(f for f in report.files if f.startswith("model-"))
    assert len(shards) >= 3 and "model.safetensors.index.json" in report.files
    index = tm.read_json(tmp_path / "many" / "model.safetensors.index.json")
    assert set(index["weight_map"].values()) == set(shards)
    one = SentenceTransformer(str(tmp_path / "one"), device="cpu").encode(
        TEXTS, convert_to_tensor=True
    )
    many = SentenceTransformer(str(tmp_path / "many"), device="cpu").encode(
        TEXTS, convert_to_tensor=True
    )
    assert torch.equal(one, many)


def test_plan_reads_headers_only_and_matches_the_merge(bert_family, tmp_path):
    p = plan(
        _inputs(bert_family), bert_family["base"], "ties", {"density": 0.5}, max_shard_bytes=40_000
    )
    assert p.donor.startswith("base model") and len(p.sources) == 4 and p.base == p.sources[-1]
    assert p.tensors_to_merge == len(tm.load_all(bert_family["base"]))
    assert p.out_bytes == sum(v.numel() * 4 for v in tm.load_all(bert_family["base"]).values())
    assert p.peak_bytes > 0 and "2_Dense/model.safetensors" in p.out_files
    report = merge_folders(
        _inputs(bert_family),
        bert_family["base"],
        "ties",
        {"density": 0.5},
        tmp_path / "out",
        progress=False,
        max_shard_bytes=40_000,
    )
    assert sorted(p.out_files) == sorted(f for f in report.files if "safetensors" in f)
    assert report.peak_rss_bytes > 0 and report.seconds > 0


def test_prefixed_plain_and_pickled_inputs_map_onto_the_base_names(families, tmp_path):
    bert_family = families("bert")  # no Dense head: a plain HF input has only the transformer
    v = bert_family["variants"]
    plain = tm.rewrite_root(v[0], tmp_path / "plain", prefix="bert.", drop_modules=True)
    pickled = tm.rewrite_root(v[1], tmp_path / "pickled", pickle=True)
    inputs = [
        MergeInput(plain, {"weight": W[0]}),
        MergeInput(pickled, {"weight": W[1]}),
        MergeInput(v[2], {"weight": W[2]}),
    ]
    report = merge_folders(
        inputs,
        bert_family["base"],
        "task_arithmetic",
        {},
        tmp_path / "out",
        progress=False,
        allow_pickle=True,
    )
    merge_folders(
        _inputs(bert_family),
        bert_family["base"],
        "task_arithmetic",
        {},
        tmp_path / "ref",
        progress=False,
    )
    ours, ref = tm.load_all(tmp_path / "out"), tm.load_all(tmp_path / "ref")
    assert sorted(ours) == sorted(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
    assert any(s.startswith("base model") for s in report.sources)
    assert not any(k.startswith("bert.") for k in ours)


def test_dtype_and_out_dtype(bert_family, tmp_path):
    merge_folders(
        _inputs(bert_family),
        None,
        "linear",
        {},
        tmp_path / "bf16",
        progress=False,
        out_dtype="bfloat16",
    )
    merge_folders(_inputs(bert_family), None, "linear", {}, tmp_path / "f32", progress=False)
    bf16, f32 = tm.load_all(tmp_path / "bf16"), tm.load_all(tmp_path / "f32")
    assert all(t.dtype == torch.bfloat16 for t in bf16.values())
    assert all(torch.equal(bf16[k], f32[k].to(torch.bfloat16)) for k in f32)
    assert tm.read_json(tmp_path / "bf16" / "config.json")["dtype"] == "bfloat16"


def test_linear_merge_equals_formula_on_the_dense_head(bert_family, tmp_path):
    merge_folders(
        _inputs(bert_family), None, "linear", {"normalize": False}, tmp_path / "out", progress=False
    )
    states = [tm.load_all(v) for v in bert_family["variants"]]
    ours = tm.load_all(tmp_path / "out")
    for key in ("2_Dense/linear.weight", "encoder.layer.1.output.dense.weight"):
        assert torch.allclose(
            ours[key], f_linear([s[key] for s in states], W, normalize=False), atol=1e-6
        )


def test_gradient_parameters_follow_the_layer_index(bert_family, tmp_path):
    inputs = [
        MergeInput(bert_family["variants"][0], {"weight": [0.0, 1.0]}),
        MergeInput(bert_family["variants"][1], {"weight": [1.0, 0.0]}),
    ]
    merge_folders(inputs, None, "linear", {}, tmp_path / "out", progress=False)
    a, b = (tm.load_all(v) for v in bert_family["variants"][:2])
    ours = tm.load_all(tmp_path / "out")
    key0, key1 = (f"encoder.layer.{i}.attention.self.query.weight" for i in (0, 1))
    assert torch.equal(ours[key0], b[key0]) and torch.equal(ours[key1], a[key1])
    assert torch.equal(
        ours["embeddings.word_embeddings.weight"], b["embeddings.word_embeddings.weight"]
    )


def _linear_layer_weights(folder):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(folder))
    return {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_opcm_equals_the_published_sequential_algorithm(bert_family, tmp_path):
    """Reference: fusion_bench-style OPCM over whole state dicts (full SVD, model-level norms,
    rescaling at every step); zoo streams it tensor by tensor with one final rescale."""
    base = {k: v.double() for k, v in tm.load_all(bert_family["base"]).items()}
    models = [{k: v.double() for k, v in tm.load_all(p).items()} for p in bert_family["variants"]]
    linear = _linear_layer_weights(bert_family["base"]) | {"2_Dense/linear.weight"}
    taus = [{k: m[k] - base[k] for k in base} for m in models]

    def norm(sd):
        return torch.sqrt(sum(v.square().sum() for v in sd.values()))

    merged, prev, norms = dict(taus[0]), 1.0, [norm(taus[0])]
    for tau in taus[1:]:
        norms.append(norm(tau))
        total = {}
        for k in base:
            clean = tau[k]
            if k in linear and merged[k].any():
                u, s, vh = torch.linalg.svd(merged[k], full_matrices=True)
                split = int((s.cumsum(0) / s.sum() > 0.5).float().argmax())
                p = u.T @ tau[k] @ vh.T
                p.diagonal().fill_(0)
                p[:split, :split] = 0
                clean = u @ p @ vh
            total[k] = prev * merged[k] + clean
        lam = norm(total) / (sum(norms) / len(norms))
        merged, prev = {k: v / lam for k, v in total.items()}, lam
    report = merge_folders(
        list(bert_family["variants"]),
        bert_family["base"],
        "opcm",
        {"alpha": 0.5},
        tmp_path / "out",
        progress=False,
    )
    ours = tm.load_all(tmp_path / "out")
    for key in base:
        assert (ours[key].double() - (base[key] + merged[key])).abs().max() <= 1e-6, key
    assert report.tensors_passed_through == 1  # the all-zero pooler bias
    assert not list((tmp_path / "out").glob(".zoo-scratch*"))


def test_consensus_runs_end_to_end(bert_family, tmp_path):
    from tests.merge.test_kernels import f_consensus

    merge_folders(
        list(bert_family["variants"]),
        bert_family["base"],
        "consensus_ta",
        {"lambda": 0.5, "tall_lambda": 0.4},
        tmp_path / "out",
        progress=False,
    )
    base = tm.load_all(bert_family["base"])
    states = [tm.load_all(v) for v in bert_family["variants"]]
    ours = tm.load_all(tmp_path / "out")
    for key in ("encoder.layer.0.intermediate.dense.weight", "2_Dense/linear.bias"):
        multi = sum(s[key] - base[key] for s in states)
        want = f_consensus(base[key], [s[key] for s in states], multi, [0.4] * 3, 2, 0.5)
        assert torch.allclose(ours[key], want, atol=1e-6)


def test_non_float_buffers_come_from_the_base(families, tmp_path):
    from safetensors.torch import load_file, save_file

    family = families("bert")
    folders = []
    for i, src in enumerate([family["base"], *family["variants"]]):
        dst = tmp_path / f"m{i}"
        __import__("shutil").copytree(src, dst)
        tensors = load_file(str(dst / "model.safetensors"))
        tensors["embeddings.position_ids"] = (
            torch.arange(66).unsqueeze(0) + i
        )  # disagree on purpose
        save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
        folders.append(dst)
    inputs = [MergeInput(p, {"weight": w}) for p, w in zip(folders[1:], W)]
    for name, base in (("ties", folders[0]), ("linear", None)):
        report = merge_folders(inputs, base, name, {}, tmp_path / f"out-{name}", progress=False)
        got = tm.load_all(tmp_path / f"out-{name}")["embeddings.position_ids"]
        want = 0 if base is not None else 1  # the base, else the donor (first model)
        assert got.dtype == torch.int64 and torch.equal(got, torch.arange(66).unsqueeze(0) + want)
        assert report.tensors_copied == 1


IDENTITY_PARAMS = {
    "linear": {"weight": 1.0},
    "multislerp": {"weight": 1.0},
    "slerp": {"t": 0.3},
    "nuslerp": {"weight": 1.0},
    "passthrough": {},
    "karcher": {},
    "model_stock": {},
    "sce": {},
    "consensus_ta": {},
    "consensus_ties": {},
    "opcm": {},
    "arcee_fusion": {},
    "nearswap": {"t": 0.01},
    "ram": {},
    "ramplus_tl": {},
}


@pytest.fixture(scope="module")
def clones(bert_family, tmp_path_factory):
    root = tmp_path_factory.mktemp("clones")
    return [__import__("shutil").copytree(bert_family["base"], root / f"c{i}") for i in range(4)]


@pytest.mark.parametrize("name", __import__("zoo.merge.registry", fromlist=["x"]).list_methods())
def test_identical_inputs_pass_through_every_method(clones, tmp_path, name):
    from zoo.merge.registry import get_method

    method = get_method(name)
    params = IDENTITY_PARAMS.get(name, {"weight": 1.0, "density": 0.5})
    n = {"slerp": 1, "nuslerp": 2, "passthrough": 1, "arcee_fusion": 1, "nearswap": 1}.get(name, 3)
    base = clones[3] if method.uses_base and name != "nuslerp" else None
    report = merge_folders(clones[:n], base, name, params, tmp_path / "out", progress=False)
    ours, want = tm.load_all(tmp_path / "out"), tm.load_all(clones[0])
    assert sorted(ours) == sorted(want) and all(torch.equal(ours[k], want[k]) for k in want)
    assert report.tensors_passed_through == len(want) and report.tensors_merged == 0


def test_half_precision_checkpoints_are_merged_in_float32(families, tmp_path):
    from safetensors.torch import load_file, save_file

    family = families("bert")
    halves = []
    for i, src in enumerate(family["variants"]):
        dst = __import__("shutil").copytree(src, tmp_path / f"bf16-{i}")
        tensors = {
            k: v.to(torch.bfloat16) for k, v in load_file(str(dst / "model.safetensors")).items()
        }
        save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
        halves.append(dst)
    merge_folders(halves, None, "karcher", {}, tmp_path / "out", progress=False)
    merge_folders(
        halves, None, "karcher", {}, tmp_path / "f32", progress=False, out_dtype="float32"
    )
    ours, wide = tm.load_all(tmp_path / "out"), tm.load_all(tmp_path / "f32")
    assert all(v.dtype == torch.bfloat16 for v in ours.values())
    assert all(torch.equal(ours[k], wide[k].to(torch.bfloat16)) for k in wide)


def test_decoder_base_saved_as_causal_lm_maps_onto_st_names(families, tmp_path):
    """BOOM's case: the base is the *ForCausalLM checkpoint ("model."-prefixed, with lm_head),
    the bags are sentence-transformers Qwen3Model folders."""
    from safetensors.torch import load_file, save_file

    family = families("qwen3")
    causal = tm.rewrite_root(
        family["base"], tmp_path / "causal", prefix="model.", drop_modules=True
    )
    tensors = load_file(str(causal / "model.safetensors"))
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, str(causal / "model.safetensors"), metadata={"format": "pt"})
    config = tm.read_json(causal / "config.json") | {"architectures": ["Qwen3ForCausalLM"]}
    (causal / "config.json").write_text(__import__("json").dumps(config))
    report = merge_folders(
        _inputs(family), causal, "multislerp", {}, tmp_path / "out", progress=False
    )
    merge_folders(
        _inputs(family), family["base"], "multislerp", {}, tmp_path / "ref", progress=False
    )
    ours, ref = tm.load_all(tmp_path / "out"), tm.load_all(tmp_path / "ref")
    assert sorted(ours) == sorted(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
    assert report.skipped == (f"base model ({causal}): lm_head.weight",)
    assert tm.read_json(tmp_path / "out" / "config.json")["architectures"] == ["Qwen3Model"]
    assert (tmp_path / "out" / "modules.json").is_file()  # packaged from the first ST bag


def test_device_auto_picks_cuda_only_when_torch_sees_one(monkeypatch):
    from zoo.merge.resources import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_plan_counts_the_scratch_file_of_two_pass_methods(bert_family):
    p = plan(list(bert_family["variants"]), bert_family["base"], "opcm", {})
    assert p.scratch_disk_bytes == p.out_bytes  # float32 model: one float32 delta per tensor
    assert plan(_inputs(bert_family), None, "linear", {}).scratch_disk_bytes == 0
