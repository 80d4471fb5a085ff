"""The sentence-transformers trainer, fitted with zoo's batch plan, clock and settings.

Everything that touches the Hugging Face Trainer lives here; loop.py only orchestrates. The trainer
supplies the parts zoo relies on: Accelerate device placement (and DDP under `accelerate launch`),
bf16 autocast, checkpoints with optimizer/scheduler/RNG state, exact resume (it replays the epoch's
batch plan and skips the batches already trained), and the progress bar.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import MultiDatasetDefaultBatchSampler
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from zoo.train.config import TrainConfig
from zoo.train.inputs import Prepared
from zoo.train.sampler import Source, num_batches, plan_batches

CLOCK_FILE = "zoo_clock.json"


class BlsBatchSampler(MultiDatasetDefaultBatchSampler):
    """Yields `plan_batches(...)` for the epoch the trainer sets; holds no position of its own.

    On resume the trainer (through Accelerate's skip_first_batches) replays the same epoch's plan
    and drops the batches already trained, so a resumed run sees the order an uninterrupted one
    would.
    """

    def __init__(
        self,
        dataset: Any,
        batch_samplers: list[Any],
        *,
        sources: tuple[Source, ...],
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__(dataset, batch_samplers, generator=None, seed=seed)
        if len(dataset) != sum(s.num_rows for s in sources):
            raise ValueError("the concatenated dataset and the sources disagree on the row count")
        self.sources, self.batch_size, self.drop_last = sources, batch_size, False
        self._len = num_batches(sources, batch_size)

    def __iter__(self):
        for batch in plan_batches(self.sources, self.batch_size, self.seed, self.epoch):
            yield batch.tolist()

    def __len__(self) -> int:
        return self._len


class BlsTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer whose multi-dataset batches follow zoo's BLS plan."""

    def __init__(self, *args: Any, sources: tuple[Source, ...], **kwargs: Any) -> None:
        self._zoo_sources = sources
        super().__init__(*args, **kwargs)

    def get_multi_dataset_batch_sampler(self, dataset, batch_samplers, generator=None, seed=0):
        return BlsBatchSampler(
            dataset,
            batch_samplers,
            sources=self._zoo_sources,
            batch_size=batch_samplers[0].batch_size,
            seed=self.args.seed,
        )


class ClockCallback(TrainerCallback):
    """Keeps the training time across resumed segments: each checkpoint records the time so far."""

    def __init__(self, prior_s: float) -> None:
        self.prior_s, self._t0 = prior_s, time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Training seconds so far, earlier segments included."""
        return self.prior_s + time.perf_counter() - self._t0

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            (folder / CLOCK_FILE).write_text(json.dumps({"elapsed_s": self.elapsed()}))


def prior_elapsed(checkpoint: Path | None) -> float:
    """Training seconds recorded in a checkpoint (0 for a fresh start or an unrecorded one)."""
    clock = checkpoint / CLOCK_FILE if checkpoint else None
    return float(json.loads(clock.read_text())["elapsed_s"]) if clock and clock.is_file() else 0.0


def training_args(
    config: TrainConfig,
    ckpt_dir: Path,
    *,
    bf16: bool,
    progress: bool,
    prompts: dict[str, dict[str, str]] | None,
) -> Any:
    """The Trainer's arguments for config; every seed is config.seed."""
    from accelerate import PartialState

    length = (
        {"max_steps": config.steps} if config.steps else {"num_train_epochs": config.epochs or 1.0}
    )
    return SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio of the total steps
        bf16=bf16,
        use_cpu=PartialState().device.type == "cpu",
        seed=config.seed,
        data_seed=config.seed,
        dataloader_drop_last=False,
        save_strategy="steps" if config.checkpoint_every else "no",
        save_steps=config.checkpoint_every or 1,
        save_total_limit=config.keep_checkpoints,
        logging_steps=config.log_every,
        report_to="none",
        disable_tqdm=not progress,
        prompts=prompts,
        **length,
    )


def build_trainer(
    model: Any, loss: Any, data: Prepared, args: Any, clock: ClockCallback
) -> BlsTrainer:
    """A trainer over all datasets at once (always the multi-dataset path, so BLS applies)."""
    from datasets import DatasetDict

    trainer = BlsTrainer(
        model=model,
        args=args,
        train_dataset=DatasetDict(data.datasets),
        loss=loss,
        callbacks=[clock],
        sources=data.sources,
    )
    if args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)  # silent when asked for no progress
    return trainer


def loss_history(trainer: Any) -> tuple[tuple[int, float], ...]:
    """(step, loss) pairs the trainer logged, earlier resumed segments included."""
    log = trainer.state.log_history
    return tuple((int(e["step"]), float(e["loss"])) for e in log if "loss" in e)
