"""ties' fused CPU path (zoo.merge.kernels.fused, numba) against zoo's torch kernels, bit for bit.

The fused path is one window statistics pass (WindowSelect: counts above a window guessed from
the first chunk, candidates inside it) and one fused output loop, reading 16-bit inputs as
stored. `ZOO_FUSED=0` switches it off, so the same kernel object runs the torch operations
(two radix passes, then the output), which tests/merge/test_chunked.py checks against mergekit.
Every case here must give the same bytes both ways: the window's guess only decides how fast the
exact threshold is found (a miss falls back to the radix passes), never what is kept.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import tiny as tm
from zoo.merge import chunk_plan, chunking, parallel
from zoo.merge.chunking import in_memory_reader, row_bounds, run_chunked
from zoo.merge.engine import MergeInput, merge_folders
from zoo.merge.io import Checkpoint
from zoo.merge.kernels import fused
from zoo.merge.kernels.chunked import Shape
from zoo.merge.kernels.ties import TiesChunks
from zoo.merge.kernels.topk import WindowSelect
from zoo.merge.parallel import Pool
from zoo.merge.prepared import MergeOptions, Prepared

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[2]


def _inputs(n=3, shape=(300, 40), seed=0, dtype=torch.float32, scale=0.01):
    """n inputs and a base (index n), as stored in dtype; base ~ N(0, 1), inputs = base + noise:
    in bfloat16 their deltas take few distinct magnitudes, so many tie at the threshold."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=gen)
    xs = [base + scale * torch.randn(shape, generator=gen) for _ in range(n)] + [base]
    return torch.stack(xs).to(dtype)


def _params(n, **kw):
    weights = kw.pop("weights", [1.0] * n)
    densities = kw.pop("densities", [0.5] * n)
    return {
        "weight": dict(enumerate(weights)),
        "density": dict(enumerate(densities)),
        "normalize": kw.pop("normalize", True),
        "lambda": kw.pop("lambda_", 1.0),
        "rescale": kw.pop("rescale", False),
    }


def _merge(stack, params, rows, monkeypatch, fused_on, threads=1):
    """Merge stack (inputs, rows, cols; the base last) in chunks of `rows`; the fused path reads
    the stored dtype, the torch path float32 (as the engine's reader gives each)."""
    monkeypatch.setenv("ZOO_FUSED", "1" if fused_on else "0")
    chunks = stack if fused_on else stack.float()
    n = len(stack)
    out = torch.empty(stack[0].shape)  # float32, as the kernels return their rows

    def write(a: int, part: torch.Tensor, checked: bool) -> None:
        out[a : a + part.shape[0]] = part

    with Pool(threads) as pool:
        shape = Shape(n, stack[0].numel(), torch.float32, CPU, pool)
        kernel = TiesChunks(params, n - 1, shape)
        bounds = row_bounds(stack.shape[1], rows)
        run_chunked(kernel, in_memory_reader(chunks), write, bounds, True)
    return out, kernel


CASES = {
    "equal weights": {},
    "weights, one negative": {"weights": [0.5, -0.3, 0.7]},
    "densities, one keeps all": {"densities": [0.2, 0.9, 1.0]},
    "rescale and lambda": {"rescale": True, "lambda_": 1.3, "densities": [0.3, 0.6, 1.0]},
    "not normalized": {"normalize": False, "weights": [0.2, 0.5, 1.0]},
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_ties_equals_the_torch_kernels_bit_for_bit(monkeypatch, dtype, case):
    stack = _inputs(dtype=dtype)
    params = _params(3, **CASES[case])
    ours, kernel = _merge(stack, params, 70, monkeypatch, fused_on=True)
    ref, torch_kernel = _merge(stack, params, 70, monkeypatch, fused_on=False)
    assert kernel.fused and not torch_kernel.fused
    assert kernel.passes == 1 and torch_kernel.passes == 2  # one statistics pass, not two
    assert torch.equal(ours, ref)


def test_bf16_deltas_tie_at_the_threshold_and_the_first_ties_are_kept(monkeypatch):
    stack = _inputs(dtype=torch.bfloat16)
    params = _params(3)
    ours, kernel = _merge(stack, params, 70, monkeypatch, fused_on=True)
    straddling = [j for j, c in kernel.cursors.items() if not c.all_kept]
    assert straddling  # the cut falls inside a run of equal magnitudes: tie_cut decides
    deltas = (stack[:3].float() - stack[3].float()).reshape(3, -1)
    for j in straddling:
        k = int(0.5 * deltas[j].numel())
        mags = deltas[j].abs()
        t = mags.sort(descending=True, stable=True).values[k - 1]
        kept = (mags > t) | ((mags == t) & ((mags == t).cumsum(0) <= k - int((mags > t).sum())))
        assert int(kept.sum()) == k
        assert kernel.cursors[j].value == float(t)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_threads_do_not_change_a_bit_on_the_fused_path(monkeypatch, threads):
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 200)  # several blocks per chunk
    stack = _inputs(dtype=torch.bfloat16)
    params = _params(3, rescale=True, densities=[0.3, 0.5, 0.8])
    one, _ = _merge(stack, params, 70, monkeypatch, fused_on=True, threads=1)
    many, _ = _merge(stack, params, 70, monkeypatch, fused_on=True, threads=threads)
    assert torch.equal(one, many)


