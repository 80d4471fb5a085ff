"""Run many training jobs (the bags of a BOOM run): in this process, in N processes, or on Ray.

Each job is the one training loop (zoo.train.loop.train) on its own data, settings and output
folder. Jobs are independent, so a failed job does not stop the others: every job runs, then the
first failure (in job order) is raised with a note naming the rest. Because `train` returns a
finished run's record and resumes an interrupted one, running the same jobs again after a failure
redoes only the work that was lost.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zoo.errors import UserError
from zoo.train.config import TrainConfig, TrainResult

Executor = Literal["local", "ray"]


@dataclass(frozen=True, eq=False)
class TrainJob:
    """One training run as plain, picklable data.

    train_sets maps dataset names to datasets.Dataset objects or paths of saved datasets
    (`Dataset.save_to_disk`); on a Ray cluster of several machines use paths every node can read.
    num_cpus / num_gpus are the job's resource request: Ray schedules by them, and a job in a
    process of its own (Ray, or local workers > 1) trains with max(1, int(num_cpus)) torch threads.
    Ray workers must be able to import zoo (installed on every node).
    """

    train_sets: Mapping[str, Any]
    config: TrainConfig
    out: str | Path
    prompts: Mapping[str, str] | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    name: str = ""
    own_candidates: frozenset[str] = frozenset()  # datasets trained without in-batch negatives

    @property
    def label(self) -> str:
        """How logs and errors name the job."""
        return self.name or str(self.out)


def run_jobs(
    jobs: Sequence[TrainJob],
    executor: Executor = "local",
    workers: int = 1,
    *,
    progress: bool = False,
) -> list[TrainResult]:
    """Train every job; return their results in job order.

    executor="local": workers=1 trains the jobs one after another in this process (progress bars
    if progress); workers=N runs up to N at a time, each job in a fresh process. executor="ray":
    each job is one Ray task with the job's resource request, so how many run at once is set by the
    cluster's free resources (workers is not used). Connects to the running Ray instance
    (ray.init() was called, or RAY_ADDRESS is set) or starts a local one for the call. Raises
    UserError if Ray is not installed.
    """
    jobs = list(jobs)
    if executor not in ("local", "ray"):
        raise UserError(f"unknown executor {executor!r}: use 'local' or 'ray'")
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    if executor == "ray":
        return _raise_failures(jobs, _run_ray(jobs))
    if workers == 1 or len(jobs) <= 1:
        return _raise_failures(jobs, [_outcome(run_job, job, progress) for job in jobs])
    return _raise_failures(jobs, _run_processes(jobs, workers))


def run_job(job: TrainJob, progress: bool = False) -> TrainResult:
    """Train one job in this process (its torch thread setting is left as it is)."""
    from zoo.train.loop import train

    return train(
        dict(job.train_sets),
        job.config,
        Path(job.out),
        prompts=job.prompts,
        progress=progress,
        own_candidates=job.own_candidates,
    )


def _run_in_worker(job: TrainJob) -> TrainResult:
    """Train one job in a process of its own, with the job's thread budget and no progress bar."""
    import torch

    torch.set_num_threads(max(1, int(job.num_cpus)))
    return run_job(job)


def _outcome(fn: Any, *args: Any) -> TrainResult | BaseException:
    try:
        return fn(*args)
    except Exception as err:  # noqa: BLE001 - reported by _raise_failures once all jobs ran
        return err


def _run_processes(jobs: list[TrainJob], workers: int) -> list[TrainResult | BaseException]:
    # spawn: a fresh interpreter per job (no forked torch/OpenMP state); one job per process.
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, **fresh) as pool:
        futures = [pool.submit(_run_in_worker, job) for job in jobs]
        return [_outcome(f.result) for f in futures]


def _run_ray(jobs: list[TrainJob]) -> list[TrainResult | BaseException]:
    try:
        import ray
    except ImportError as err:
        raise UserError(
            "the ray executor needs Ray: pip install 'boom-zoo[ray]' (or use --executor local)"
        ) from err
    started = not ray.is_initialized()
    if started:
        ray.init(include_dashboard=False)
    try:
        task = ray.remote(_run_in_worker)
        refs = [
            task.options(
                num_cpus=j.num_cpus, num_gpus=j.num_gpus, name=f"zoo-train {j.label}", max_retries=0
            ).remote(j)
            for j in jobs
        ]
        return [_outcome(ray.get, ref) for ref in refs]
    finally:
        if started:
            ray.shutdown()


def _raise_failures(jobs: list[TrainJob], outcomes: list[Any]) -> list[TrainResult]:
    failed = [
        (job, o) for job, o in zip(jobs, outcomes, strict=True) if isinstance(o, BaseException)
    ]
    if not failed:
        return outcomes
    first_job, first = failed[0]
    note = f"training job {first_job.label!r} failed"
    if len(failed) > 1:
        note += f"; {len(failed) - 1} more failed: {[j.label for j, _ in failed[1:]]}"
    if hasattr(first, "add_note"):  # Python >= 3.11
        first.add_note(note)
    raise first
