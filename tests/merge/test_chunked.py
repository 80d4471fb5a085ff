"""Row-chunked kernels and the engine's chunked path against mergekit's whole-tensor kernels.

Every chunked kernel runs over random float32 tensors a few rows at a time (so several chunks,
including a ragged last one) and must equal `mergekit.merge_methods.merge_tensors` on the whole
tensor within 1e-6. The engine then merges tiny models with a budget so small that every tensor
is chunked, and must equal the whole-tensor merge (and ST.merge / mergekit) within 1e-6.
"""

from __future__ import annotations

import mergekit.merge_methods as mkm
import pytest
import torch

from tests import tiny as tm
from zoo.merge.chunk_plan import chunk_rows
from zoo.merge.chunking import merge_whole_in_chunks, row_bounds
from zoo.merge.engine import MergeInput, merge_folders, plan
from zoo.merge.kernels.chunked import Shape
from zoo.merge.kernels.topk import RadixSelect, TieCursor, magnitude_keys
from zoo.merge.registry import REGISTRY, get_method
from zoo.merge.writer import Entry, StreamWriter

CPU = torch.device("cpu")
CHUNKED = sorted(name for name, m in REGISTRY.methods.items() if m.chunked is not None)
TOL = 1e-6
# mergekit's float32 multislerp is itself ~2e-6 off the float64 result on unit-scale inputs of
# 19k elements (norms summed in float32); the comparison is atol 1e-6 plus rtol 1e-6.
RTOL = 1e-6


