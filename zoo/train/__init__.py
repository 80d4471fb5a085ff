"""The one training loop of zoo (bags and update models) and the executors that run many of them.

Public API:
    TrainConfig, TrainResult        plain-data settings and record (no torch import)
    train(train_sets, config, out, *, prompts=None, resume=True, progress=True) -> TrainResult
    fit(...) -> Trained             the same loop, also returning the model in memory
    TrainJob, run_jobs(jobs, executor="local", workers=1) -> list[TrainResult]
    plan_batches, Source            the batch-level-shuffling plan (pure)

Heavy modules (torch, sentence-transformers) load on first use of train/fit/run_jobs, so importing
zoo.train for its config (as the CLI does for its help) stays cheap (zoo.lazy).
"""

from zoo.lazy import lazy_exports
from zoo.train.config import TrainConfig, TrainResult

_EXPORTS = {
    "train": "zoo.train.loop",
    "fit": "zoo.train.loop",
    "Trained": "zoo.train.loop",
    "TrainJob": "zoo.train.executors",
    "run_jobs": "zoo.train.executors",
    "plan_batches": "zoo.train.sampler",
    "Source": "zoo.train.sampler",
}

__all__ = ["TrainConfig", "TrainResult", *_EXPORTS]
__getattr__ = lazy_exports(__name__, _EXPORTS)
