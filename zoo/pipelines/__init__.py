"""Orchestration only: each function is one user-level job built from the components.

members: push, ls, show, pull.  merging: merge (recipe -> select -> lock -> pull -> merge -> publish).
Submodules load on first use, so `zoo ls` does not pay for torch and mergekit.
"""

import importlib

_EXPORTS = {
    "push": "members",
    "ls": "members",
    "show": "members",
    "pull": "members",
    "member_metadata": "members",
    "merge": "merging",
    "MergeOutcome": "merging",
    "build_suite": "data",
    "train_bags": "bags",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoo.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"zoo.pipelines.{_EXPORTS[name]}"), name)
