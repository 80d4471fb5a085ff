"""Xet's binary formats and hashes, as hf_xet writes them: chunk hashes, xorbs, shards.

Pure functions over bytes, no I/O. The layouts follow huggingface/xet-core
(xet_core_structures: merklehash, xorb_object, metadata_shard):

- a hash is 32 bytes, read as four little-endian u64 words; its hex string prints each word as
  16 hex digits (so it is *not* the plain hex of the 32 bytes);
- a chunk hash is BLAKE3 keyed with DATA_KEY over the chunk's bytes; a xorb hash is the
  aggregated merkle hash over (chunk hash, length); a file hash is that aggregate, keyed again
  with an all-zero key; a verification range hash is BLAKE3 keyed with VERIFICATION_KEY over the
  concatenated raw chunk hashes of a range;
- a xorb is a run of chunks, each an 8-byte header (version, compressed length u24, scheme,
  uncompressed length u24) and its bytes (none, LZ4 frame, or byte-grouped-by-4 then LZ4),
  optionally followed by a footer starting with b"XETBLOB" and ending with its u32 length;
- a shard is a 48-byte header, a file-info section and a xorb-info section (48-byte records,
  each ended by an all-ones "bookend" hash), lookup tables and a 200-byte footer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import blake3
import lz4.frame

DATA_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28]
    + [157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)
INTERNAL_NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230]
    + [93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)
VERIFICATION_KEY = bytes(
    [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243]
    + [164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195]
)
BOOKEND = b"\xff" * 32
SHARD_TAG = bytes.fromhex("48465265706f4d6574614461746100556967456a7b815783a5bdd95ccdd14aa9")
MAX_CHUNK_BYTES = 128 << 10  # xet-core's MAX_CHUNK_SIZE (2x the 64 KiB target)
GLOBAL_DEDUP_MODULUS = 1024
_XORB_IDENT = b"XETBLOB"
_SHARD_TAG_LEN, _SHARD_HEADER, _SHARD_FOOTER, _RECORD = 32, 48, 200, 48
_BRANCHING = 4


class XetFormatError(ValueError):
    """Bytes that are not a well-formed xorb or shard, or whose hashes do not match."""


class XetTooLarge(XetFormatError):
    """A shard describes a file larger than the Hub accepts."""


# -- hashes --------------------------------------------------------------------------------------


def hash_hex(raw: bytes) -> str:
    """The Xet hex string of a 32-byte hash (each little-endian u64 word printed on its own)."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def hash_raw(text: str) -> bytes:
    """The 32 raw bytes of a Xet hex string; ValueError when it is not 64 hex digits."""
    if len(text) != 64:
        raise ValueError(f"a Xet hash has 64 hex digits, got {len(text)}")
    return b"".join(bytes.fromhex(text[i : i + 16])[::-1] for i in range(0, 64, 16))


def is_hash_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def chunk_hash(data: bytes) -> bytes:
    return blake3.blake3(data, key=DATA_KEY).digest()


def _mod(raw: bytes, n: int) -> int:
    return int.from_bytes(raw[24:32], "little") % n