def _tensors(n, shape=(37, 11), seed=0, scale=0.1):
    """A base and n inputs = base + noise, float32; the base is last."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=gen)
    return [base + scale * torch.randn(shape, generator=gen) for _ in range(n)] + [base]


DENSITIES = (0.2, 0.9, 1)
# method -> list of (global params, per-input params, uses base)
CASES = {
    "linear": [
        ({}, [{"weight": w} for w in (0.5, 0.3, 0.7)], False),
        ({"normalize": False}, [{"weight": w} for w in (0.5, -0.3, 0.7)], False),
    ],
    "task_arithmetic": [
        ({"lambda": 0.8}, [{"weight": w} for w in (0.5, 0.3, 0.7)], True),
        ({"normalize": True}, [{"weight": w} for w in (0.5, 0.3, 0.7)], True),
    ],
    "ties": [
        ({"density": 0.5}, [{"weight": w} for w in (0.5, 0.3, 0.7)], True),
        ({"rescale": True, "lambda": 1.3}, [{"weight": 1, "density": d} for d in DENSITIES], True),
        ({"normalize": False, "density": 0.0}, [{"weight": 1.0}] * 3, True),
    ],
    "multislerp": [
        ({}, [{"weight": w} for w in (0.5, 0.3, 0.7)], False),
        ({}, [{"weight": w} for w in (0.5, 0.3, 0.7)], True),
        ({"normalize_weights": False}, [{"weight": w} for w in (0.2, 0.3)], False),
    ],
}


def _resolved(name, params, per_input, n, base_index):
    """Resolve params as the engine does: shared scalars and {input index: value} maps."""
    from zoo.merge.params import resolve_params

    inputs = list(per_input) + ([{}] if base_index is not None else [])
    method = get_method(name)
    return resolve_params(method, params, inputs[:n], base_index=base_index, name="w", t=0)


def _case(name, params, per_input, uses_base, tensors):
    xs = tensors[: len(per_input)] + ([tensors[-1]] if uses_base else [])
    base_index = len(per_input) if uses_base else None
    resolved = _resolved(name, params, per_input, len(xs), base_index)
    return xs, base_index, resolved


def _run(name, xs, base_index, resolved, rows):
    method = get_method(name)
    shape = Shape(len(xs), xs[0].numel(), xs[0].dtype, CPU)
    kernel = method.chunked(resolved, base_index, shape)
    identity = method.identity_on_equal(resolved, base_index is not None)
    return merge_whole_in_chunks(kernel, xs, rows, identity)


def _mergekit(name, xs, base_index, resolved):
    method = mkm.get(name)
    return mkm.merge_tensors(xs, method, parameters=resolved, base_index=base_index, name="w")


def test_the_benchmark_methods_have_chunked_kernels():
    assert CHUNKED == ["linear", "multislerp", "task_arithmetic", "ties"]


@pytest.mark.parametrize("name,case", [(n, i) for n in sorted(CASES) for i in range(len(CASES[n]))])
@pytest.mark.parametrize("rows", [1, 5, 37])
@pytest.mark.parametrize("shape", [(37, 11), (37,), (37, 3, 4), (300, 64)])
@pytest.mark.parametrize("fused", ["1", "0"], ids=["fused", "torch"])
def test_chunked_kernel_equals_mergekit(name, case, rows, shape, fused, monkeypatch):
    monkeypatch.setenv("ZOO_FUSED", fused)  # both paths, whatever the size
    xs, base_index, resolved = _case(name, *CASES[name][case], _tensors(3, shape))
    method = get_method(name)
    kernel = method.chunked(resolved, base_index, Shape(len(xs), xs[0].numel(), xs[0].dtype, CPU))
    if fused == "0" or name in ("linear", "multislerp"):  # (ties, TA: where the case allows)
        assert getattr(kernel, "fused", False) == (fused == "1")
    out, passed = _run(name, xs, base_index, resolved, rows)
    ref = _mergekit(name, xs, base_index, resolved)
    assert not passed and out.dtype == ref.dtype
    assert torch.allclose(out, ref, rtol=RTOL, atol=TOL), (out - ref).abs().max()


@pytest.mark.parametrize("with_base", [False, True])
def test_chunked_multislerp_in_float64_equals_the_formula(with_base):
    from tests.merge.test_kernels import f_multislerp

    xs = [t.double() for t in _tensors(3, (300, 64))]
    per_input = [{"weight": w} for w in (0.5, 0.3, 0.7)]
    xs, base_index, resolved = _case("multislerp", {}, per_input, with_base, xs)
    out, _ = _run("multislerp", xs, base_index, resolved, 7)
    want = f_multislerp(xs[:3], [0.5, 0.3, 0.7], xs[3] if with_base else None)
    assert (out - want).abs().max() <= 1e-10


@pytest.mark.parametrize("name", CHUNKED)
def test_identical_inputs_pass_through_unchanged(name):
    params, per_input, uses_base = CASES[name][0]
    same = _tensors(0)[-1]
    xs, base_index, resolved = _case(name, params, per_input, uses_base, [same] * 4)
    out, passed = _run(name, xs, base_index, resolved, 4)
    assert passed and torch.equal(out, same)


@pytest.mark.parametrize("name", CHUNKED)
def test_all_zero_tensor_passes_through(name):
    """Zero biases: mergekit's multislerp raises on them; the engine (whole or chunked) passes."""
    params, per_input, uses_base = CASES[name][0]
    zero = torch.zeros(37, 11)
    xs, base_index, resolved = _case(name, params, per_input, uses_base, [zero] * 4)
    out, passed = _run(name, xs, base_index, resolved, 4)
    assert passed and torch.equal(out, zero)


def test_multislerp_zero_mean_raises_like_mergekit():
    a = torch.randn(37, 11)
    xs, base_index, resolved = _case("multislerp", {}, [{"weight": 1.0}] * 3, False, [a, -a, a])
    resolved["weight"] = {0: 1.0, 1: 2.0, 2: 1.0}
    with pytest.raises(ValueError, match="weighted sum of the input tensors is zero"):
        _mergekit("multislerp", xs, base_index, resolved)
    with pytest.raises(ValueError, match="weighted sum of the input tensors is zero"):
        _run("multislerp", xs, base_index, resolved, 4)


def test_multislerp_antipodal_pair_falls_back_to_linear_like_mergekit():
    a = torch.randn(37, 11)
    xs, base_index, resolved = _case("multislerp", {}, [{"weight": 0.5}] * 2, False, [a, -a])
    out, _ = _run("multislerp", xs, base_index, resolved, 4)
    assert (out - _mergekit("multislerp", xs, base_index, resolved)).abs().max() <= TOL


