"""The streaming engine against mergekit's own in-memory paths and its run_merge CLI path.

BERT (with a Dense head): every mergekit method through `merge_folders` equals
`SentenceTransformer.merge` (which calls mergekit's merge_state_dicts on the whole model) within
1e-6. Stochastic methods draw a fresh seed per tensor in zoo, so they are compared with
mergekit's merge_state_dicts called tensor by tensor under the same per-tensor seed.
XLM-R and Qwen3 (architectures mergekit infers): equal to `mergekit.merge.run_merge`.
"""

from __future__ import annotations

import pytest
import torch
import yaml

from tests import tiny as tm
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.method import tensor_seed

W = [0.5, 0.3, 0.2]
# method -> (number of variants, base used?, global params, per-model params)
CASES = {
    "linear": (3, False, {}, [{"weight": w} for w in W]),
    "multislerp": (3, False, {}, [{"weight": w} for w in W]),
    "slerp": (1, True, {"t": 0.3}, [{}]),
    "nuslerp": (2, False, {}, [{"weight": 0.7}, {"weight": 0.3}]),
    "karcher": (3, False, {}, [{}, {}, {}]),
    "task_arithmetic": (3, True, {"lambda": 0.8}, [{"weight": w} for w in W]),
    "ties": (3, True, {"density": 0.5}, [{"weight": w} for w in W]),
    "dare_ties": (3, True, {"density": 0.6}, [{"weight": w} for w in W]),
    "dare_linear": (3, True, {"density": 0.6}, [{"weight": w} for w in W]),
    "breadcrumbs": (3, True, {"density": 0.8, "gamma": 0.05}, [{"weight": w} for w in W]),
    "breadcrumbs_ties": (3, True, {"density": 0.8, "gamma": 0.05}, [{"weight": w} for w in W]),
    "della": (3, True, {"density": 0.6, "epsilon": 0.1}, [{"weight": w} for w in W]),
    "della_linear": (3, True, {"density": 0.6, "epsilon": 0.1}, [{"weight": w} for w in W]),
    "model_stock": (3, True, {}, [{}, {}, {}]),
    "sce": (3, True, {"select_topk": 0.5}, [{}, {}, {}]),
    "passthrough": (1, False, {}, [{"scale": 0.5}]),
    "arcee_fusion": (1, True, {}, [{}]),
    "nearswap": (1, True, {"t": 0.01}, [{}]),
    "ram": (3, True, {"epsilon": 1e-3}, [{}, {}, {}]),
    "ramplus_tl": (3, True, {"r": 0.5, "alpha": 0.6, "epsilon": 1e-3}, [{}, {}, {}]),
}
STOCHASTIC = {"dare_ties", "dare_linear", "della", "della_linear"}


def _merge(family, name, out):
    n, uses_base, params, per_model = CASES[name]
    inputs = [MergeInput(p, q) for p, q in zip(family["variants"][:n], per_model)]
    return merge_folders(
        inputs, family["base"] if uses_base else None, name, params, out, progress=False, seed=11
    )


def _mergekit_parameters(name):
    n, uses_base, params, per_model = CASES[name]
    merged = dict(params)
    for key in {k for q in per_model for k in q}:
        merged[key] = [q[key] for q in per_model]
    return merged


def _st_merge(family, name, out):
    from sentence_transformers import SentenceTransformer

    n, uses_base, _, _ = CASES[name]
    models = [str(p) for p in family["variants"][:n]]
    if n == 1 and uses_base:  # ST.merge needs two models; the base is one of them
        models = [str(family["base"])] + models
    merged = SentenceTransformer.merge(
        models,
        method=name,
        parameters=_mergekit_parameters(name),
        base_model=str(family["base"]) if uses_base else None,
    )
    merged.save(str(out))
    return tm.load_all(out)


