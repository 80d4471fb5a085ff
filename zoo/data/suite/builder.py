"""Build the offline real-data suite: task folders, corpus specs, stats and README.

Output layout (every task folder passes taskfolder.validate_task_folder):

    OUT/in-domain/<Task>/    training tasks: train.jsonl + held-out test files
    OUT/ood/<Task>/          out-of-domain tests, from sources no training task uses
    OUT/new-domain/<Task>/   the Bible: train.jsonl + test files, for incremental updates
    OUT/corpus.yaml          corpus spec over the in-domain training tasks (spec.load_corpus_spec)
    OUT/new-domain.yaml      corpus spec over the new-domain training tasks
    OUT/stats.json           counts, sha256 of every other file, sources, licences, versions
    OUT/README.md            the same, for people

Sizes: `tiny` uses only sources present after `pip install` on the project's image (man pages
of the image, the Python stdlib, installed distributions' metadata, .mo catalogues, and the
pythonbible packages); `small` and `full` add the apt sources that scripts/suite-deps.sh
installs. A missing source fails the build with one error naming the packages.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from pathlib import Path
from types import ModuleType

import yaml

from zoo.data.jsonl import write_jsonl
from zoo.data.spec import DEFAULT_RATIOS
from zoo.data.suite import (
    bible,
    debian,
    dictd,
    fortunes,
    locale_mo,
    manpages,
    naves,
    pymeta,
    pystdlib,
    wordnet,
)
from zoo.data.suite.common import SIZES, Task
from zoo.data.suite.readme import render_readme
from zoo.data.suite.requirements import SourceInfo, check_sources, installed_debs
from zoo.data.taskfolder import validate_task_folder
from zoo.errors import UserError
from zoo.hashing import sha256_file

log = logging.getLogger(__name__)
SUITE_FORMAT = "zoo-offline-suite/1"
MODULES: tuple[ModuleType, ...] = (
    manpages,
    pystdlib,
    debian,
    wordnet,
    fortunes,
    pymeta,
    locale_mo,
    dictd,
    bible,
    naves,
)
SOURCES: tuple[SourceInfo, ...] = tuple(m.SOURCE for m in MODULES)
_VERSIONED_DEBS = {"manpages": manpages.PACKAGES}


def build_suite(size: str, out: Path) -> Path:
    """Build the suite of `size` (tiny | small | full) into folder `out`; return `out`.

    Deterministic: the same machine state gives byte-identical files (stats.json holds no
    time). Writes into a temporary sibling folder and moves it into place at the end; an
    existing `out` is replaced only if it is a previous suite. Reads local files only.
    """
    if size not in SIZES:
        raise UserError(f"--size: expected one of {', '.join(SIZES)}, got {size!r}")
    out = Path(out)
    _check_out(out)
    modules = [m for m in MODULES if size != "tiny" or m.SOURCE.base]
    check_sources([m.SOURCE for m in modules], size)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tasks = _build_tasks(modules, size, tmp)
        _write_specs(tasks, tmp)
        stats = _stats(tasks, modules, size, tmp)
        (tmp / "README.md").write_text(render_readme(stats), encoding="utf-8")
        stats["files"]["README.md"] = sha256_file(tmp / "README.md")
        (tmp / "stats.json").write_text(
            json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _check_out(out: Path) -> None:
    """Refuse to overwrite a folder that is neither empty nor a previous suite."""
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / "stats.json").exists())
    ):
        raise UserError(f"--out: {out} exists and is not an empty folder or a previous suite")


def _build_tasks(modules: list[ModuleType], size: str, root: Path) -> list[Task]:
    """Run every source's builder, write and validate its task folders."""
    tasks = []
    for module in modules:
        started = time.perf_counter()
        for task in module.build(SIZES[size]):
            _write_task(task, root / task.group / task.name)
            tasks.append(task)
        log.info("suite %s: %s in %.1f s", size, module.SOURCE.name, time.perf_counter() - started)
    return tasks


def _write_task(task: Task, folder: Path) -> None:
    """Write task.yaml and the task's JSONL files, then validate the folder."""
    folder.mkdir(parents=True)
    info = {
        "name": task.name,
        "type": task.type,
        "description": task.description,
        "main_score": task.main_score,
    }
    if task.instruction:
        info["instruction"] = task.instruction
    (folder / "task.yaml").write_text(
        yaml.safe_dump(info, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    for name, rows in task.files.items():
        write_jsonl(folder / name, rows)
    validate_task_folder(folder)


def _write_specs(tasks: list[Task], root: Path) -> None:
    """Write corpus.yaml (in-domain training tasks) and new-domain.yaml (Bible training tasks)."""
    for group, filename in (("in-domain", "corpus.yaml"), ("new-domain", "new-domain.yaml")):
        datasets = [
            {
                "name": t.name,
                "type": t.train_type,
                "source": {"path": f"{t.group}/{t.name}"},
                **({"instruction": t.instruction} if t.instruction else {}),
            }
            for t in tasks
            if t.group == group and t.train_type
        ]
        spec = {"ratios": list(DEFAULT_RATIOS), "seed": 0, "datasets": datasets}
        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
        (root / filename).write_text(
            f"# Generated by `zoo data suite build`.\n{text}", encoding="utf-8"
        )


def _stats(tasks: list[Task], modules: list[ModuleType], size: str, root: Path) -> dict:
    """Return the stats document: counts, sources with licences and versions, file checksums."""
    files = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
    return {
        "format": SUITE_FORMAT,
        "size": size,
        "caps": vars(SIZES[size]),
        "python": platform.python_version(),
        "sources": {m.SOURCE.name: _source_stats(m) for m in modules},
        "tasks": [
            {
                "name": t.name,
                "group": t.group,
                "type": t.type,
                "source": t.source,
                "train_type": t.train_type,
                "main_score": t.main_score,
                "counts": {name: len(rows) for name, rows in t.files.items()},
            }
            for t in tasks
        ],
        "files": files,
    }


def _source_stats(module: ModuleType) -> dict:
    """Return a source's title, licence and the versions of what it was read from."""
    from importlib import metadata

    source: SourceInfo = module.SOURCE
    dists = metadata.packages_distributions()
    pip = {d: metadata.version(d) for m in source.pip for d in sorted(set(dists.get(m, [])))}
    debs = installed_debs(_VERSIONED_DEBS.get(source.name, source.debs))
    stats = {"title": source.title, "licence": source.licence, "debs": debs, "pip": pip}
    if hasattr(module, "provenance"):
        stats["provenance"] = module.provenance()
    return stats
