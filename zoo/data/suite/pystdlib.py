"""The Python standard library's own source: docstring -> code retrieval, package clustering.

Reads the .py files of the running interpreter's stdlib with `ast` (nothing is imported or run).
The split unit is the top-level package (`json`, `email`, `os`, ...): test functions come from
packages that no training row saw. Counts depend on the Python version, which stats.json records.
"""

from __future__ import annotations

import ast
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from zoo.data.suite.common import (
    Caps,
    Task,
    balanced,
    hash_order,
    is_test,
    norm,
    retrieval_files,
    words,
)
from zoo.data.suite.requirements import SourceInfo

SOURCE = SourceInfo(
    name="pystdlib",
    title="CPython standard library source (the interpreter running the build)",
    licence="PSF-2.0 (Python Software Foundation License)",
    base=True,
)
_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "turtledemo",
    "site-packages",
    "ensurepip",
    "encodings",
    "__pycache__",
    "tkinter",
    "pydoc_data",
}
MIN_CLUSTER = 6  # functions a package needs to be a clustering label


@dataclass(frozen=True)
class Function:
    package: str
    qualname: str
    summary: str
    code: str


def stdlib_packages() -> dict[str, list[Path]]:
    """Return {top-level package: its .py files (sorted)} of the running stdlib."""
    root = Path(sysconfig.get_paths()["stdlib"])
    packages: dict[str, list[Path]] = {}
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(("config-", "test"))]
        for name in files:
            parts = (*rel.parts, name)
            top = parts[0].removesuffix(".py")
            if name.endswith(".py") and not top.startswith(("_", "test")):
                packages.setdefault(top, []).append(Path(folder) / name)
    return {top: sorted(paths) for top, paths in sorted(packages.items())}


def _functions(package: str, path: Path) -> list[Function]:
    """Return the documented public functions and methods of one file."""
    source = path.read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    out = []
    for node, qual in _walk(tree, ""):
        doc = ast.get_docstring(node)
        if not doc or node.name.startswith("_"):
            continue
        summary = " ".join(doc.split("\n\n")[0].split())
        code = _code_without_docstring(node, lines)
        if len(summary.split()) >= 4 and code.count("\n") >= 2:
            out.append(Function(package, qual, summary, code))
    return out


def _walk(node: ast.AST, prefix: str):
    """Yield (function node, qualified name) for module- and class-level functions."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield child, prefix + child.name
        elif isinstance(child, ast.ClassDef) and not child.name.startswith("_"):
            yield from _walk(child, f"{prefix}{child.name}.")


def _code_without_docstring(node: ast.AST, lines: list[str]) -> str:
    """Return the function's source with its docstring statement removed (max 40 lines)."""
    doc = node.body[0]
    start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    kept = [
        line
        for no, line in enumerate(lines[start - 1 : node.end_lineno], start)
        if not doc.lineno <= no <= doc.end_lineno
    ]
    indent = min((len(k) - len(k.lstrip()) for k in kept if k.strip()), default=0)
    return "\n".join(k[indent:] for k in kept[:40]).strip()


def _collect(packages: list[tuple[str, list[Path]]], want: int | None) -> list[Function]:
    """Parse packages in order until `want` functions are found (all when want is None)."""
    out: list[Function] = []
    for name, files in packages:
        for path in files:
            out.extend(_functions(name, path))
        if want is not None and len(out) >= want:
            break
    return out


def build(caps: Caps) -> list[Task]:
    """Build PyCodeRetrieval and PyPackageClustering."""
    packages = hash_order(stdlib_packages().items(), "pystdlib", lambda kv: kv[0])
    train = _collect([kv for kv in packages if not is_test("pystdlib", kv[0])], _want(caps.train))
    test = _collect([kv for kv in packages if is_test("pystdlib", kv[0])], _want(caps.test))
    train = hash_order(train, "pystdlib", lambda f: f"{f.package}.{f.qualname}")
    seen = {norm(f.summary) for f in train}  # the same docstring can occur in two packages
    test = [
        f
        for f in hash_order(test, "pystdlib", lambda f: f"{f.package}.{f.qualname}")
        if norm(f.summary) not in seen
    ]
    return [_retrieval(train, test, caps), _clustering(train, test, caps)]


def _want(limit: int | None) -> int | None:
    return None if limit is None else 3 * limit


def _retrieval(train: list[Function], test: list[Function], caps: Caps) -> Task:
    def unit(f: Function):
        return f.summary, [f.code]

    files = retrieval_files([unit(f) for f in train], [unit(f) for f in test], [], caps, "py")
    return Task(
        name="PyCodeRetrieval",
        type="retrieval",
        group="in-domain",
        source="pystdlib",
        description="Given a Python docstring summary, find the function's code "
        "(docstring removed).",
        main_score="ndcg_at_10",
        files=files,
        train_type="retrieval",
        instruction="Given a description of a Python function, retrieve its code",
    )


def _clustering(train: list[Function], test: list[Function], caps: Caps) -> Task:
    def rows(funcs: list[Function], limit: int | None) -> list[dict]:
        counts: dict[str, int] = {}
        for f in funcs:
            counts[f.package] = counts.get(f.package, 0) + 1
        kept = [f for f in funcs if counts[f.package] >= MIN_CLUSTER]
        return [
            {"text": words(f.summary, 60), "label": f.package}
            for f in balanced(kept, lambda f: f.package, limit)
        ]

    return Task(
        name="PyPackageClustering",
        type="clustering",
        group="in-domain",
        source="pystdlib",
        description="Cluster Python standard-library docstrings by their top-level package.",
        main_score="v_measure",
        train_type="clustering",
        files={"train.jsonl": rows(train, caps.train), "test.jsonl": rows(test, caps.test)},
        instruction="Identify the Python library module a docstring belongs to",
    )