def _per_tensor_reference(family, name):
    """mergekit's merge_state_dicts, one tensor at a time, seeded as zoo seeds that tensor."""
    from mergekit.merge_methods import merge_state_dicts

    n, uses_base, _, _ = CASES[name]
    folders = list(family["variants"][:n]) + ([family["base"]] if uses_base else [])
    states = [tm.load_all(f) for f in folders]
    out = {}
    for key in states[0]:
        if all(torch.equal(states[0][key], st[key]) for st in states[1:]):
            out[key] = states[0][key]  # zoo passes identical tensors through (mergekit may raise)
            continue
        torch.manual_seed(tensor_seed(11, key))
        out.update(
            merge_state_dicts(
                [{key: s[key]} for s in states],
                name,
                base=len(folders) - 1 if uses_base else None,
                parameters=_mergekit_parameters(name),
            )
        )
    return out


def _assert_same(ours: dict, ref: dict, tol: float = 1e-6):
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key].shape == ref[key].shape, key
        diff = (ours[key].double() - ref[key].double()).abs().max().item()
        assert diff <= tol, f"{key}: {diff}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_engine_equals_mergekit_in_memory_on_bert(bert_family, tmp_path, name):
    report = _merge(bert_family, name, tmp_path / "zoo")
    ours = tm.load_all(tmp_path / "zoo")
    if name in STOCHASTIC or name == "multislerp":  # ST.merge raises on the zero bias
        ref = _per_tensor_reference(bert_family, name)
    elif name == "passthrough":
        from mergekit.merge_methods import merge_state_dicts

        ref = merge_state_dicts(
            [tm.load_all(bert_family["variants"][0])], "passthrough", parameters={"scale": [0.5]}
        )
    else:
        ref = _st_merge(bert_family, name, tmp_path / "st")
    _assert_same(ours, ref)
    assert report.tensors_merged + report.tensors_passed_through == len(ref)
    base = tm.load_all(bert_family["base"] if CASES[name][1] else bert_family["variants"][0])
    assert any(not torch.equal(ours[k], base[k]) for k in base)  # the merge did something


def test_all_zero_bias_passes_multislerp(bert_family, tmp_path):
    from sentence_transformers import SentenceTransformer

    zero = "pooler.dense.bias"
    assert not any(tm.load_all(v)[zero].any() for v in bert_family["variants"])
    report = _merge(bert_family, "multislerp", tmp_path / "out")
    assert report.tensors_passed_through == 1
    assert torch.equal(tm.load_all(tmp_path / "out")[zero], torch.zeros(32))
    with pytest.raises(ValueError, match="weighted sum of the input tensors is zero"):
        SentenceTransformer.merge(
            [str(v) for v in bert_family["variants"]], method="multislerp", parameters={"weight": W}
        )


@pytest.mark.parametrize("with_base", [False, True])
def test_multislerp_equals_st_merge_without_zero_tensors(families, tmp_path, with_base):
    from sentence_transformers import SentenceTransformer

    family = families("bert")
    inputs = [MergeInput(p, {"weight": w}) for p, w in zip(family["variants"], W)]
    base = family["base"] if with_base else None
    merge_folders(inputs, base, "multislerp", {}, tmp_path / "zoo", progress=False)
    ref = SentenceTransformer.merge(
        [str(p) for p in family["variants"]],
        method="multislerp",
        parameters={"weight": W},
        base_model=str(base) if base else None,
    )
    ref.save(str(tmp_path / "st"))
    _assert_same(tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "st"))


GRADIENT = [{"weight": [0.2, 0.9]}, {"weight": [1.0, 0.1]}, {"weight": 0.5}]
FILTERED = {"density": [{"filter": "attention", "value": 0.3}, {"value": 0.8}]}
RUN_MERGE = [  # (method, base used?, global params, per-model params)
    ("linear", False, {}, [{"weight": w} for w in W]),
    ("linear", False, {"normalize": False}, GRADIENT),
    ("multislerp", True, {}, [{"weight": w} for w in W]),
    ("task_arithmetic", True, {"lambda": 0.7}, [{"weight": w} for w in W]),
    ("ties", True, FILTERED, GRADIENT),
    ("model_stock", True, {}, [{}, {}, {}]),
    ("karcher", False, {}, [{}, {}, {}]),
    ("arcee_fusion", True, {}, [{}]),
    ("nearswap", True, {"t": [0.001, 0.02]}, [{}]),
    ("ram", True, {"epsilon": 1e-3}, [{}, {}, {}]),
    ("ramplus_tl", True, {"r": 0.5, "epsilon": 1e-3}, [{}, {}, {}]),
]


