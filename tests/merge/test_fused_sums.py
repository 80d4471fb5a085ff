"""The fused weighted sums (linear, task arithmetic, multislerp's output pass) and the fused
loops' output in the output dtype, against mergekit, zoo's torch kernels and torch's rounding.

`ZOO_FUSED=1` puts a merge of any size on the fused path, `0` on torch's; each test asserts which
path ran (`kernel.fused`), so neither side can silently be the other.
"""

from __future__ import annotations

import mergekit.merge_methods as mkm
import numpy as np
import pytest
import torch

from tests import tiny as tm
from zoo.errors import UserError
from zoo.merge.chunking import in_memory_reader, row_bounds, run_chunked
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.kernels import fused
from zoo.merge.kernels.chunked import (
    LinearChunks,
    MultiSlerpChunks,
    Shape,
    TaskArithmeticChunks,
)
from zoo.merge.kernels.fusing import NotFinite, weighted
from zoo.merge.parallel import SERIAL, Pool

CPU = torch.device("cpu")
KERNELS = {"linear": LinearChunks, "task_arithmetic": TaskArithmeticChunks,
           "multislerp": MultiSlerpChunks}  # fmt: skip
PARAMS = {
    "linear": {"weight": {0: 0.3, 1: 0.5, 2: -0.2, 3: 0.7}, "normalize": True},
    "linear, not normalized": {"weight": {0: 0.3, 1: 0.5, 2: -0.2, 3: 0.7}, "normalize": False},
    "task_arithmetic": {"weight": {0: 0.3, 1: 0.5, 2: -0.2}, "normalize": False, "lambda": 1.2},
    "task_arithmetic, normalized": {
        "weight": {0: 0.3, 1: 0.5, 2: 0.2},
        "normalize": True,
        "lambda": 1.0,
    },  # fmt: skip
    "multislerp": {
        "weight": {0: 0.3, 1: 0.5, 2: 0.2, 3: 0.7},
        "normalize_weights": True,
        "eps": 1e-8,
    },  # fmt: skip
}


