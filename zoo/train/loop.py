"""The one training loop of zoo: bags and update models alike are trained by `train`.

Multi-GPU: run the calling program under Accelerate, e.g.
    accelerate launch --num_processes 4 "$(command -v zoo)" bag train corpus.yaml --base ./base ...
    accelerate launch --num_processes 4 my_script.py      # a script that calls zoo.train.train
Every process calls `train` with the same arguments; the Trainer wraps the model in DDP, each
process trains on its own batches of the plan (every batch still from one dataset and one group;
in-batch negatives are not gathered across devices, so that rule holds), and only the main process
writes the model, the result and the run record. On one machine without `accelerate launch` the
model goes to the first GPU if there is one, else the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.train import checkpoints
from zoo.train.config import TrainConfig, TrainResult
from zoo.train.inputs import Prepared, prepare, signature
from zoo.train.model import load_model, make_loss, resolve_bf16
from zoo.train.sampler import examples_in_batches

RESULT_FILE = "training_result.json"
# Weight files a save of the other kind leaves behind; removed so the folder holds one model only.
_STALE = {
    "full": ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"),
    "lora": ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"),
}


@dataclass(frozen=True, eq=False)
class Trained:
    """A trained model still in memory, with the record of its run."""

    model: Any  # sentence_transformers.SentenceTransformer
    result: TrainResult


def train(
    train_sets: Mapping[str, Any],
    config: TrainConfig,
    out: Path | str,
    *,
    prompts: Mapping[str, str] | None = None,
    resume: bool = True,
    progress: bool = True,
    own_candidates: Iterable[str] = (),
) -> TrainResult:
    """Train one model on train_sets with batch-level shuffling; save it to out; return the record.

    train_sets maps dataset names to datasets.Dataset (or saved-dataset paths) with columns anchor,
    positive, optional negative and optional group (zoo.train.inputs); prompts maps dataset names to
    an instruction prepended to their anchors. out receives a complete sentence-transformers folder
    (full weights, or a LoRA adapter over config.base plus the module files) and
    training_result.json. With resume=True a finished run of the same settings and data in out is
    returned as is, and an interrupted one continues from its last complete checkpoint (weights,
    optimizer, scheduler, RNG and batch position), not from step 0. Deterministic for a given seed
    on one machine and device. Writes only under out and config.checkpoint_dir; reads only local
    files.
    """
    out = Path(out)
    data = prepare(train_sets, prompts, own_candidates)
    if resume and (done := _finished(out, config, data)) is not None:
        return done
    return fit(data, config, out, resume=resume, progress=progress).result


def fit(
    data: Prepared | Mapping[str, Any],
    config: TrainConfig,
    out: Path | str,
    *,
    prompts: Mapping[str, str] | None = None,
    resume: bool = True,
    progress: bool = True,
) -> Trained:
    """Like `train`, but always trains (resuming checkpoints) and also returns the model in memory.

    A finished model already in out is trained again and overwritten. The returned model is in
    eval-ready fp32 (no autocast wrapper), on the training device.
    """
    from accelerate import PartialState
    from transformers import set_seed

    data = data if isinstance(data, Prepared) else prepare(data, prompts)
    state = PartialState()
    run = _start(data, config, Path(out), state, resume)
    set_seed(config.seed)
    trained = _train(load_model(config), run, progress)
    if state.is_main_process:
        _save(trained, run)
    state.wait_for_everyone()
    return trained


def _start(data: Prepared, config: TrainConfig, out: Path, state: Any, resume: bool) -> _Run:
    """The run's fixed facts, with the checkpoint it starts from (chosen by the main process)."""
    sig = checkpoints.run_signature(config, signature(data))
    ckpt_dir = Path(config.checkpoint_dir or out / "checkpoints")
    run = _Run(data, config, out, ckpt_dir, None, checkpoints.run_id(sig))
    if state.is_main_process:
        run = replace(run, start=checkpoints.prepare_folder(run.ckpt_dir, sig, resume=resume))
        # No result file: the folder is not finished.
        (run.out / RESULT_FILE).unlink(missing_ok=True)
    state.wait_for_everyone()
    if not state.is_main_process and resume:  # the main process chose and cleaned up; follow it
        run = replace(run, start=checkpoints.last_complete(run.ckpt_dir))
    return run


@dataclass(frozen=True, eq=False)
class _Run:
    """One call's fixed facts: what to train, where, from which checkpoint, under which id."""

    data: Prepared
    config: TrainConfig
    out: Path
    ckpt_dir: Path
    start: Path | None
    run_id: str

    @property
    def start_step(self) -> int:
        """The step the run resumes at (0 for a fresh start)."""
        return int(self.start.name.split("-")[1]) if self.start else 0


def _train(model: Any, run: _Run, progress: bool) -> Trained:
    from zoo.train import trainer as tr

    config, data = run.config, run.data
    bf16 = resolve_bf16(config.bf16)
    args = tr.training_args(
        config, run.ckpt_dir, bf16=bf16, progress=progress, prompts=data.prompts
    )
    clock = tr.ClockCallback(tr.prior_elapsed(run.start))
    loss = make_loss(model, config, data.own_candidates, data.datasets)
    trainer = tr.build_trainer(model, loss, data, args, clock)
    started = time.time()
    trainer.train(resume_from_checkpoint=str(run.start) if run.start else None)
    history, steps = tr.loss_history(trainer), int(trainer.state.global_step)
    seen = examples_in_batches(
        data.sources, config.batch_size, config.seed, steps * args.world_size
    )
    # Accelerate patched forward with bf16 autocast for training; the returned model runs in fp32.
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    return Trained(
        model,
        TrainResult(
            out=str(run.out),
            run_id=run.run_id,
            adapter="lora" if config.is_lora else "full",
            steps=steps,
            examples_seen=seen,
            wall_time_s=round(clock.elapsed(), 3),
            final_loss=history[-1][1] if history else None,
            loss_history=history,
            resumed_from_step=run.start_step,
            datasets=data.rows,
            hyperparameters={**config.hyperparameters(), "bf16": bf16},
            started_at=started,
            finished_at=time.time(),
        ),
    )


def _save(trained: Trained, run: _Run) -> None:
    """Write the model, then the result (its presence means the folder is complete); clean up."""
    run.out.mkdir(parents=True, exist_ok=True)
    for name in _STALE[trained.result.adapter]:
        (run.out / name).unlink(missing_ok=True)
    trained.model.save_pretrained(str(run.out))
    (run.out / RESULT_FILE).write_text(trained.result.model_dump_json(indent=1), encoding="utf-8")
    checkpoints.remove(run.ckpt_dir)


def _finished(out: Path, config: TrainConfig, data: Prepared) -> TrainResult | None:
    """The recorded result of a finished run in out with these settings and data, else None.

    Raises UserError when out holds a finished run of other settings or data.
    """
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    result = TrainResult.model_validate_json(path.read_text(encoding="utf-8"))
    if result.run_id != checkpoints.run_id(checkpoints.run_signature(config, signature(data))):
        raise UserError(
            f"{out} already holds a model trained with other settings or data; "
            "choose another output folder or pass resume=False to retrain"
        )
    return result
