"""zoo's own result cache, keyed by model identity and task content, never by a model name.

mteb's ResultCache files results under model name + revision; a local model has neither, so
two different models share `no_model_name_available/no_revision_available` and the second gets
the first one's scores. Here every entry is keyed by the full tuple (model identity, task name,
task content hash, settings) and the key is stored in the entry and compared on read, so a
changed model, task folder, bf16 choice or mteb version is a miss.

Layout: <root>/v1/<sha256(model identity)[:24]>/<task name>.<sha256(key)[:16]>.json
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

_FORMAT = "zoo-eval-cache/1"


def default_cache_dir() -> Path:
    """$ZOO_EVAL_CACHE, else $XDG_CACHE_HOME/zoo/eval, else ~/.cache/zoo/eval."""
    if os.environ.get("ZOO_EVAL_CACHE"):
        return Path(os.environ["ZOO_EVAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "zoo" / "eval"


def cache_key(
    model_identity: str, task_name: str, content_hash: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """The full key of one (model, task) result, as plain JSON data."""
    return {
        "format": _FORMAT,
        "model": model_identity,
        "task": task_name,
        "content_hash": content_hash,
        "settings": dict(sorted(settings.items())),
    }


class ResultStore:
    """Read and write cached task results under `root`; `root=None` disables the cache."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None

    def _path(self, key: dict[str, Any]) -> Path:
        assert self.root is not None
        model_dir = hashlib.sha256(key["model"].encode()).hexdigest()[:24]
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        return self.root / "v1" / model_dir / f"{key['task']}.{digest}.json"

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        """Return the cached record for `key`, or None (disabled, absent, unreadable, other key)."""
        if self.root is None:
            return None
        try:
            entry = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None
        record = entry.get("record")
        return record if isinstance(record, dict) else None

    def put(self, key: dict[str, Any], record: dict[str, Any]) -> None:
        """Store `record` under `key`, atomically (a reader sees the old file or the new one)."""
        if self.root is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"key": key, "record": record}, sort_keys=True, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