def test_a_misleading_first_chunk_falls_back_to_the_radix_passes(monkeypatch):
    stack = _inputs(shape=(400, 30))
    stack[:3, :80] = stack[3, :80] + 1e-4 * (stack[:3, :80] - stack[3, :80])  # tiny deltas first
    params = _params(3)
    ours, kernel = _merge(stack, params, 80, monkeypatch, fused_on=True)
    ref, _ = _merge(stack, params, 80, monkeypatch, fused_on=False)
    assert kernel.passes == 3  # the window pass, then the two radix passes
    assert torch.equal(ours, ref)


def test_too_many_candidates_give_the_window_up(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    base = torch.zeros(400, 30)
    deltas = torch.rand(3, 400, 30, generator=gen)
    deltas[:, 100:] = 0.5 + 1e-3 * (torch.rand(3, 300, 30, generator=gen) - 0.5)  # all inside
    stack = torch.cat([base + deltas, base[None]])
    params = _params(3)
    ours, kernel = _merge(stack, params, 100, monkeypatch, fused_on=True)
    ref, _ = _merge(stack, params, 100, monkeypatch, fused_on=False)
    assert kernel.passes == 3
    assert torch.equal(ours, ref)


def _window(values: torch.Tensor, k: int, sample: torch.Tensor, blocks: int = 4) -> WindowSelect:
    """Run a WindowSelect over values in `blocks` blocks, counting as fused.ties_window does."""
    window = WindowSelect(k, len(values))
    window.guess(sample)
    for part in values.chunk(blocks):
        above = (part > window.hi) | part.isnan()
        inside = part[(part > window.lo) & (part < window.hi)]
        at_lo, at_hi = int((part == window.lo).sum()), int((part == window.hi).sum())
        total = float(part.double().sum())
        window.add(int(above.sum()), at_lo, at_hi, float(part[above].double().sum()), total, inside)
    return window


@pytest.mark.parametrize("k", [1, 37, 10_000, 19_999, 20_000])
@pytest.mark.parametrize("levels", [None, 7], ids=["distinct", "7 values"])
def test_window_select_finds_the_kth_largest_and_its_ties(k, levels):
    gen = torch.Generator().manual_seed(k)
    values = torch.rand(20_000, generator=gen)
    if levels:
        values = (values * levels).floor() / levels
    window = _window(values, k, values)
    assert window.resolve()
    ordered = values.sort(descending=True).values
    t = ordered[k - 1]
    assert window.threshold == int(t.view(torch.int32))
    assert window.ties == k - int((values > t).sum())
    assert window.equal == int((values == t).sum()) == sum(window.block_ties)
    assert window.kept_sum == pytest.approx(float(ordered[:k].double().sum()), rel=1e-12)


def test_window_select_misses_when_the_sample_misleads():
    values = torch.linspace(0, 1, 20_000)
    window = _window(values, 10_000, values[:2000])  # the sample sees only the smallest tenth
    assert not window.resolve()


def test_tie_cut_finds_the_position_after_the_kth_tie():
    base = np.zeros(20, np.float32)
    x = np.array([0.5, 0.1, 0.5, 0.5, 0.9] * 4, np.float32)
    stack = np.stack([x, base]).view(np.uint32)
    assert fused.tie_cut(stack, 0, 0, 20, 1, 0, np.float32(0.5), 1) == 1
    assert fused.tie_cut(stack, 0, 0, 20, 1, 0, np.float32(0.5), 3) == 4
    assert fused.tie_cut(stack, 0, 5, 20, 1, 0, np.float32(0.5), 2) == 8
    assert fused.tie_cut(stack, 0, 0, 20, 1, 0, np.float32(0.5), 99) == 20


def test_a_large_tensor_in_one_chunk_is_selected_by_zoo_not_sorted(monkeypatch):
    stack = _inputs(shape=(300, 300))  # 90 000 elements: above MERGEKIT_TOPK, within one chunk
    params = _params(3)
    ours, kernel = _merge(stack, params, 300, monkeypatch, fused_on=True)
    assert kernel.cursors  # zoo's exact top-k ran (mergekit's argsort would leave none)
    deltas = (stack[:3] - stack[3]).reshape(3, -1)
    for j, cursor in kernel.cursors.items():
        mags = deltas[j].abs()
        k = int(0.5 * mags.numel())
        assert cursor.value == float(mags.sort(descending=True).values[k - 1])


# ---- the engine: 16-bit checkpoints read as stored, and chunks read once when they fit ----


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.safet*")}


def _ties(family, out, **kw):
    inputs = [MergeInput(p, {"weight": 1.0, "density": 0.4}) for p in family["variants"]]
    return merge_folders(inputs, family["base"], "ties", {}, out, progress=False, **kw)


def test_engine_ties_on_bf16_checkpoints_fused_equals_torch(bf16_family, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_FUSED", "0")
    _ties(bf16_family, tmp_path / "torch", chunk_bytes=4096)
    monkeypatch.setenv("ZOO_FUSED", "1")
    _ties(bf16_family, tmp_path / "fused", chunk_bytes=4096)
    assert _digest(tmp_path / "fused") == _digest(tmp_path / "torch")
    out = tm.load_all(tmp_path / "fused")
    assert all(t.dtype == torch.bfloat16 for t in out.values() if t.is_floating_point())


def test_chunks_that_fit_are_read_once_for_every_pass(bf16_family, tmp_path, monkeypatch):
    reads: list[tuple] = []
    original = Checkpoint.read_rows

    def counted(self, key, start, stop, dtype=None, out=None):
        reads.append((self.label, key, start, stop))
        return original(self, key, start, stop, dtype, out)

    monkeypatch.setattr(Checkpoint, "read_rows", counted)
    monkeypatch.setenv("ZOO_FUSED", "1")
    _ties(bf16_family, tmp_path / "kept", chunk_bytes=4096)
    kept = list(reads)
    reads.clear()
    monkeypatch.setattr(chunking.KeptChunks, "put", lambda self, a, b, chunk: chunk)
    _ties(bf16_family, tmp_path / "reread", chunk_bytes=4096)
    assert _digest(tmp_path / "kept") == _digest(tmp_path / "reread")
    # a tensor within a quarter of the model: each row range of each input read once, not once
    # per pass (here 4: chunks this small guess no window, so the two radix passes follow)
    small = "encoder.layer.0.attention.self.query.weight"
    assert sum(r[1] == small for r in reads) == 4 * sum(r[1] == small for r in kept) > 0
    assert len(set(r for r in kept if r[1] == small)) == sum(r[1] == small for r in kept)
    assert len(kept) < len(reads)


def test_a_stored_dtype_row_read_is_the_file_s_bytes(bf16_family):
    folder = bf16_family["variants"][0]
    checkpoint = Checkpoint(folder, "v0")
    tensors = tm.load_all(folder)
    key = max((k for k in tensors if tensors[k].dim() == 2), key=lambda k: tensors[k].numel())
    rows = tensors[key][3:9]
    out = torch.empty_like(rows)
    assert checkpoint.read_rows(key, 3, 9, torch.bfloat16, out=out) is out
    assert torch.equal(out, rows)
    wide = torch.empty(rows.shape, dtype=torch.float32)
    assert torch.equal(checkpoint.read_rows(key, 3, 9, torch.float32, out=wide), rows.float())
    checkpoint.close()


def test_a_small_merge_keeps_to_torch_operations_and_never_loads_numba(bf16_family, tmp_path):
    inputs = [str(p) for p in bf16_family["variants"]]
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from zoo.merge.engine import MergeInput, merge_folders\n"
        f"inputs = [MergeInput(Path(p), {{'weight': 1.0, 'density': 0.4}}) for p in {inputs!r}]\n"
        f"merge_folders(inputs, Path({str(bf16_family['base'])!r}), 'ties', {{}}, "
        f"Path({str(tmp_path / 'out')!r}), progress=False, chunk_bytes=4096)\n"
        "print('numba' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "ZOO_FUSED"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "False"  # 2 MiB of weights: below FUSE_MIN_BYTES


def test_the_size_gate_follows_one_model_in_the_compute_dtype(bf16_family, monkeypatch):
    inputs = [MergeInput(p, {"weight": 1.0, "density": 0.4}) for p in bf16_family["variants"]]
    options = MergeOptions(chunk_bytes=4096)
    monkeypatch.delenv("ZOO_FUSED", raising=False)
    small = Prepared(inputs, bf16_family["base"], "ties", {}, options)
    monkeypatch.setenv("ZOO_FUSED", "1")
    forced = Prepared(inputs, bf16_family["base"], "ties", {}, options)
    monkeypatch.delenv("ZOO_FUSED")
    monkeypatch.setattr(chunk_plan, "FUSE_MIN_BYTES", 1)
    large = Prepared(inputs, bf16_family["base"], "ties", {}, options)
    try:
        assert not small.fuse and forced.fuse and large.fuse
        # the torch path's chunks are planned for its larger working set (registry: ties)
        key = "encoder.layer.0.intermediate.dense.weight"
        assert small.chunks[key] < large.chunks[key] == forced.chunks[key]
    finally:
        for p in (small, forced, large):
            p.close()