def _merge(nodes: list[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{hash_hex(h)} : {n}\n" for h, n in nodes)
    return blake3.blake3(text.encode(), key=INTERNAL_NODE_KEY).digest(), sum(n for _, n in nodes)


def _next_cut(nodes: list[tuple[bytes, int]], start: int) -> int:
    left = len(nodes) - start
    if left <= 2:
        return len(nodes)
    end = min(2 * _BRANCHING + 1, left)
    for i in range(2, end):
        if _mod(nodes[start + i][0], _BRANCHING) == 0:
            return start + i + 1
    return start + end


def aggregated_hash(nodes: list[tuple[bytes, int]]) -> bytes:
    """The merkle root of (hash, length) pairs; a xorb's hash over its chunks."""
    if not nodes:
        return bytes(32)
    level = list(nodes)
    while len(level) > 1:
        merged, start = [], 0
        while start < len(level):
            cut = _next_cut(level, start)
            merged.append(_merge(level[start:cut]))
            start = cut
        level = merged
    return level[0][0]


def file_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    """A file's Xet hash over its chunks, in order."""
    if not chunks:
        return bytes(32)
    return blake3.blake3(aggregated_hash(chunks), key=bytes(32)).digest()


def range_hash(hashes: list[bytes]) -> bytes:
    """The verification hash a shard gives for a run of chunks: proof of having their hashes."""
    return blake3.blake3(b"".join(hashes), key=VERIFICATION_KEY).digest()


def dedup_eligible(raw: bytes) -> bool:
    """Chunks the client asks the global-dedup endpoint about (one in 1024, by hash)."""
    return _mod(raw, GLOBAL_DEDUP_MODULUS) == 0


# -- xorbs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XorbIndex:
    """Where each chunk of a stored xorb lies: byte offsets (n + 1), lengths and hashes."""

    offsets: list[int]
    lengths: list[int]
    hashes: list[bytes]

    @property
    def num_chunks(self) -> int:
        return len(self.lengths)


def _bg4_regroup(data: bytes) -> bytes:
    n = len(data)
    split, rem = divmod(n, 4)
    sizes = [split + (1 if i < rem else 0) for i in range(4)]
    out, pos = bytearray(n), 0
    for i, size in enumerate(sizes):
        out[i::4] = data[pos : pos + size]
        pos += size
    return bytes(out)


def decompress(scheme: int, data: bytes, length: int) -> bytes:
    """A chunk's bytes from its stored form (scheme 0 none, 1 LZ4 frame, 2 byte-grouped LZ4)."""
    try:
        if scheme == 0:
            out = data
        elif scheme == 1:
            out = lz4.frame.decompress(data)
        elif scheme == 2:
            out = _bg4_regroup(lz4.frame.decompress(data))
        else:
            raise XetFormatError(f"unknown chunk compression scheme {scheme}")
    except RuntimeError as exc:  # lz4 reports corrupt frames as RuntimeError
        raise XetFormatError(f"chunk does not decompress: {exc}") from None
    if len(out) != length:
        raise XetFormatError(f"chunk decompresses to {len(out)} bytes, header says {length}")
    return out


def chunk_region(data: bytes) -> int:
    """How many leading bytes of a serialized xorb hold chunks (the rest is its footer)."""
    if len(data) >= 4:
        (info,) = struct.unpack_from("<I", data, len(data) - 4)
        start = len(data) - 4 - info
        if 0 <= start and data[start : start + 7] == _XORB_IDENT:
            return start
    return len(data)


def iter_chunks(data: bytes, end: int):
    """Yield (offset, scheme, payload, uncompressed length) for each chunk in data[:end]."""
    pos = 0
    while pos < end:
        if end - pos < 8:
            raise XetFormatError(f"truncated chunk header at byte {pos}")
        version, scheme = data[pos], data[pos + 4]
        stored = int.from_bytes(data[pos + 1 : pos + 4], "little")
        length = int.from_bytes(data[pos + 5 : pos + 8], "little")
        if version != 0 or length > MAX_CHUNK_BYTES or stored > 2 * MAX_CHUNK_BYTES:
            raise XetFormatError(f"bad chunk header at byte {pos}")
        if pos + 8 + stored > end:
            raise XetFormatError(f"chunk at byte {pos} runs past the end of the xorb")
        yield pos, scheme, data[pos + 8 : pos + 8 + stored], length
        pos += 8 + stored


def index_xorb(data: bytes, expected: bytes) -> XorbIndex:
    """Parse and verify a serialized xorb against its announced hash; XetFormatError if not."""
    end = chunk_region(data)
    offsets, lengths, hashes = [], [], []
    for pos, scheme, payload, length in iter_chunks(data, end):
        offsets.append(pos)
        lengths.append(length)
        hashes.append(chunk_hash(decompress(scheme, payload, length)))
    if not hashes:
        raise XetFormatError("xorb holds no chunks")
    actual = aggregated_hash(list(zip(hashes, lengths, strict=True)))
    if actual != expected:
        raise XetFormatError(f"xorb content hashes to {hash_hex(actual)}, not {hash_hex(expected)}")
    return XorbIndex(offsets + [end], lengths, hashes)


# -- shards --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One term of a file: chunks [start, end) of a xorb, `length` bytes once unpacked."""

    xorb: bytes
    start: int
    end: int
    length: int
    verification: bytes | None


@dataclass(frozen=True)
class ShardFile:
    """A file a shard describes: its Xet hash, its segments and (when given) its sha256."""

    hash: bytes
    segments: list[Segment]
    sha256: str | None

    @property
    def size(self) -> int:
        return sum(s.length for s in self.segments)


@dataclass(frozen=True)
class Shard:
    files: list[ShardFile]
    xorb_chunks: dict[bytes, list[bytes]]  # xorb hash -> its chunk hashes, as the shard lists them


def _records(data: bytes, offset: int, limit: int):
    """Yield consecutive 48-byte records from `offset`, up to `limit`."""
    while True:
        if offset + _RECORD > limit:
            raise XetFormatError("shard section runs past its end (no bookend)")
        yield data[offset : offset + _RECORD]
        offset += _RECORD


def _file_entry(records) -> ShardFile | None:
    head = next(records)
    if head[:32] == BOOKEND:
        return None
    flags, count = struct.unpack_from("<II", head, 32)
    parts = [struct.unpack_from("<32sIIII", next(records)) for _ in range(count)]
    checks = [next(records)[:32] for _ in range(count)] if flags & (1 << 31) else [None] * count
    sha = hash_hex(next(records)[:32]) if flags & (1 << 30) else None
    segments = [
        Segment(xorb, start, end, length, check)
        for (xorb, _flags, length, start, end), check in zip(parts, checks, strict=True)
    ]
    return ShardFile(head[:32], segments, sha)


def _xorb_entry(records) -> tuple[bytes, list[bytes]] | None:
    head = next(records)
    if head[:32] == BOOKEND:
        return None
    (count,) = struct.unpack_from("<I", head, 36)
    return head[:32], [next(records)[:32] for _ in range(count)]


def _sections(data: bytes) -> tuple[int, int | None, int]:
    """(file-info offset, xorb-info offset or None if it follows the files, end of sections)."""
    if len(data) < _SHARD_HEADER:
        raise XetFormatError(f"shard of {len(data)} bytes is shorter than its header")
    if data[:_SHARD_TAG_LEN] != SHARD_TAG:
        raise XetFormatError("not a Xet shard (wrong header tag)")
    (footer_size,) = struct.unpack_from("<Q", data, 40)
    if footer_size == 0:  # as uploaded: no footer, the xorb section follows the file bookend
        return _SHARD_HEADER, None, len(data)
    footer = len(data) - _SHARD_FOOTER
    if footer_size != _SHARD_FOOTER or footer < _SHARD_HEADER:
        raise XetFormatError(f"shard footer of {footer_size} bytes is not the known layout")
    file_at, xorb_at = struct.unpack_from("<QQ", data, footer + 8)
    if not (_SHARD_HEADER <= file_at <= xorb_at <= footer):
        raise XetFormatError("shard footer points outside the shard")
    return file_at, xorb_at, footer


def parse_shard(data: bytes) -> Shard:
    """The files and xorbs a serialized shard describes; XetFormatError when malformed."""
    file_at, xorb_at, end = _sections(data)
    try:
        records, files = _records(data, file_at, end if xorb_at is None else xorb_at), []
        while (entry := _file_entry(records)) is not None:
            files.append(entry)
        if xorb_at is not None:
            records = _records(data, xorb_at, end)
        xorbs = {}
        while (item := _xorb_entry(records)) is not None:
            xorbs[item[0]] = item[1]
    except struct.error as exc:
        raise XetFormatError(f"malformed shard record: {exc}") from None
    return Shard(files, xorbs)
