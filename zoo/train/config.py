"""What a training run is asked to do (TrainConfig) and what it did (TrainResult): plain data.

Both are frozen pydantic models that refuse unknown fields. The Field descriptions are the help text
of the `zoo bag train` options, so they are written for users. Importing this module is cheap (no
torch), so the CLI can build its help from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from zoo.schema import Frozen as _Frozen

Scalar = str | int | float | bool | None

# Fields that change how a run is recorded or checkpointed, not what it computes: a checkpoint made
# under other values of these may still be resumed.
BOOKKEEPING_FIELDS = frozenset(
    {"checkpoint_every", "keep_checkpoints", "checkpoint_dir", "log_every"}
)


class TrainConfig(_Frozen):
    """How to train one bag or update model from a base sentence-transformers model."""

    base: str = Field(description="local folder of the base sentence-transformers model")
    lora_r: int | None = Field(
        default=None, ge=1, description="LoRA rank; omit for full fine-tuning"
    )
    lora_alpha: int | None = Field(
        default=None, ge=1, description="LoRA alpha (default: equal to the rank, scaling 1)"
    )
    lora_dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout on the LoRA branch")
    lora_targets: tuple[str, ...] | None = Field(
        default=None,
        description="module names LoRA adapts, or ('all-linear',) "
        "(default: peft's choice, query/value for BERT)",
    )
    learning_rate: float = Field(default=5e-5, gt=0, description="peak learning rate (AdamW)")
    batch_size: int = Field(
        default=32, ge=1, description="rows per batch (per device), the in-batch negatives"
    )
    max_seq_length: int | None = Field(
        default=None,
        ge=8,
        description="truncate texts to this many tokens (default: the base model's own limit)",
    )
    steps: int | None = Field(default=None, ge=1, description="train for exactly this many steps")
    epochs: float | None = Field(
        default=None, gt=0, description="train for this many passes over the data (default 1)"
    )
    warmup_ratio: float = Field(
        default=0.1, ge=0, lt=1, description="fraction of the steps that warm up the learning rate"
    )
    scale: float = Field(
        default=50.0, gt=0, description="similarity scale of the loss (50 = temperature 0.02)"
    )
    loss: Literal["mnrl", "cached_mnrl"] = Field(
        default="mnrl",
        description="'mnrl' (InfoNCE with in-batch negatives) or 'cached_mnrl' "
        "(the same loss with gradient caching, for large batches)",
    )
    mini_batch_size: int = Field(
        default=32, ge=1, description="rows per forward pass of cached_mnrl"
    )
    bf16: Literal["auto"] | bool = Field(
        default="auto", description="bfloat16 autocast: 'auto' = when the CPU or GPU supports it"
    )
    seed: int = Field(default=0, ge=0, description="seed of the batch order, dropout and LoRA init")
    checkpoint_every: int | None = Field(
        default=500, ge=1, description="save a resumable checkpoint every N steps (omit for none)"
    )
    keep_checkpoints: int = Field(default=2, ge=1, description="recent checkpoints kept")
    checkpoint_dir: str | None = Field(
        default=None,
        description="where checkpoints go (default OUT/checkpoints; "
        "removed once the model is saved)",
    )
    log_every: int = Field(default=10, ge=1, description="record the loss every N steps")

    @model_validator(mode="after")
    def _one_length(self) -> TrainConfig:
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        if self.lora_r is None and (self.lora_alpha is not None or self.lora_targets is not None):
            raise ValueError("lora_alpha / lora_targets need lora_r (LoRA is off without a rank)")
        return self

    @property
    def is_lora(self) -> bool:
        """True when the run trains a LoRA adapter instead of all weights."""
        return self.lora_r is not None

    def hyperparameters(self) -> dict[str, Scalar]:
        """The settings that shape the weights, as plain scalars (for metadata and cards)."""
        out: dict[str, Scalar] = {}
        for key, value in self.model_dump(exclude=BOOKKEEPING_FIELDS | {"base"}).items():
            out[key] = ",".join(value) if isinstance(value, tuple) else value
        if out["epochs"] is None and out["steps"] is None:
            out["epochs"] = 1.0
        return out


class TrainResult(_Frozen):
    """What one finished training run did; written as training_result.json beside the model."""

    out: str = Field(description="the model folder")
    run_id: str = Field(description="hash of settings and data fingerprint: same inputs, same id")
    adapter: Literal["full", "lora"] = Field(description="full weights or a LoRA adapter over base")
    steps: int = Field(ge=0, description="optimizer steps taken in all (resumed runs included)")
    examples_seen: int = Field(ge=0, description="training rows processed in all")
    wall_time_s: float = Field(ge=0, description="training seconds, summed over resumed segments")
    final_loss: float | None = Field(description="the last recorded training loss")
    loss_history: tuple[tuple[int, float], ...] = Field(
        description="(step, loss) every log_every steps"
    )
    resumed_from_step: int = Field(ge=0, description="checkpoint step this call began at")
    datasets: dict[str, int] = Field(description="rows per training dataset")
    hyperparameters: dict[str, Scalar] = Field(
        description="TrainConfig.hyperparameters() plus the bf16 actually used"
    )
    started_at: float = Field(description="unix time this call started training")
    finished_at: float = Field(description="unix time this call finished")
