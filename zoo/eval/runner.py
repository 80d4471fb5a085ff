"""evaluate(): run a sentence-transformers model on MTEB tasks and local task folders, cached."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import mteb
from mteb.abstasks import AbsTask
from tqdm.auto import tqdm

from zoo.errors import UserError
from zoo.eval import standard
from zoo.eval.cache import ResultStore, cache_key, default_cache_dir
from zoo.eval.folders import load_task_folder
from zoo.eval.model import Bf16, ModelSpec, bf16_enabled, load_model, resolve_model
from zoo.eval.report import EvalReport, TaskScore
from zoo.tasks import snake

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)
_NOT_METRICS = {"main_score", "hf_subset", "languages", "mteb_version"}


@dataclass(frozen=True)
class _Planned:
    """A task to run: what the report says about it, and how to make the mteb object."""

    name: str
    type: str
    mteb_type: str
    main_score: str
    source: str
    content_hash: str
    dataset: str
    origin: str
    build: Callable[[], AbsTask]


def evaluate(
    model: str | Path | SentenceTransformer,
    *,
    tasks: Iterable[str] = (),
    task_dirs: Iterable[str | Path] = (),
    model_name: str | None = None,
    revision: str | None = None,
    batch_size: int = 64,
    bf16: Bf16 = "auto",
    cache_dir: str | Path | None | Literal[False] = None,
    progress: bool = True,
    device: str | None = None,
) -> EvalReport:
    """Evaluate a model on standard MTEB tasks/benchmarks and local task folders.

    `model` is a local sentence-transformers folder or a loaded SentenceTransformer (Hub models
    are pulled by the caller; this package never calls the Hub API). `tasks` are MTEB task or
    benchmark names, whose data is downloaded from the Hub; `task_dirs` are task folders
    (CLI-CONTRACT.md), evaluated without any network access. Results are cached per (model
    identity, task name + content hash, bf16, mteb version) in `cache_dir` (None: the default,
    see cache.default_cache_dir; False: no cache); a hit does not load the model. `bf16="auto"`
    runs under bf16 autocast where the hardware supports it natively. `device` applies to a
    folder model (default: cuda if available, else cpu); a loaded model runs where it is.
    `progress` shows a task-level tqdm bar; each task is also logged (logger "zoo.eval.runner",
    INFO) for non-TTY output.

    Deterministic: the same model and tasks give the same report JSON. Does not mutate a loaded
    model's weights or card data. Raises UserError for bad input (unknown task name, malformed
    folder, missing model folder, Hub data unavailable), naming what is wrong.
    """
    plans = _plan(_as_tuple(tasks), _as_tuple(task_dirs))
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, got {batch_size}")
    spec = resolve_model(model, model_name, revision)
    run = _prepare(model, spec, device, bf16, cache_dir, batch_size, progress)
    bar = tqdm(plans, desc="eval", unit="task", disable=not progress)
    scores = tuple(_score_task(spec.identity, plan, run) for plan in bar)
    return EvalReport(spec.name, spec.revision, spec.identity, run.settings, scores)


@dataclass(frozen=True)
class _Run:
    """How to run the tasks: the model (loaded on first use), the result store, the settings."""

    model: Callable[[], SentenceTransformer]
    store: ResultStore
    batch_size: int
    settings: dict[str, Any]
    progress: bool


def _prepare(
    model: Any,
    spec: ModelSpec,
    device: str | None,
    bf16: Bf16,
    cache_dir: str | Path | None | Literal[False],
    batch_size: int,
    progress: bool,
) -> _Run:
    """Settle the device, the bf16 setting and the result store; the model loads lazily."""
    device = _device(model, device)
    settings = {"bf16": bf16_enabled(bf16, device.split(":")[0]), "mteb": mteb.__version__}
    store = ResultStore(None if cache_dir is False else Path(cache_dir or default_cache_dir()))
    return _Run(_lazy_model(model, spec, device), store, batch_size, settings, progress)


def _lazy_model(model: Any, spec: ModelSpec, device: str) -> Callable[[], SentenceTransformer]:
    """The model to run, loaded on the first call only: a fully cached run never loads it."""
    if spec.folder is None:
        return lambda: model
    return functools.cache(lambda: load_model(spec, device))


def _score_task(identity: str, plan: _Planned, run: _Run) -> TaskScore:
    """The cached score of one task, or run it and cache the score; log it either way."""
    key = cache_key(identity, plan.name, plan.content_hash, run.settings)
    score = _from_cache(run.store, key)
    if score is None:
        score = _run(run.model(), plan, run.batch_size, run.settings["bf16"], run.progress)
        run.store.put(key, _record(score))
    cached = " (cached)" if score.cached else ""
    log.info("%s: %s = %.4f%s", plan.name, plan.main_score, score.score, cached)
    return score


def _as_tuple(items: Iterable[Any] | str | Path) -> tuple[Any, ...]:
    if isinstance(items, (str, Path)):
        return (items,)
    return tuple(items)


def _device(model: Any, device: str | None) -> str:
    """A loaded model stays where it is (never moved); a folder loads on `device` or the GPU."""
    if not isinstance(model, (str, Path)):
        return str(model.device)
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _plan(names: tuple[str, ...], dirs: tuple[str | Path, ...]) -> list[_Planned]:
    """Resolve names and validate folders before any model work; names must be unique."""
    if not names and not dirs:
        raise UserError(
            "nothing to evaluate: name MTEB tasks (--tasks) or task folders (--task-dir)"
        )
    plans = [_plan_standard(t) for t in standard.resolve_names(names)] if names else []
    plans += [_plan_folder(d) for d in dirs]
    seen: dict[str, str] = {}
    for p in plans:
        if p.name in seen:
            raise UserError(f"task name {p.name!r} given twice ({seen[p.name]} and {p.origin})")
        seen[p.name] = p.origin
    return plans


def _plan_standard(task: AbsTask) -> _Planned:
    meta = task.metadata
    return _Planned(
        name=meta.name,
        type=snake(meta.type),
        mteb_type=meta.type,
        main_score=meta.main_score,
        source="mteb",
        content_hash=standard.content_hash(task),
        dataset=", ".join(standard.dataset_ids(task)),
        origin=f"MTEB task {meta.name}",
        build=lambda: task,
    )


def _plan_folder(path: str | Path) -> _Planned:
    folder = load_task_folder(path)
    meta = folder.task_class.metadata
    return _Planned(
        name=folder.info.name,
        type=folder.info.type,
        mteb_type=meta.type,
        main_score=folder.main_score,
        source="folder",
        content_hash=folder.content_hash,
        dataset=f"zoo-task/{folder.info.name}",
        origin=str(path),
        build=folder.build,
    )


def _run(
    model: SentenceTransformer, plan: _Planned, batch_size: int, bf16: bool, progress: bool
) -> TaskScore:
    """Run one task through mteb.evaluate with mteb's own cache off (zoo caches instead)."""
    start = time.perf_counter()  # Hub data loading counts: it is part of what the user waits for
    task = plan.build()
    if plan.source == "mteb":
        standard.load_data(task)
    with _autocast(model, bf16), _quiet(progress), warnings.catch_warnings():
        # mteb's own calls trip deprecation warnings (fill_missing, renamed ST methods) on
        # every task; they say nothing about the user's model or data.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"mteb\.")
        warnings.filterwarnings("ignore", message=r".* is ill-defined and being set to 0")
        result = mteb.evaluate(
            model,
            task,
            cache=None,
            co2_tracker=False,
            overwrite_strategy="always",
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            show_progress_bar=False,
        )
    seconds = time.perf_counter() - start
    if result.exceptions or len(result.task_results) != 1:
        raise RuntimeError(f"mteb did not return a result for {plan.name}: {result.exceptions}")
    return _score(plan, result.task_results[0], seconds)