def test_linear_chunks_that_repeat_pass_through_others_merge():
    xs = _tensors(3)[:3]
    for x in xs[1:]:
        x[:10] = xs[0][:10]
    resolved = _resolved("linear", {}, [{"weight": w} for w in (0.5, 0.3, 0.2)], 3, None)
    out, passed = _run("linear", xs, None, resolved, 5)
    assert not passed and torch.equal(out[:10], xs[0][:10])
    assert (out - _mergekit("linear", xs, None, resolved)).abs().max() <= TOL


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("k", [1, 7, 100, 400, 407])
def test_radix_select_finds_the_kth_largest_with_stable_ties(dtype, k):
    gen = torch.Generator().manual_seed(k)
    mags = torch.randint(0, 9, (407,), generator=gen).to(dtype) * 0.25  # many ties
    select = RadixSelect(k, dtype.itemsize * 8)
    for _ in range(select.passes):
        for a, b in row_bounds(407, 50):
            select.observe(magnitude_keys(mags[a:b]), mags[a:b])
        select.end_pass()
    order = torch.sort(mags.double(), descending=True, stable=True).indices
    want = torch.zeros(407, dtype=torch.bool)
    want[order[:k]] = True
    assert select.threshold_value(dtype) == float(mags[order[k - 1]])
    cursor = TieCursor(select.threshold, select.ties)
    got = torch.cat([cursor.mask(magnitude_keys(mags[a:b])) for a, b in row_bounds(407, 50)])
    assert torch.equal(got, want)
    assert select.kept_sum(dtype) == pytest.approx(float(mags.double()[want].sum()))


def _ties_stable(xs, base, density, weights):
    """TIES (mergekit's sum consensus, normalised) with a stable descending sort for the top-k."""
    deltas = []
    for x, w in zip(xs, weights):
        delta = (x - base).reshape(-1)
        k = max(1, int(density * delta.numel()))
        keep = torch.zeros_like(delta)
        keep[torch.sort(delta.abs(), descending=True, stable=True).indices[:k]] = 1
        deltas.append(delta * keep * w)
    deltas = torch.stack(deltas)
    weights = torch.tensor(weights).view(-1, 1)
    mask = deltas.sign() == (deltas.sum(0) >= 0).float() * 2 - 1
    divisor = (weights * mask).sum(0)
    divisor[divisor == 0] = 1
    return base + ((deltas * mask).sum(0) / divisor).view(base.shape)


def test_ties_with_tied_magnitudes_keeps_the_first_tied_positions():
    """bf16-like deltas tie at the threshold: zoo keeps the first tied positions in row-major
    order (a stable sort), mergekit whatever its unstable argsort yields; elsewhere they agree."""
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(40, 10, generator=gen)
    xs = [base + torch.randint(-3, 4, (40, 10), generator=gen) * 0.125 for _ in range(3)]
    weights = [0.5, 0.3, 0.7]
    per_input = [{"weight": w} for w in weights]
    resolved = _resolved("ties", {"density": 0.3}, per_input, 4, 3)
    out, _ = _run("ties", xs + [base], 3, resolved, 7)
    assert (out - _ties_stable(xs, base, 0.3, weights)).abs().max() <= TOL
    ref = _mergekit("ties", xs + [base], 3, resolved)
    thresholds = [torch.topk((x - base).abs().reshape(-1), 120).values[-1] for x in xs]
    tied = sum(((x - base).abs() == t).int() for x, t in zip(xs, thresholds)) > 0
    assert (out - ref)[~tied].abs().max() <= TOL


def test_chunk_rows_fit_the_budget():
    assert chunk_rows((1000, 100), 4, 4, (4.0, 2.0), (3.0, 3.0), None) is None
    assert chunk_rows((10, 10), 4, 4, (4.0, 2.0), (3.0, 3.0), 10**6) is None
    rows = chunk_rows((1000, 100), 4, 4, (4.0, 2.0), (3.0, 3.0), 100_000)
    assert rows == 100_000 // (100 * 4 * (4 + 12 + 3 + 1))
    assert chunk_rows((1000, 100), 4, 4, (4.0, 2.0), (3.0, 3.0), 1) == 1


