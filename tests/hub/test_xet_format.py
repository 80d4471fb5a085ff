"""Xet's formats, piece by piece: what the round trips through hf_xet (test_xet.py) rely on."""

from __future__ import annotations

import os
import struct

import lz4.frame
import pytest

from tests.hub import xet_build as B
from zoo.hub.server import xet_format as X


def _bg4_split(data: bytes) -> bytes:
    """xet-core's byte grouping (bg4_split_together): byte i goes to group i % 4."""
    return b"".join(data[i::4] for i in range(4))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 4097, 65536])
def test_byte_grouped_chunks_decode_to_their_bytes(n):
    data = os.urandom(n)
    stored = lz4.frame.compress(_bg4_split(data))
    assert X.decompress(2, stored, n) == data


def test_hash_hex_is_per_little_endian_word_and_round_trips():
    raw = bytes(range(32))
    text = X.hash_hex(raw)
    assert text[:16] == "0706050403020100" and X.hash_raw(text) == raw
    with pytest.raises(ValueError):
        X.hash_raw("ab")


def test_a_xorb_must_hash_to_its_name_and_parse_whole():
    x = B.xorb([os.urandom(1000), bytes(2000)])
    index = X.index_xorb(x.data, X.hash_raw(x.hash))
    assert index.num_chunks == 2 and index.offsets[-1] == len(x.data)
    with pytest.raises(X.XetFormatError, match="hashes to"):
        X.index_xorb(x.data, bytes(32))
    for broken in (x.data[:-5], x.data + b"\0" * 3, b"\1" + x.data[1:]):
        with pytest.raises(X.XetFormatError):
            X.index_xorb(broken, X.hash_raw(x.hash))


def test_a_xorb_footer_is_skipped():
    x = B.xorb([os.urandom(500)])
    footer = b"XETBLOB\x01" + os.urandom(40)
    data = x.data + footer + struct.pack("<I", len(footer))
    assert X.index_xorb(data, X.hash_raw(x.hash)).offsets[-1] == len(x.data)


def test_shards_with_and_without_footer_parse_the_same():
    x = B.xorb([os.urandom(700), os.urandom(900)])
    plain = B.shard([{"terms": [B.Term(x, 0, 2)]}], [x])
    sections = plain[48:]
    footer = struct.pack("<QQQ", 1, 48, 48 + sections.index(X.BOOKEND) + 48) + bytes(176)
    with_footer = X.SHARD_TAG + struct.pack("<QQ", 2, 200) + sections + footer
    for data in (plain, with_footer):
        shard = X.parse_shard(data)
        assert [X.hash_hex(f.hash) for f in shard.files] == [B.file_of([B.Term(x, 0, 2)])[0]]
        assert shard.xorb_chunks[X.hash_raw(x.hash)] == x.hashes
    with pytest.raises(X.XetFormatError, match="tag"):
        X.parse_shard(b"\0" * 48 + plain[48:])
    with pytest.raises(X.XetFormatError, match="bookend"):
        X.parse_shard(plain[:-48])
