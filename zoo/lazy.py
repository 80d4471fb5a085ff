"""Package attributes that load their module on first use (PEP 562), so importing a package for
one cheap name does not import torch, mergekit or mteb behind the others; and `Ref`, a callable
imported on its first call."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def lazy_exports(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """Return a module `__getattr__` for `package`: `name` in `table` imports the module
    table[name] (an absolute module path) and returns its attribute `name`; any other name
    raises AttributeError as a plain module would. Imports nothing until a name is asked for."""
    exports = dict(table)

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__


@dataclass(frozen=True)
class Ref:
    """A callable named "module:attribute", imported on its first use.

    A registry can then list kernels without importing torch or mergekit behind them; calling a
    Ref calls the attribute. Importing is Python's own, so a module is loaded once per process.
    """

    target: str

    def load(self) -> Any:
        """Import the module and return the attribute; raise ImportError/AttributeError if not."""
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)