@contextlib.contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """Without progress, silence the datasets library's bars for the call, then restore them."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    if not progress and was_enabled:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not progress and was_enabled:
            datasets.enable_progress_bars()


def _autocast(model: SentenceTransformer, bf16: bool) -> contextlib.AbstractContextManager:
    if not bf16:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(model.device.type, dtype=torch.bfloat16)


def _score(plan: _Planned, task_result: Any, seconds: float) -> TaskScore:
    """Turn mteb's TaskResult into a TaskScore (numeric metrics averaged like the main score)."""
    entries = [e for split in task_result.scores.values() for e in split]
    sums: dict[str, list[float]] = {}
    for entry in entries:
        for k, v in entry.items():
            if k not in _NOT_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool):
                sums.setdefault(k, []).append(float(v))
    metrics = {k: sum(v) / len(v) for k, v in sorted(sums.items()) if len(v) == len(entries)}
    return TaskScore(
        name=plan.name,
        type=plan.type,
        mteb_type=plan.mteb_type,
        main_score=plan.main_score,
        score=float(task_result.get_score()),
        metrics=metrics,
        split=",".join(task_result.scores),
        content_hash=plan.content_hash,
        source=plan.source,
        dataset=plan.dataset,
        seconds=seconds,
        cached=False,
        mteb_result=json.loads(task_result.model_dump_json()),
    )


def _record(score: TaskScore) -> dict[str, Any]:
    return {
        **score.to_dict(),
        "score": score.score,
        "metrics": score.metrics,
        "seconds": score.seconds,
        "mteb_result": score.mteb_result,
    }


def _from_cache(store: ResultStore, key: dict[str, Any]) -> TaskScore | None:
    record = store.get(key)
    if record is None:
        return None
    try:
        return TaskScore(**{**record, "cached": True})
    except TypeError:  # an entry written by an incompatible version: recompute
        return None


__all__ = ["evaluate"]
