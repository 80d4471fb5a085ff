"""Standard MTEB tasks and benchmarks by name; their data comes from the Hub.

Names resolve offline (mteb's registry is in the package); loading the data needs the Hub.
Failures become one-line UserErrors naming the task: an unknown name gets a did-you-mean,
offline mode or an unreachable Hub gets the dataset it needed and what to do instead.
"""

from __future__ import annotations

import copy
import hashlib
import os
from functools import lru_cache

import mteb
from mteb.abstasks import AbsTask
from mteb.abstasks.aggregated_task import AbsTaskAggregate

from zoo.errors import UserError
from zoo.suggest import closest

_TRUE = {"1", "ON", "YES", "TRUE"}
_HUB_MODULES = {"httpx", "requests", "urllib3", "huggingface_hub", "datasets", "fsspec"}


def resolve_names(names: tuple[str, ...] | list[str]) -> list[AbsTask]:
    """Return fresh task objects for task or benchmark names, in order, without duplicates.

    A benchmark expands to its tasks. Does not load data or touch the network. Raises
    UserError for an unknown name, suggesting the closest task or benchmark name.
    """
    tasks: list[AbsTask] = []
    seen: set[str] = set()
    for name in names:
        for task in _resolve_one(name):
            if task.metadata.name not in seen:
                seen.add(task.metadata.name)
                tasks.append(task)
    return tasks


def _resolve_one(name: str) -> list[AbsTask]:
    try:
        return [mteb.get_task(name)]
    except KeyError:
        pass
    try:
        benchmark = mteb.get_benchmark(name)
    except KeyError:
        raise UserError(_unknown(name)) from None
    # Benchmark objects are module-level singletons; never load data into theirs.
    return [copy.deepcopy(task) for task in benchmark.tasks]


def _unknown(name: str) -> str:
    close = closest(name, _known_names(), fold_case=True)
    hint = f"; did you mean {close!r}?" if close else ""
    return (
        f"unknown MTEB task or benchmark {name!r}{hint} "
        "(`mteb available-tasks` lists them; a local task folder goes in --task-dir)"
    )


@lru_cache(maxsize=1)
def _known_names() -> tuple[str, ...]:
    # Superseded and private tasks are still valid names; beta tasks warn when instantiated.
    every = mteb.get_tasks(exclude_superseded=False, exclude_private=False)
    names = {t.metadata.name for t in every}
    for bench in mteb.get_benchmarks():
        names.add(bench.name)
        names.update(bench.aliases or ())
    return tuple(sorted(names))


def dataset_ids(task: AbsTask) -> list[str]:
    """The Hub datasets (`path@revision`) a task reads; an aggregate task lists its parts'."""
    if isinstance(task, AbsTaskAggregate):
        return [i for sub in task.metadata.tasks for i in dataset_ids(sub)]
    meta = task.metadata
    return [f"{meta.dataset['path']}@{meta.dataset['revision']}"]


def content_hash(task: AbsTask) -> str:
    """sha256 of the task's dataset ids: a new dataset revision is a new task content."""
    return hashlib.sha256("\n".join(dataset_ids(task)).encode()).hexdigest()


def load_data(task: AbsTask) -> None:
    """Load a standard task's data from the Hub (or the local datasets cache when offline).

    Raises UserError naming the task and dataset when offline mode is set but the datasets
    library was imported online (it would try the network), or when loading fails for a
    network, Hub or file reason. Other exceptions propagate: they are bugs, not bad input.
    """
    if isinstance(task, AbsTaskAggregate):
        for sub in task.metadata.tasks:
            load_data(sub)
        return
    if task.data_loaded:
        return
    name, dataset = task.metadata.name, dataset_ids(task)[0]
    if _offline_env() and not _datasets_offline():
        raise UserError(_needs_hub(name, dataset, "HF_HUB_OFFLINE is set"))
    try:
        task.load_data()
    except Exception as exc:
        if not _is_hub_error(exc):
            raise
        raise UserError(_needs_hub(name, dataset, _one_line(exc))) from None


def _needs_hub(name: str, dataset: str, why: str) -> str:
    return (
        f"MTEB task {name!r} needs its dataset {dataset} from the Hub and could not get it "
        f"({why}); go online or evaluate a local task folder instead (--task-dir)"
    )


def _offline_env() -> bool:
    return any(
        os.environ.get(var, "").strip().upper() in _TRUE
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def _datasets_offline() -> bool:
    """Whether the datasets library itself runs offline (it reads the variable at import)."""
    import datasets.config

    return bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))


def _is_hub_error(exc: BaseException) -> bool:
    root = type(exc).__module__.split(".")[0]
    return isinstance(exc, (OSError, ConnectionError, TimeoutError)) or root in _HUB_MODULES


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