def _stack(dtype=torch.float32, shape=(300, 40), seed=0):
    """Four inputs (the last is the base where a method takes one), as stored in dtype."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=gen)
    return torch.stack([base + 0.1 * torch.randn(shape, generator=gen) for _ in range(3)] + [base])


def _merge(case, stack, monkeypatch, fused_on, out_dtype=torch.float32, threads=1, rows=70):
    """Merge stack with the case's kernel in chunks of `rows`: the fused path reads the stored
    dtype, the torch path float32 (as the engine's reader gives each); return (out, kernel)."""
    monkeypatch.setenv("ZOO_FUSED", "1" if fused_on else "0")
    name = case.split(",")[0]
    base = 3 if name == "task_arithmetic" else None
    chunks = stack if fused_on else stack.float()
    out = torch.empty(stack[0].shape, dtype=out_dtype)

    def write(a: int, part: torch.Tensor, checked: bool) -> None:
        assert checked == fused_on and part.dtype == (out_dtype if checked else torch.float32)
        out[a : a + part.shape[0]] = part

    with Pool(threads) as pool:
        shape = Shape(len(stack), stack[0].numel(), torch.float32, CPU, pool, True, out_dtype)
        kernel = KERNELS[name](PARAMS[case], base, shape)
        run_chunked(kernel, in_memory_reader(chunks), write, row_bounds(len(stack[0]), rows), True)
    assert kernel.fused == fused_on
    return out, kernel


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", ["linear", "linear, not normalized"])
def test_fused_linear_equals_mergekit_bit_for_bit(monkeypatch, dtype, case):
    """mergekit's linear adds each x_i * w_i with addcmul_ (one fused multiply-add, one
    rounding), in input order, then divides by sum(w_i): the fused loop does the same."""
    stack = _stack(dtype)
    ours, _ = _merge(case, stack, monkeypatch, fused_on=True)
    xs = list(stack.float())
    params = {"weight": PARAMS[case]["weight"], "normalize": PARAMS[case]["normalize"]}
    ref = mkm.merge_tensors(xs, mkm.get("linear"), parameters=params, base_index=None, name="w")
    assert torch.equal(ours, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", sorted(PARAMS))
def test_fused_sums_equal_the_torch_kernels(monkeypatch, dtype, case):
    stack = _stack(dtype)
    ours, _ = _merge(case, stack, monkeypatch, fused_on=True)
    ref, _ = _merge(case, stack, monkeypatch, fused_on=False)
    if not case.startswith("multislerp"):  # the same float32 operations, in the same order
        assert torch.equal(ours, ref)
    assert torch.allclose(ours, ref, rtol=1e-6, atol=1e-6), (ours - ref).abs().max()


@pytest.mark.parametrize("case", sorted(PARAMS))
@pytest.mark.parametrize("out_dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
def test_threads_do_not_change_a_bit_of_the_fused_sums(monkeypatch, case, out_dtype):
    stack = _stack(torch.bfloat16, shape=(2000, 300))  # several row blocks per chunk
    one, _ = _merge(case, stack, monkeypatch, True, out_dtype, threads=1, rows=700)
    three, _ = _merge(case, stack, monkeypatch, True, out_dtype, threads=3, rows=700)
    assert torch.equal(one, three)


def test_bf16_output_rounds_to_nearest_even_as_torch():
    """One input, coefficient 1: the loop's bfloat16 is torch's .to(bfloat16) of the float32,
    on random bit patterns and on the halfway cases (ties to even, both ways)."""
    gen = torch.Generator().manual_seed(1)
    bits = torch.randint(0, 2**31 - 1, (1 << 16,), generator=gen, dtype=torch.int64)
    bits = torch.cat([bits, (bits[:4096] & ~0xFFFF) | 0x8000, (bits[:4096] & ~0xFFFF) | 0x7FFF])
    values = bits.to(torch.int32).view(torch.float32)
    values = values[torch.isfinite(values) & (values.abs() <= torch.finfo(torch.bfloat16).max)]
    values = torch.cat([values, -values]).reshape(1, -1)
    out = weighted(values, SERIAL, torch.bfloat16, [0], [1.0])
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.view(torch.int16), values[0].to(torch.bfloat16).view(torch.int16))


@pytest.mark.parametrize(
    "values,dtype",
    [
        ([1.0, 3e38], torch.bfloat16),  # 2 * 3e38: finite in float32, beyond bfloat16's range
        ([1.0, float("nan")], torch.bfloat16),
        ([1.0, 3e38], torch.float32),  # 6e38 overflows float32 itself
    ],
    ids=["past bf16 max", "nan", "past f32 max"],
)
def test_fused_output_raises_on_values_beyond_the_output_dtype(values, dtype):
    x = torch.tensor([values, values])
    with pytest.raises(NotFinite, match="1 merged values"):
        weighted(x, SERIAL, dtype, [0, 1], [1.0, 1.0])
    fine = torch.tensor([[1.0, 1e38], [1.0, 1e38]])
    assert torch.equal(weighted(fine, SERIAL, dtype, [0, 1], [1.0, 1.0]), (fine[0] * 2).to(dtype))


def test_a_negative_zero_first_term_stays_negative_zero():
    """mergekit's sum starts from its first term: -0 * 1 + -0 is -0, not a 0 + ... = +0."""
    x = torch.tensor([[-0.0, 1.0], [-0.0, 2.0]])
    out = weighted(x, SERIAL, torch.float32, [0, 1], [1.0, 1.0])
    assert torch.signbit(out[0]) and out[1] == 3.0


def test_the_output_loops_count_what_the_engine_would_refuse():
    bits = np.array([[0x7F7F0000, 0x7F800000]], dtype=np.uint32)  # bf16 max, +inf (as f32)
    out = np.empty(2, np.uint16)
    args = (bits, 0, 0, 2, -1, np.array([0]), np.ones(1, np.float32), True, np.float32(1))
    limit = np.float32(torch.finfo(torch.bfloat16).max)
    assert fused.weighted_output(*args, np.float32(1), limit, out) == 1
    assert out[0] == 0x7F7F  # the largest bfloat16 is kept as it is


# ---- the engine ----


@pytest.mark.parametrize("method", ["linear", "multislerp"])
def test_engine_fused_sums_on_bf16_checkpoints_match_the_torch_path(
    bf16_family, tmp_path, monkeypatch, method
):
    inputs = [
        MergeInput(p, {"weight": w}) for p, w in zip(bf16_family["variants"], (0.5, 0.3, 0.2))
    ]
    for on in ("1", "0"):
        monkeypatch.setenv("ZOO_FUSED", on)
        merge_folders(inputs, None, method, {}, tmp_path / on, progress=False, chunk_bytes=4096)
    ours, ref = tm.load_all(tmp_path / "1"), tm.load_all(tmp_path / "0")
    assert sorted(ours) == sorted(ref)
    for key in ref:
        assert ours[key].dtype == ref[key].dtype, key
        if not ref[key].is_floating_point():
            assert torch.equal(ours[key], ref[key]), key
            continue
        # results 1 float32 ulp apart can round to neighbouring bfloat16s
        ulp = ref[key].float().abs().clamp(min=1e-30) * 2**-7
        assert ((ours[key].float() - ref[key].float()).abs() <= ulp).all(), key


def test_engine_refuses_a_fused_merge_past_the_output_dtype(bf16_family, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_FUSED", "1")
    inputs = [MergeInput(p, {"weight": 2e38}) for p in bf16_family["variants"]]  # LayerNorm's 1s
    with pytest.raises(UserError, match=r"the merge produced NaN or Inf in '.*' \(dtype"):
        merge_folders(inputs, None, "linear", {"normalize": False}, tmp_path / "out",
                      progress=False, chunk_bytes=4096)  # fmt: skip
    assert not (tmp_path / "out").exists()
