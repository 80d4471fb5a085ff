"""Build xorbs and shards by hand, in hf_xet's layout, to hit the Xet routes with exact bytes.

The round trips through the real hf_xet client (tests/hub/test_xet.py) show these layouts are the
client's; here they let tests forge what a hostile client would send (another repo's xorb, a
wrong sha256, a broken chunk) and let the fuzz start from well-formed bodies.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import lz4.frame

from zoo.hub.server import xet_format as X


@dataclass(frozen=True)
class Xorb:
    hash: str  # Xet hex
    data: bytes
    chunks: list[bytes]  # the chunks' raw bytes

    @property
    def hashes(self) -> list[bytes]:
        return [X.chunk_hash(c) for c in self.chunks]


def chunk_bytes(data: bytes, scheme: int = 1) -> bytes:
    """One serialized chunk: 8-byte header, then the bytes (scheme 0 raw, 1 LZ4 frame)."""
    payload = lz4.frame.compress(data) if scheme == 1 else data
    head = bytes([0]) + len(payload).to_bytes(3, "little") + bytes([scheme])
    return head + len(data).to_bytes(3, "little") + payload


def xorb(chunks: list[bytes], scheme: int = 1) -> Xorb:
    data = b"".join(chunk_bytes(c, scheme) for c in chunks)
    root = X.aggregated_hash([(X.chunk_hash(c), len(c)) for c in chunks])
    return Xorb(X.hash_hex(root), data, chunks)


@dataclass(frozen=True)
class Term:
    xorb: Xorb
    start: int
    end: int
    verified: bool = True  # include the verification range hash (hf_xet always does)


def file_of(terms: list[Term]) -> tuple[str, bytes]:
    """(Xet file hash hex, content) of a file made of these terms."""
    chunks = [c for t in terms for c in t.xorb.chunks[t.start : t.end]]
    return X.hash_hex(X.file_hash([(X.chunk_hash(c), len(c)) for c in chunks])), b"".join(chunks)


def _file_records(terms: list[Term], sha256: str | None, file_hash: str | None) -> bytes:
    name, content = file_of(terms)
    flags = (1 << 31) | ((1 << 30) if sha256 != "" else 0)
    out = X.hash_raw(file_hash or name) + struct.pack("<IIQ", flags, len(terms), 0)
    for t in terms:
        length = sum(len(c) for c in t.xorb.chunks[t.start : t.end])
        out += X.hash_raw(t.xorb.hash) + struct.pack("<IIII", 0, length, t.start, t.end)
    for t in terms:
        check = X.range_hash(t.xorb.hashes[t.start : t.end]) if t.verified else bytes(32)
        out += check + bytes(16)
    if sha256 != "":
        out += X.hash_raw(sha256 or hashlib.sha256(content).hexdigest()) + bytes(16)
    return out


def _xorb_records(x: Xorb) -> bytes:
    out = X.hash_raw(x.hash) + struct.pack("<IIII", 0, len(x.chunks), len(x.data), len(x.data))
    pos = 0
    for c in x.chunks:
        out += X.chunk_hash(c) + struct.pack("<IIII", pos, len(c), 0, 0)
        pos += len(chunk_bytes(c))
    return out


def shard(files: list[dict], xorbs: list[Xorb] = ()) -> bytes:
    """A shard as hf_xet uploads it (no footer). Each file: {"terms": [...], "sha256": None
    (the true one) | "" (left out) | a hex string, "hash": None (the true one) | a hex string}."""
    bookend = X.BOOKEND + bytes(16)
    body = X.SHARD_TAG + struct.pack("<QQ", 2, 0)
    for f in files:
        body += _file_records(f["terms"], f.get("sha256"), f.get("hash"))
    body += bookend
    for x in xorbs:
        body += _xorb_records(x)
    return body + bookend
