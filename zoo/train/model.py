"""Build what a run trains: the model (full or with a LoRA adapter), its loss, its precision."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.safety import custom_code_error, refuse_pickles
from zoo.train.config import TrainConfig

# CPU features under which torch's bf16 autocast runs on native instructions (x86 and Arm).
_CPU_BF16_FEATURES = ("amx_bf16", "avx512_bf16", "bf16", "sve_bf16")


def resolve_bf16(setting: str | bool) -> bool:
    """The bf16 decision for this machine: a bool is kept; 'auto' asks the GPU, else the CPU."""
    if setting != "auto":
        return bool(setting)
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    caps = getattr(torch.cpu, "get_capabilities", None)
    return bool(caps and any(caps().get(name) for name in _CPU_BF16_FEATURES))


def load_model(config: TrainConfig) -> Any:
    """Load the base model and, for LoRA runs, add a fresh adapter; return the SentenceTransformer.

    The base path is made absolute, so a saved adapter names a base that loads from any directory.
    Reads only local files. The LoRA initialisation draws from torch's RNG: seed it first.
    """
    from sentence_transformers import SentenceTransformer

    base = Path(config.base).expanduser()
    if not (base / "modules.json").is_file() and not (base / "config.json").is_file():
        raise UserError(
            f"base model {config.base!r} is not a local model folder "
            "(pull it first, e.g. `zoo pull REPO_ID`)"
        )
    refuse_pickles(base, "base model")
    try:
        model = SentenceTransformer(str(base.resolve()), device=_device())
    except ValueError as exc:
        if not custom_code_error(exc):
            raise
        raise UserError(
            f"base model {config.base!r} needs its own Python code, which zoo never "
            "runs (trust_remote_code)"
        ) from None
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    if config.is_lora:
        model.add_adapter(_lora_config(config))
    return model


def _device() -> str:
    """Where one process trains: its GPU under `accelerate launch`, else the first GPU or CPU."""
    from accelerate import PartialState

    return str(PartialState().device)


def _lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig, TaskType

    targets: Any = config.lora_targets
    if targets == ("all-linear",):
        targets = "all-linear"
    return LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=config.lora_r,
        lora_alpha=config.lora_alpha or config.lora_r,
        lora_dropout=config.lora_dropout,
        target_modules=list(targets) if isinstance(targets, tuple) else targets,
    )


def make_loss(
    model: Any,
    config: TrainConfig,
    own_candidates: frozenset[str] = frozenset(),
    names: Iterable[str] = (),
) -> Any:
    """InfoNCE over in-batch negatives (plus the hard negative columns when present), scaled.

    Datasets in own_candidates get OwnCandidatesLoss instead (no in-batch negatives); then the
    result is a {dataset name: loss} dict, which the trainer applies per batch.
    """
    shared = _contrastive(model, config)
    if not own_candidates:
        return shared
    from zoo.train.losses import OwnCandidatesLoss

    own = OwnCandidatesLoss(model, scale=config.scale)
    return {name: own if name in own_candidates else shared for name in names}


def _contrastive(model: Any, config: TrainConfig) -> Any:
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if config.loss == "cached_mnrl":
        return CachedMultipleNegativesRankingLoss(
            model, scale=config.scale, mini_batch_size=config.mini_batch_size
        )
    return MultipleNegativesRankingLoss(model, scale=config.scale)