@pytest.mark.parametrize("arch", ["xlm-roberta", "qwen3"])
def test_engine_equals_mergekit_run_merge(families, tmp_path, arch):
    """Includes per-layer gradients and name filters, resolved as mergekit resolves them."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    family = families(arch)
    for i, (name, uses_base, params, per_model) in enumerate(RUN_MERGE):
        config = {
            "merge_method": name,
            "dtype": "float32",
            "parameters": params,
            "models": [
                {"model": str(p), "parameters": q} for p, q in zip(family["variants"], per_model)
            ],
        }
        if uses_base:
            config["base_model"] = str(family["base"])
        options = MergeOptions(
            copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=0, device="cpu"
        )
        run_merge(
            MergeConfiguration.model_validate(yaml.safe_load(yaml.safe_dump(config))),
            str(tmp_path / f"mk-{i}"),
            options=options,
        )
        inputs = [MergeInput(p, q) for p, q in zip(family["variants"], per_model)]
        merge_folders(
            inputs,
            family["base"] if uses_base else None,
            name,
            params,
            tmp_path / f"zoo-{i}",
            progress=False,
        )
        _assert_same(tm.load_all(tmp_path / f"zoo-{i}"), tm.load_all(tmp_path / f"mk-{i}"))


def test_base_listed_among_the_models_is_the_base(bert_family, tmp_path):
    """mergekit recipes often list the base under models too; it is then not merged twice."""
    inputs = [MergeInput(bert_family["base"])] + [
        MergeInput(p, {"weight": w}) for p, w in zip(bert_family["variants"], W)
    ]
    merge_folders(
        inputs, bert_family["base"], "ties", {"density": 0.5}, tmp_path / "listed", progress=False
    )
    _merge(bert_family, "ties", tmp_path / "separate")
    _assert_same(tm.load_all(tmp_path / "listed"), tm.load_all(tmp_path / "separate"), tol=0)


# ---- DARE / DELLA against mergekit-yaml --random-seed: the same distribution, not the same draw
# mergekit seeds one global generator once (MergeOptions.random_seed -> set_seed) and draws each
# mask in its executor's task order; zoo seeds every tensor from (zoo.seed, tensor name), so its
# masks do not depend on merge order, sharding or streaming. The draws therefore differ; the
# kept fraction and the expected merged delta must not.
STAT_DENSITY = 0.4


def _run_merge_stochastic(family, name, params, per_model, out):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = {
        "merge_method": name,
        "base_model": str(family["base"]),
        "dtype": "float32",
        "parameters": params,
        "models": [
            {"model": str(p), "parameters": q} for p, q in zip(family["variants"], per_model)
        ],
    }
    options = MergeOptions(
        copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=0, device="cpu"
    )
    run_merge(MergeConfiguration.model_validate(config), str(out), options=options)
    return tm.load_all(out)


def _deltas(merged, base, variants, weights):
    """Pool every perturbed tensor: (merged delta, the weighted input deltas, per-input deltas)."""
    keys = [
        k for k in base if base[k].is_floating_point() and not torch.equal(variants[0][k], base[k])
    ]

    def flat(d):
        return torch.cat([d[k].double().reshape(-1) - base[k].double().reshape(-1) for k in keys])

    inputs = [flat(v) for v in variants]
    return flat(merged), sum(w * d for w, d in zip(weights, inputs)), inputs


@pytest.mark.parametrize("name", ["dare_linear", "della_linear"])
def test_stochastic_masks_match_mergekit_in_density_and_expectation(families, tmp_path, name):
    family = families("qwen3")
    params = {"density": STAT_DENSITY} | ({"epsilon": 0.2} if name == "della_linear" else {})
    one = [{"weight": 1.0}]
    base = tm.load_all(family["base"])
    variant = tm.load_all(family["variants"][0])
    inputs = [MergeInput(family["variants"][0], one[0])]
    merge_folders(inputs, family["base"], name, params, tmp_path / "zoo", progress=False, seed=3)
    ours = _deltas(tm.load_all(tmp_path / "zoo"), base, [variant], [1.0])
    ref = _deltas(
        _run_merge_stochastic(family, name, params, one, tmp_path / "mk"), base, [variant], [1.0]
    )
    n = ours[1].numel()
    sigma = (STAT_DENSITY * (1 - STAT_DENSITY) / n) ** 0.5
    kept = [float((m != 0).double().mean()) for m, _, _ in (ours, ref)]
    assert all(abs(k - STAT_DENSITY) < 5 * sigma for k in kept), (kept, sigma)
    assert abs(kept[0] - kept[1]) < 7 * sigma
    assert not torch.equal(ours[0], ref[0])  # the draws differ (see above)
    # mean merged delta: DARE is unbiased (E = the delta); DELLA keeps large magnitudes more
    # often, so its expectation is compared between zoo and mergekit only
    delta = ours[1]
    spread = float((((1 - STAT_DENSITY) / STAT_DENSITY) * delta.square().sum()).sqrt())
    if name == "dare_linear":
        for m, _, _ in (ours, ref):
            assert abs(float(m.sum() - delta.sum())) < 5 * spread
    assert abs(float(ours[0].sum() - ref[0].sum())) < 7 * spread
    assert abs(float(ours[0].abs().sum() - delta.abs().sum())) < 1e-3 * float(delta.abs().sum())


def test_stochastic_merge_of_weighted_models_matches_mergekit_in_expectation(families, tmp_path):
    """dare_linear over 3 weighted models: zoo's own per-tensor seed draws other masks than
    mergekit's, yet the merged delta of each agrees with the weighted mean delta, and with each
    other, within the spread of the masks (a few standard deviations)."""
    family = families("qwen3")
    params = {"density": STAT_DENSITY}
    per_model = [{"weight": w} for w in W]
    base = tm.load_all(family["base"])
    variants = [tm.load_all(v) for v in family["variants"]]
    inputs = [MergeInput(p, q) for p, q in zip(family["variants"], per_model)]
    merge_folders(inputs, family["base"], "dare_linear", params, tmp_path / "zoo", progress=False)
    ours = _deltas(tm.load_all(tmp_path / "zoo"), base, variants, W)
    mk = _run_merge_stochastic(family, "dare_linear", params, per_model, tmp_path / "mk")
    ref = _deltas(mk, base, variants, W)
    spread = sum(w * d.square().sum() for w, d in zip(W, ours[2])) ** 0.5
    spread = float(spread * ((1 - STAT_DENSITY) / STAT_DENSITY) ** 0.5)
    for merged, expected, _ in (ours, ref):
        assert abs(float(merged.sum() - expected.sum())) < 5 * spread
    assert abs(float(ours[0].sum() - ref[0].sum())) < 7 * spread


# ---- ties on 16-bit checkpoints (mergekit's examples/ties.yml) -----------------------------
# 16-bit deltas take few distinct magnitudes, so many tie at the density threshold; which of
# them survive is decided by mergekit's (unstable) argsort. zoo's ties kernel uses mergekit's own
# top-k on a tensor merged in one chunk, so the outputs are equal bit for bit; a tensor merged in
# several chunks keeps the first tied positions instead (tests/merge/test_chunked.py).
TIES_YML = {  # the parameters of mergekit's examples/ties.yml, on tiny models
    "merge_method": "ties",
    "parameters": {"normalize": True, "int8_mask": True},
    "models": [
        {"density": [1, 0.7, 0.1], "weight": 1.0},
        {"density": 0.5, "weight": [0, 0.3, 0.7, 1]},
        {"density": 0.33, "weight": [{"filter": "mlp", "value": 0.5}, {"value": 0}]},
    ],
}


@pytest.fixture(scope="module")
def llama16(tmp_path_factory):
    """A tiny random Llama in float16 (the checkpoint dtype of examples/ties.yml) and 3 variants."""
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("llama16")
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    base = LlamaForCausalLM(config)
    folders = [root / "base"]
    base.half().save_pretrained(folders[0])
    for i in range(3):
        gen = torch.Generator().manual_seed(100 + i)
        with torch.no_grad():
            for p in base.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=gen).half())
        folders.append(root / f"ft{i}")
        base.save_pretrained(folders[-1])
    return folders


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_ties_example_on_a_float16_llama_equals_mergekit_yaml(llama16, tmp_path, dtype):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    base, *variants = llama16
    per_model = TIES_YML["models"]
    config = {
        "merge_method": "ties",
        "base_model": str(base),
        "dtype": dtype,
        "parameters": TIES_YML["parameters"],
        "models": [{"model": str(p), "parameters": q} for p, q in zip(variants, per_model)],
    }
    options = MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True, device="cpu")
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "mk"), options=options)
    inputs = [MergeInput(p, q) for p, q in zip(variants, per_model)]
    merge_folders(
        inputs, base, "ties", TIES_YML["parameters"], tmp_path / "zoo", progress=False, dtype=dtype
    )
    ours, ref = tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "mk")
    assert sorted(ours) == sorted(ref)
    assert all(torch.equal(ours[k], ref[k]) for k in ref), [
        k for k in ref if not torch.equal(ours[k], ref[k])
    ]


@pytest.mark.parametrize(
    "name, params",
    [("dare_ties", {"density": 0.5}), ("della_linear", {"density": 0.6, "epsilon": 0.1})],
)
def test_mergekit_random_seed_masks_are_reproduced_from_replayed_rng_states(
    llama16, tmp_path, name, params
):
    """mergekit-yaml --random-seed 7, tensor for tensor, merged in reverse order by zoo's
    kernels from the generator states zoo.merge.mergekit_rng replays (no weights read)."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    from zoo.merge.mergekit_rng import draws_of, mergekit_rng_states
    from zoo.merge.params import resolve_params
    from zoo.merge.registry import get_method
    from zoo.merge.slices import LayerSlice, num_layers

    base, *variants = llama16
    per_model = [{"weight": 0.5}, {"weight": 0.3, "density": 1.0}, {"weight": 0.2}]  # no draw
    per_model[2]["density"] = [{"filter": "mlp", "value": 0.3}, {"value": 0.7}]
    config = {
        "merge_method": name,
        "base_model": str(base),
        "dtype": "float32",
        "parameters": params,
        "models": [{"model": str(p), "parameters": q} for p, q in zip(variants, per_model)],
    }
    options = MergeOptions(
        copy_tokenizer=False, write_model_card=False, quiet=True, random_seed=7, device="cpu"
    )
    run_merge(MergeConfiguration.model_validate(config), str(tmp_path / "mk"), options=options)
    ref = tm.load_all(tmp_path / "mk")
    states = [{k: v.float() for k, v in tm.load_all(f).items()} for f in [*variants, base]]
    method, layers = get_method(name), LayerSlice(0, num_layers(None, list(ref)), 0)
    resolved = {
        key: resolve_params(
            method,
            params,
            [*per_model, {}],
            base_index=3,
            name=key,
            t=layers.position(key),
        )  # fmt: skip
        for key in ref
    }
    rng = mergekit_rng_states(7, [draws_of(k, ref[k].shape, resolved[k]) for k in ref])
    for key in sorted(ref, reverse=True):
        tensors = [s[key] for s in states]
        ours = method.merge(tensors, 3, resolved[key], name=key, rng_state=rng[key])
        assert torch.equal(ours, ref[key]), key
