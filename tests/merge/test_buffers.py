"""The engine's pool of row-chunk buffers: a buffer is handed out again only once nothing but
the pool refers to it (a tensor object, a view, a numpy array or memoryview like the writer's
queued writes), and a chunked merge reads every chunk into a few reused buffers."""

from __future__ import annotations

import gc

import torch

from tests import tiny as tm
from zoo.merge import engine
from zoo.merge.buffers import Buffers
from zoo.merge.engine import MergeInput, merge_folders

SHAPE = (3, 4, 8)


def test_a_dropped_buffer_is_handed_out_again():
    pool = Buffers()
    first = pool.empty(SHAPE, torch.float32)
    address = first.data_ptr()
    del first
    again = pool.empty(SHAPE, torch.float32)
    assert again.data_ptr() == address
    assert (pool.made, pool.handed) == (1, 2)


def test_a_buffer_still_referred_to_is_not_reused():
    pool = Buffers()
    first = pool.empty(SHAPE, torch.float32)
    address = first.data_ptr()
    assert pool.empty(SHAPE, torch.float32).data_ptr() != address  # the tensor itself is held
    row = first[1]  # a view only
    del first
    assert pool.empty(SHAPE, torch.float32).data_ptr() != address
    queued = memoryview(row.contiguous().view(torch.uint8).numpy())  # as StreamWriter queues it
    del row
    assert pool.empty(SHAPE, torch.float32).data_ptr() != address
    del queued
    gc.collect()
    assert pool.empty(SHAPE, torch.float32).data_ptr() == address


def test_a_smaller_request_reuses_a_buffer_up_to_twice_its_size():
    pool = Buffers()
    address = pool.empty(SHAPE, torch.float32).data_ptr()  # 384 bytes
    ragged = pool.empty((3, 3, 8), torch.bfloat16)  # 144 bytes: its own buffer
    assert ragged.data_ptr() != address and pool.made == 2
    del ragged
    ragged = pool.empty((3, 3, 8), torch.float32)  # 288 bytes: a ragged last chunk
    assert ragged.data_ptr() == address and ragged.is_contiguous()
    assert ragged.shape == (3, 3, 8) and ragged.dtype == torch.float32
    larger = pool.empty((3, 5, 8), torch.float32)
    assert pool.made == 3 and larger.data_ptr() != address
    del ragged, larger
    assert pool.empty(SHAPE, torch.float32).data_ptr() == address  # the smallest that fits


def test_the_pool_holds_a_bounded_number_of_buffers():
    pool = Buffers(held=2)
    kept = [pool.empty(SHAPE, torch.float32) for _ in range(5)]  # all in use: five made
    last_two = {t.data_ptr() for t in kept[-2:]}
    kept.clear()  # the first three went back to malloc (the pool let them go), the last two not
    again = [pool.empty(SHAPE, torch.float32) for _ in range(3)]
    assert {t.data_ptr() for t in again[:2]} == last_two
    assert pool.made == 6


def test_a_chunked_merge_reuses_its_read_buffers(tmp_path, monkeypatch):
    """Every matrix of a tiny BERT merged one row at a time (a 2 KiB budget): near a thousand
    chunk reads in ten buffers, and the result equals the whole-tensor merge bit for bit; identical
    inputs pass through as views of pooled buffers queued in the writer, unchanged."""
    family = tm.family(tmp_path / "f", "bert", n=3)
    inputs = [MergeInput(p, {"weight": w}) for p, w in zip(family["variants"], (0.5, 0.3, 0.2))]
    same = [MergeInput(family["variants"][0], {"weight": 1.0})] * 3
    pools: list[Buffers] = []

    class Counting(Buffers):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            pools.append(self)

    monkeypatch.setattr(engine, "Buffers", Counting)
    merge_folders(
        inputs, None, "linear", {}, tmp_path / "chunked", progress=False, chunk_bytes=2048
    )
    merge_folders(same, None, "linear", {}, tmp_path / "same", progress=False, chunk_bytes=2048)
    merge_folders(inputs, None, "linear", {}, tmp_path / "whole", progress=False, chunk_bytes=None)
    pool = pools[0]
    assert pool.handed >= 500 and pool.made * 20 <= pool.handed
    ours, ref = tm.load_all(tmp_path / "chunked"), tm.load_all(tmp_path / "whole")
    assert sorted(ours) == sorted(ref)
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    src, passed = tm.load_all(family["variants"][0]), tm.load_all(tmp_path / "same")
    assert sorted(passed) == sorted(src)
    assert all(torch.equal(passed[k], src[k]) for k in src)


def test_free_heap_beyond_the_limit_goes_back_to_the_os():
    """Inside reuse_freed_buffers glibc keeps what is freed (trim threshold 256 MiB); between
    tensors the engine gives it back once more than its limit is kept."""
    import ctypes

    from zoo.merge.resources import HeapTrim, reuse_freed_buffers

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    with reuse_freed_buffers():
        trim, never = HeapTrim(8 * 2**20), HeapTrim(1 << 40)
        blocks = [libc.malloc(2**20) for _ in range(64)]  # 64 MiB under the mmap threshold
        for block in blocks:
            ctypes.memset(block, 1, 2**20)  # resident
        for block in blocks[:-1]:
            libc.free(block)  # kept by glibc: blocks[-1] stops the top from shrinking
        assert not never()
        assert trim()
        assert not trim()  # given back already: nothing freed since
        libc.free(blocks[-1])
