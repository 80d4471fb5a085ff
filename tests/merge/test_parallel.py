"""Every core, same bytes: the chunked kernels split rows among threads without changing a bit.

Blocks are made tiny (a few elements) so that every test tensor is cut into many of them; each
kernel's output on 1, 2 and 3 threads must be identical bytes, and still equal mergekit's
whole-tensor kernel within 1e-6. The engine's output files must be byte-identical for
threads=1 and threads=2 on every chunked method.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from tests.merge.test_chunked import (
    CASES,
    CHUNKED,
    ENGINE,
    RTOL,
    TOL,
    _case,
    _engine,
    _mergekit,
    _tensors,
)
from zoo.errors import UserError
from zoo.merge import parallel
from zoo.merge.chunking import merge_whole_in_chunks
from zoo.merge.kernels.chunked import Shape
from zoo.merge.parallel import Pool, block_bounds, row_blocks, torch_threads, usable_cores
from zoo.merge.registry import get_method

CPU = torch.device("cpu")


@pytest.fixture
def tiny_blocks(monkeypatch):
    monkeypatch.setattr(parallel, "BLOCK_ELEMENTS", 24)


def _run(name, xs, base_index, resolved, rows, threads):
    method = get_method(name)
    with Pool(threads) as pool:
        shape = Shape(len(xs), xs[0].numel(), xs[0].dtype, CPU, pool)
        kernel = method.chunked(resolved, base_index, shape)
        identity = method.identity_on_equal(resolved, base_index is not None)
        return merge_whole_in_chunks(kernel, xs, rows, identity)[0]


def test_blocks_depend_on_the_shape_only(tiny_blocks):
    assert block_bounds(10, 7) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert block_bounds(5, 100) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert row_blocks([torch.zeros(())]) == [(0, 1)]
    assert row_blocks([torch.zeros(0, 4)]) == [(0, 0)]


def test_pool_keeps_the_order_and_runs_on_several_threads():
    import threading

    with Pool(3) as pool:
        names = pool.map(lambda i: (i, threading.current_thread().name), range(40))
    assert [i for i, _ in names] == list(range(40))
    assert all(name.startswith("zoo-merge") for _, name in names)
    assert Pool(None).threads == usable_cores() >= 1


def test_torch_threads_are_restored():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


CASE_IDS = [(n, i) for n in sorted(CASES) for i in range(len(CASES[n]))]


@pytest.mark.parametrize("name,case", CASE_IDS)
@pytest.mark.parametrize("rows", [5, 300])
def test_threads_do_not_change_a_bit(tiny_blocks, name, case, rows):
    xs, base_index, resolved = _case(name, *CASES[name][case], _tensors(3, (300, 8)))
    outs = [_run(name, xs, base_index, resolved, rows, n) for n in (1, 2, 3)]
    assert all(torch.equal(outs[0], out) for out in outs[1:])
    ref = _mergekit(name, xs, base_index, resolved)
    if rows == 300 and name == "ties":  # one chunk: mergekit's own top-k
        assert torch.equal(outs[0], ref)
    assert torch.allclose(outs[0], ref, rtol=RTOL, atol=TOL), (outs[0] - ref).abs().max()


def test_ties_with_threshold_ties_across_blocks_keeps_the_first_ones(tiny_blocks):
    """bf16-like deltas: many magnitudes equal the threshold and straddle block boundaries;
    the kept ones are the first in row-major order whatever the threads."""
    from tests.merge.test_chunked import _resolved, _ties_stable

    gen = torch.Generator().manual_seed(3)
    base = torch.randn(60, 10, generator=gen)
    xs = [base + torch.randint(-3, 4, (60, 10), generator=gen) * 0.125 for _ in range(3)]
    weights = [0.5, 0.3, 0.7]
    resolved = _resolved("ties", {"density": 0.3}, [{"weight": w} for w in weights], 4, 3)
    outs = [_run("ties", xs + [base], 3, resolved, 7, n) for n in (1, 2, 3)]
    assert all(torch.equal(outs[0], out) for out in outs[1:])
    assert (outs[0] - _ties_stable(xs, base, 0.3, weights)).abs().max() <= TOL


def _digest(folder):
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.safetensors"))
    }


@pytest.mark.parametrize("name", CHUNKED)
def test_engine_output_bytes_do_not_depend_on_threads(bert_family, tmp_path, tiny_blocks, name):
    for threads in (1, 2):
        _engine(bert_family, name, tmp_path / str(threads), chunk_bytes=4096, threads=threads)
    assert _digest(tmp_path / "1") == _digest(tmp_path / "2") != {}
    assert sorted(ENGINE) == CHUNKED


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bert_family, tmp_path, threads):
    with pytest.raises(UserError, match="threads must be a whole number"):
        _engine(bert_family, "linear", tmp_path / "x", threads=threads)
    assert not (tmp_path / "x").exists()


def test_zoo_merge_threads_flag_gives_the_same_bytes(bert_family, tmp_path, tiny_blocks, capsys):
    import yaml

    from zoo.cli import main

    recipe = tmp_path / "ties.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "merge_method": "ties",
                "base_model": str(bert_family["base"]),
                "parameters": {"density": 0.5},
                "models": [
                    {"model": str(p), "parameters": {"weight": 0.5}}
                    for p in bert_family["variants"]
                ],
            }
        )
    )
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        assert main(["merge", str(recipe), "--out", str(out), "--threads", threads, "--quiet"]) == 0
    assert _digest(tmp_path / "t1") == _digest(tmp_path / "t2") != {}
    capsys.readouterr()
    assert main(["merge", str(recipe), "--out", str(tmp_path / "bad"), "--threads", "0"]) == 2
    assert "--threads: expected a whole number of at least 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")
@pytest.mark.parametrize("name", CHUNKED)
def test_the_cuda_path_equals_the_cpu_path(bert_family, tmp_path, name):
    """Pinned buffers copied to the GPU and back: every tensor within 1e-6 of the CPU merge."""
    from tests import tiny as tm

    _engine(bert_family, name, tmp_path / "cpu", chunk_bytes=4096, device="cpu")
    _engine(bert_family, name, tmp_path / "cuda", chunk_bytes=4096, device="cuda")
    cpu, cuda = tm.load_all(tmp_path / "cpu"), tm.load_all(tmp_path / "cuda")
    assert sorted(cpu) == sorted(cuda)
    for key in cpu:
        assert (cpu[key].double() - cuda[key].double()).abs().max() <= 1e-6, key


@pytest.mark.parametrize("n", [5, 1024, 70_001])
def test_blocked_float32_gram_is_within_5e7_of_float64(n):
    from zoo.merge.kernels.chunked import gram

    gen = torch.Generator().manual_seed(n)
    vectors = torch.randn(4, n, generator=gen) * 0.02 + 0.001
    exact = vectors.double() @ vectors.double().T
    got = gram(vectors)
    assert got.dtype == torch.float64
    assert ((got - exact).abs() / exact.abs().max()).max() <= 5e-7


def test_the_default_chunk_budget_fits_a_small_model():
    from zoo.merge.chunk_plan import DEFAULT_CHUNK_BYTES, MIN_CHUNK_BYTES, fitted_budget
    from zoo.merge.prepared import MergeOptions

    mib = 2**20
    assert MergeOptions().chunk_bytes == "auto"
    assert fitted_budget("auto", 88 * mib) == 22 * mib  # a quarter of MiniLM
    assert fitted_budget("auto", 6 * 2**30) == DEFAULT_CHUNK_BYTES
    assert fitted_budget("auto", 1000) == MIN_CHUNK_BYTES
    assert fitted_budget(DEFAULT_CHUNK_BYTES, 88 * mib) == DEFAULT_CHUNK_BYTES  # chosen: kept
    assert fitted_budget(256, 88 * mib) == 256
    assert fitted_budget(None, 88 * mib) is None
