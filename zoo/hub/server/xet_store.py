"""Xet storage on disk: verified xorbs, the files shards describe, and what each repo may use.

```
<root>/xet/xorbs/ab/<hash>        a xorb exactly as uploaded (served by byte range)
<root>/xet/xorbs/ab/<hash>.idx    its chunk offsets, lengths and hashes (present = verified)
<root>/xet/files/ab/<hash>.json   a file's terms, size and sha256 (from a verified shard)
<root>/xet/sha256/ab/<sha256>     the Xet hash of the file with that sha256 (for /resolve)
<root>/xet/shards/ab/<sha256>     shards as uploaded (answers to the global-dedup query)
<root>/xet/repos/<uid>/xorbs/<h>  this repo may reference xorb h (it uploaded or proved it)
<root>/xet/repos/<uid>/dedup/<c>  the shard that tells this repo where chunk c lives
```
Each file is written once, atomically. A file a shard describes is also rebuilt into the
content-addressed object store and checked against its sha256 (`materialize`), so commits,
/resolve and git-lfs see Xet uploads as ordinary objects. Repos never see each other's xorbs:
a repo may reference a xorb it uploaded, or one whose chunk hashes its shard proves it knows.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from zoo.hub.server import xet_format as X
from zoo.hub.server.fsutil import atomic_write, create_exclusive, dump_json, fsync_dir, read_json
from zoo.hub.server.objects import ObjectMismatch, ObjectStore

Repo = tuple[str, str, str]  # (repo type, repo id, repo uid): who uploads, from its Xet token


class XetStore:
    """The Xet side of a HubStore (`<root>/xet`).

    `link_object(repo_type, repo_id, uid, sha256)` makes a stored object usable in that repo's
    commits (RepoStore.link_lfs, as for a git-lfs upload).
    """

    def __init__(self, root: Path, objects: ObjectStore, link_object: Callable[..., None]):
        self.dir, self.objects, self._link_object = root / "xet", objects, link_object
        self.dir.mkdir(exist_ok=True)
        self._indexes: OrderedDict[str, X.XorbIndex] = OrderedDict()
        self._lock = threading.Lock()

    def _at(self, kind: str, name: str, suffix: str = "") -> Path:
        return self.dir / kind / name[:2] / f"{name}{suffix}"

    def _repo(self, uid: str, kind: str, name: str) -> Path:
        return self.dir / "repos" / uid / kind / name

    # -- xorbs -----------------------------------------------------------------------------------

    def xorb_path(self, xorb: str) -> Path:
        return self._at("xorbs", xorb)

    def xorb_index(self, xorb: str) -> X.XorbIndex | None:
        """The verified index of a stored xorb, or None when it is not stored (indexes are
        written once, so the last few hundred read are kept)."""
        with self._lock:
            hit = self._indexes.get(xorb)
        if hit is not None:
            return hit
        try:
            raw = read_json(self._at("xorbs", xorb, ".idx"))
        except FileNotFoundError:
            return None
        hashes = [bytes.fromhex(h) for h in raw["hashes"]]
        index = X.XorbIndex(raw["offsets"], raw["lengths"], hashes)
        with self._lock:
            self._indexes[xorb] = index
            while len(self._indexes) > 256:
                self._indexes.popitem(last=False)
        return index

    def stage(self) -> Path:
        """A fresh staging path for an upload in flight (swept with the store's tmp files)."""
        return self.objects.tmp / f"xorb.{secrets.token_hex(8)}.part"

    def put_staged_xorb(self, xorb: str, staged: Path, repo: Repo) -> bool:
        """Verify the xorb written at `staged` and move it into place (its staging file is
        consumed), link it to `repo`; True when it was not stored before."""
        new = self.xorb_index(xorb) is None
        if new and staged.stat().st_size == 0:
            raise X.XetFormatError("xorb holds no chunks")
        if new:
            with open(staged, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                index = X.index_xorb(m, X.hash_raw(xorb))
                os.fsync(f.fileno())
            final = self.xorb_path(xorb)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, final)
            fsync_dir(final.parent)
            record = {"offsets": index.offsets, "lengths": index.lengths}
            record["hashes"] = [h.hex() for h in index.hashes]
            atomic_write(self._at("xorbs", xorb, ".idx"), dump_json(record))
        self.link_xorb(repo[2], xorb)
        return new

    def link_xorb(self, uid: str, xorb: str) -> None:
        create_exclusive(self._repo(uid, "xorbs", xorb), b"")

    def has_xorb(self, uid: str, xorb: str) -> bool:
        return self._repo(uid, "xorbs", xorb).exists()

    # -- shards and files ------------------------------------------------------------------------

    def put_shard(self, data: bytes, repo: Repo, max_file_bytes: int) -> bool:
        """Verify a shard's files, rebuild and link them to `repo`; True when it was new.

        XetTooLarge when a file is over `max_file_bytes` (the cap git-lfs uploads have too).

        XetFormatError (a 400) when a term names a xorb the repo may not use, a range outside
        its xorb, a wrong length, a verification or file hash that does not match, or content
        whose sha256 is not the one the shard announces.
        """
        shard, uid = X.parse_shard(data), repo[2]
        for file in shard.files:
            if file.size > max_file_bytes:
                raise X.XetTooLarge(f"a file of {file.size} bytes is larger than this Hub accepts")
            self._check_file(file, uid)
        for file in shard.files:
            self._record_file(file, repo)
        shard_id = hashlib.sha256(data).hexdigest()
        new = create_exclusive(self._at("shards", shard_id), data)
        self._index_dedup(shard, shard_id, uid)
        return new

    def _check_file(self, file: X.ShardFile, uid: str) -> None:
        chunks: list[tuple[bytes, int]] = []
        for seg in file.segments:
            name = X.hash_hex(seg.xorb)
            index = self.xorb_index(name)
            if index is None or not (0 <= seg.start < seg.end <= index.num_chunks):
                raise X.XetFormatError(f"term names xorb {name} chunks {seg.start}-{seg.end}")
            if sum(index.lengths[seg.start : seg.end]) != seg.length:
                raise X.XetFormatError(f"term of xorb {name} has the wrong unpacked length")
            hashes = index.hashes[seg.start : seg.end]
            if not self.has_xorb(uid, name):
                if seg.verification is None or X.range_hash(hashes) != seg.verification:
                    raise X.XetFormatError(f"xorb {name} is not available to this repository")
            elif seg.verification is not None and X.range_hash(hashes) != seg.verification:
                raise X.XetFormatError(f"verification hash of xorb {name} does not match")
            chunks += zip(hashes, index.lengths[seg.start : seg.end], strict=True)
        if X.file_hash(chunks) != file.hash:
            raise X.XetFormatError(f"file {X.hash_hex(file.hash)}: its chunks hash otherwise")

    def _record_file(self, file: X.ShardFile, repo: Repo) -> None:
        for seg in file.segments:
            self.link_xorb(repo[2], X.hash_hex(seg.xorb))
        name = X.hash_hex(file.hash)
        sha = file.sha256 or self._content_sha256(file)
        if self.objects.size(sha) == file.size:  # stored already: still prove these bytes are it
            if self._content_sha256(file) != sha:
                raise X.XetFormatError(f"file {name}: content does not hash to sha256 {sha}")
        else:
            self._materialize(file, sha)
        terms = [[X.hash_hex(s.xorb), s.start, s.end, s.length] for s in file.segments]
        record = {"size": file.size, "sha256": sha, "terms": terms}
        atomic_write(self._at("files", name, ".json"), dump_json(record))
        create_exclusive(self._at("sha256", sha), name.encode())
        self._link_object(*repo, sha)

    def file_record(self, name: str) -> dict | None:
        try:
            return read_json(self._at("files", name, ".json"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def xet_hash_of(self, sha: str) -> str | None:
        """The Xet hash of the stored object `sha`, if it arrived through Xet."""
        try:
            name = self._at("sha256", sha).read_text("ascii", "replace")
        except FileNotFoundError:
            return None
        return name if X.is_hash_hex(name) else None  # a damaged map: serve plain HTTP

    # -- rebuilding files ------------------------------------------------------------------------

    def iter_file(self, file: X.ShardFile):
        """Yield the file's bytes, chunk by chunk, decoded from the stored xorbs."""
        for seg in file.segments:
            name = X.hash_hex(seg.xorb)
            index = self.xorb_index(name)
            assert index is not None  # checked by _check_file
            with open(self.xorb_path(name), "rb") as f:
                f.seek(index.offsets[seg.start])
                region = f.read(index.offsets[seg.end] - index.offsets[seg.start])
            for _pos, scheme, payload, length in X.iter_chunks(region, len(region)):
                yield X.decompress(scheme, payload, length)

    def _content_sha256(self, file: X.ShardFile) -> str:
        h = hashlib.sha256()
        for data in self.iter_file(file):
            h.update(data)
        return h.hexdigest()

    def _materialize(self, file: X.ShardFile, sha: str) -> None:
        writer = self.objects.writer(sha, file.size)
        try:
            for data in self.iter_file(file):
                writer.write(data)
            writer.publish()
        except ObjectMismatch as exc:
            raise X.XetFormatError(f"file {X.hash_hex(file.hash)}: {exc}") from None
        finally:
            writer.discard()

    # -- global dedup ----------------------------------------------------------------------------

    def _index_dedup(self, shard: X.Shard, shard_id: str, uid: str) -> None:
        for chunks in shard.xorb_chunks.values():
            for raw in chunks:
                if X.dedup_eligible(raw):
                    atomic_write(self._repo(uid, "dedup", X.hash_hex(raw)), shard_id.encode())

    def dedup_shard(self, uid: str, chunk: str) -> bytes | None:
        """The shard that tells repo `uid` where `chunk` lives, or None."""
        try:
            shard_id = self._repo(uid, "dedup", chunk).read_text("ascii")
            return self._at("shards", shard_id).read_bytes()
        except FileNotFoundError:
            return None