def test_writer_writes_rows_in_order_only(tmp_path):
    from safetensors.torch import load_file

    from zoo.errors import ZooError

    full = torch.arange(60, dtype=torch.float32).view(10, 6)
    writer = StreamWriter(tmp_path, [Entry("t", torch.float32, (10, 6))])
    writer.write_rows("t", 0, full[:4])
    with pytest.raises(ZooError, match="do not continue"):
        writer.write_rows("t", 5, full[5:])
    with pytest.raises(ZooError, match="planned tensors were never written"):
        writer.close()
    writer.write_rows("t", 4, full[4:])
    writer.close()
    assert torch.equal(load_file(tmp_path / "model.safetensors")["t"], full)


# ---- the engine ------------------------------------------------------------------------------

BUDGET = 256  # bytes: every tiny tensor is merged in chunks (1 row of a 32x32 matrix each)
ENGINE = {  # method -> (global params, per-model params, base used?)
    "linear": ({}, [{"weight": w} for w in (0.5, 0.3, 0.2)], False),
    "task_arithmetic": ({"lambda": 0.8}, [{"weight": w} for w in (0.5, 0.3, 0.2)], True),
    "ties": ({"density": 0.5}, [{"weight": w} for w in (0.5, 0.3, 0.2)], True),
    "multislerp": ({}, [{"weight": w} for w in (0.5, 0.3, 0.2)], True),
}


def _engine(family, name, out, **kw):
    params, per_model, uses_base = ENGINE[name]
    inputs = [MergeInput(p, q) for p, q in zip(family["variants"], per_model)]
    base = family["base"] if uses_base else None
    return merge_folders(inputs, base, name, params, out, progress=False, **kw)


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_engine_chunked_equals_whole_tensor_merge(bert_family, tmp_path, name):
    report = _engine(bert_family, name, tmp_path / "chunked", chunk_bytes=BUDGET)
    whole = _engine(bert_family, name, tmp_path / "whole", chunk_bytes=None)
    ours, ref = tm.load_all(tmp_path / "chunked"), tm.load_all(tmp_path / "whole")
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key].dtype == ref[key].dtype, key
        assert (ours[key].double() - ref[key].double()).abs().max() <= TOL, key
    assert report.tensors_passed_through == whole.tensors_passed_through
    assert report.tensors_merged == whole.tensors_merged
    params, per_model, uses_base = ENGINE[name]
    inputs = [MergeInput(p, q) for p, q in zip(bert_family["variants"], per_model)]
    base = bert_family["base"] if uses_base else None
    described = plan(inputs, base, name, params, chunk_bytes=BUDGET)
    assert set(described.chunked) == {t.key for t in described.tasks if t.kind == "merge"}
    unchunked = plan(inputs, base, name, params, chunk_bytes=None)
    assert unchunked.chunked == () and described.peak_bytes < unchunked.peak_bytes / 4


def test_engine_chunked_bf16_output_and_pass_through_of_zero_bias(bert_family, tmp_path):
    report = _engine(
        bert_family, "multislerp", tmp_path / "a", chunk_bytes=BUDGET, out_dtype="bfloat16"
    )
    whole = _engine(
        bert_family, "multislerp", tmp_path / "b", chunk_bytes=None, out_dtype="bfloat16"
    )
    a, b = tm.load_all(tmp_path / "a"), tm.load_all(tmp_path / "b")
    assert report.tensors_passed_through == whole.tensors_passed_through >= 1
    assert torch.equal(a["pooler.dense.bias"], torch.zeros(32, dtype=torch.bfloat16))
    # bf16 rounding of results equal within 1e-6 can differ by one bf16 ulp
    for key in b:
        assert a[key].dtype == torch.bfloat16
        ulp = b[key].float().abs().clamp(min=1e-30) * 2**-7
        assert ((a[key].float() - b[key].float()).abs() <= ulp).all(), key


def test_engine_methods_without_chunked_kernel_stay_whole(bert_family, tmp_path):
    inputs = [MergeInput(p) for p in bert_family["variants"]]
    described = plan(inputs, bert_family["base"], "model_stock", {}, chunk_bytes=BUDGET)
    assert described.chunked == ()
