"""Content-addressed blob store: every file's bytes live once, named by their sha256.

An object file exists only once its bytes have been hashed, size-checked, fsync'ed and renamed
into place, so the presence of `objects/ab/<sha256>` means the complete, verified content. Nothing
here knows about repositories or paths in repositories.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from pathlib import Path

from zoo.hub.server.fsutil import fsync_dir

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_STALE_TMP_S = 24 * 3600


class ObjectMismatch(ValueError):
    """Uploaded bytes do not match the announced sha256 or size."""


class ObjectStore:
    """sha256-addressed, immutable blobs under `<root>/objects`, staged in `<root>/tmp`."""

    def __init__(self, root: Path):
        self.dir = root / "objects"
        self.tmp = root / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, oid: str) -> Path:
        """Return where object `oid` lives (whether or not it exists); ValueError on a bad oid."""
        if not SHA256_RE.match(oid):
            raise ValueError(f"not a sha256 hex digest: {oid!r}")
        return self.dir / oid[:2] / oid

    def size(self, oid: str) -> int | None:
        """Return the object's size in bytes, or None if it is not stored."""
        try:
            return self.path(oid).stat().st_size
        except FileNotFoundError:
            return None

    def put_bytes(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256; durable when this returns."""
        oid = hashlib.sha256(data).hexdigest()
        if self.size(oid) == len(data):
            return oid
        writer = self.writer(oid, len(data))
        try:
            writer.write(data)
            writer.publish()
        finally:
            writer.discard()
        return oid

    def writer(self, oid: str, size: int) -> BlobWriter:
        """Start a streaming upload that will only be published if it hashes to `oid`, `size`."""
        self.path(oid)  # validates the oid
        return BlobWriter(self, oid, size)

    def sweep_tmp(self, older_than_s: float = _STALE_TMP_S) -> int:
        """Delete staging files abandoned by crashed uploads; return how many were removed."""
        cutoff, removed = time.time() - older_than_s, 0
        for entry in os.scandir(self.tmp):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        return removed

    def hash_file(self, oid: str) -> str:
        """Re-read object `oid` and return the sha256 of what is on disk (for audits and tests)."""
        h = hashlib.sha256()
        with open(self.path(oid), "rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
        return h.hexdigest()


class BlobWriter:
    """A staged upload: write() chunks, then publish() verifies and moves it into the store.

    Not thread-safe; use one writer per upload. discard() is always safe to call (no-op after a
    successful publish), so callers can use try/finally.
    """

    def __init__(self, store: ObjectStore, oid: str, size: int):
        self._store, self.oid, self.expected_size = store, oid, size
        self._tmp = store.tmp / f"{oid}.{secrets.token_hex(8)}.part"
        self._fd: int | None = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hash = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> None:
        """Append `data`; ObjectMismatch as soon as more bytes than announced arrive."""
        if self.written + len(data) > self.expected_size:
            raise ObjectMismatch(f"upload exceeds the announced size of {self.expected_size} bytes")
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self.written += len(data)

    def publish(self) -> None:
        """Verify size and sha256, fsync, and rename into the store; ObjectMismatch on mismatch."""
        if self.written != self.expected_size:
            raise ObjectMismatch(f"received {self.written} bytes, announced {self.expected_size}")
        digest = self._hash.hexdigest()
        if digest != self.oid:
            raise ObjectMismatch(f"content hashes to {digest}, not the announced {self.oid}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        final = self._store.path(self.oid)
        final.parent.mkdir(exist_ok=True)
        os.replace(self._tmp, final)  # same bytes if it already existed: replacing is harmless
        fsync_dir(final.parent)

    def discard(self) -> None:
        """Drop the staging file unless it was published."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)
