"""The offline real-data suite: `build_suite(size, out)` (see zoo.data.suite.builder)."""

from __future__ import annotations

from pathlib import Path


def build_suite(size: str, out: Path) -> Path:
    """Build the suite of `size` (tiny | small | full) into `out`; see builder.build_suite."""
    from zoo.data.suite.builder import build_suite as _build

    return _build(size, out)


__all__ = ["build_suite"]
