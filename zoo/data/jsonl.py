"""JSON Lines reading and writing with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from zoo.errors import UserError


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every non-blank line; raise UserError on a bad line.

    Every line must hold one JSON object. Reads the file lazily; does not modify it.
    """
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    with handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                yield lineno, _parse_line(path, lineno, line)
        except UnicodeDecodeError:
            raise UserError(f"{path}: not valid UTF-8") from None


def _parse_line(path: Path, lineno: int, line: str) -> dict:
    """Parse one JSON line into a dict or raise UserError naming path:lineno."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # besides bad syntax: a huge integer, deep nesting
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise UserError(f"{path}:{lineno}: invalid JSON ({detail})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_jsonl(path: Path) -> list[dict]:
    """Return every object of a JSON Lines file (see iter_jsonl for the errors)."""
    return [obj for _, obj in iter_jsonl(path)]


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    """Write rows as UTF-8 JSON Lines (keys in the rows' own order); return the count.

    Deterministic: the same rows give the same bytes. Overwrites `path`.
    """
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
