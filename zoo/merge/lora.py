"""Fold peft LoRA adapters into their base exactly, tensor by tensor, while streaming.

For a targeted weight W:  W' = W + scale * (B @ A)  (transposed for fan_in_fan_out layers and for
embedding LoRA, as peft does), scale = lora_alpha / r, or lora_alpha / sqrt(r) with rsLoRA; r is
the adapter's rank for that module and lora_alpha honours alpha_pattern (peft's regex rule).
Trained biases (lora_bias) are added the same way; tensors saved whole (modules_to_save,
bias="all") replace the base's. No merged copy of a model is ever held: `LoraCheckpoint.read`
folds one tensor at a time. DoRA, trainable tokens, activated LoRA and conv LoRA are refused.
Opening an adapter reads its safetensors header only (no torch); torch comes with the first read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError
from zoo.merge.io import (
    Checkpoint,
    align_names,
    load_pickle,
    open_safetensors,
    read_json,
    safetensors_header,
)

if TYPE_CHECKING:
    import torch

ADAPTER_CONFIG = "adapter_config.json"
_PEFT_PREFIX = "base_model.model."
_LORA_KEY = re.compile(
    r"^(?P<module>.+)\.(?P<part>lora_A\.weight|lora_B\.weight|lora_B\.bias|"
    r"lora_embedding_A|lora_embedding_B)$"
)
_REFUSED = {
    "lora_magnitude_vector": "DoRA adapters (use_dora) are not supported",
    "token_adapter": "trainable-token adapters are not supported",
}


@dataclass(frozen=True)
class Fold:
    """How one base tensor changes: a low-rank update (A, B, scale) or a whole replacement."""

    a: str | None = None
    b: str | None = None
    scale: float = 1.0
    transpose: bool = False
    bias: str | None = None
    replace: str | None = None


def is_adapter(folder: Path) -> bool:
    """True when folder holds a peft adapter (adapter_config.json)."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def fold_lora(
    weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale: float, transpose: bool = False
) -> torch.Tensor:
    """Return weight + scale * (b @ a) (transposed when asked), computed in float32 or float64."""
    import torch  # tensors are torch's: torch is loaded already

    rows, cols = b.shape[0], a.shape[-1]
    if (
        a.dim() != 2
        or b.dim() != 2
        or a.shape[0] != b.shape[1]
        or tuple(weight.shape) != ((cols, rows) if transpose else (rows, cols))
    ):
        raise UserError(
            f"LoRA factors B{tuple(b.shape)} @ A{tuple(a.shape)} do not fit a weight "
            f"of shape {tuple(weight.shape)}"
        )
    dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
    delta = (b.to(dtype) @ a.to(dtype)) * scale
    delta = delta.T if transpose else delta
    return (weight.to(dtype) + delta).to(weight.dtype)


class LoraAdapter:
    """A peft LoRA adapter folder: its config and lazily read adapter tensors."""

    def __init__(self, folder: Path, label: str, *, allow_pickle: bool = False):
        self.folder = Path(folder)
        self.label = label
        self.config = read_json(self.folder / ADAPTER_CONFIG)
        _check_config(self.config, label)
        self._file, self._handle = _open_adapter(self.folder, label, allow_pickle)
        self._shapes = (
            {k: tuple(v.shape) for k, v in self._handle.items()}
            if isinstance(self._handle, dict)
            else {k: e.shape for k, e in safetensors_header(self._file, label).tensors.items()}
        )

    def read(self, key: str) -> torch.Tensor:
        """Return one adapter tensor (CPU); a safetensors file is opened on the first read."""
        if self._handle is None:
            self._handle = open_safetensors(self._file, self.label)
        if isinstance(self._handle, dict):
            return self._handle[key]
        return self._handle.get_tensor(key)

    def keys(self) -> list[str]:
        return sorted(self._shapes)

    def folds(self, base_names: list[str]) -> dict[str, Fold]:
        """Return {base tensor name: Fold} for every base tensor this adapter changes."""
        updates, replaced = self._parse_keys()
        self._check_declared(updates, replaced)
        targets = {f"{m}.weight": m for m in updates} | {n: n for n in replaced}
        mapping = align_names(targets, base_names, self.label)
        missing = sorted(set(targets) - set(mapping.values()))
        if missing:
            raise UserError(f"{self.label}: adapter targets {missing[0]!r}, which the base lacks")
        folds = {}
        for base_name, name in mapping.items():
            folds[base_name] = (
                Fold(replace=replaced[name])
                if name in replaced
                else self._fold(targets[name], updates[targets[name]])
            )
        bias_folds = self._bias_folds(updates, base_names)
        return dict(sorted((folds | bias_folds).items()))

    def _parse_keys(self) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        updates: dict[str, dict[str, str]] = {}
        replaced: dict[str, str] = {}
        for key in self.keys():
            inner = key[len(_PEFT_PREFIX) :] if key.startswith(_PEFT_PREFIX) else key
            for marker, why in _REFUSED.items():
                if marker in inner:
                    raise UserError(f"{self.label}: {why}")
            match = _LORA_KEY.match(inner)
            if match:
                updates.setdefault(match["module"], {})[match["part"]] = key
            else:
                # peft saves a LoRA layer's own bias (bias="lora_only"/"all") as base_layer.bias
                plain = re.sub(r"\.modules_to_save\.[^.]+\.", ".", inner)
                replaced[re.sub(r"\.base_layer\.(?=[^.]+$)", ".", plain)] = key
        return updates, replaced

    def _check_declared(self, updates: Mapping[str, Any], replaced: Mapping[str, str]) -> None:
        """Refuse weights the config does not account for (peft would not load them either)."""
        for module in updates:
            if not targeted(module, self.config):
                raise UserError(
                    f"{self.label}: adapter has LoRA weights for {module!r}, which "
                    "target_modules does not name"
                )
        saved = self.config.get("modules_to_save") or []
        biases = self.config.get("bias", "none") != "none"
        for name in replaced:
            module = name.rpartition(".")[0]
            if not (
                any(
                    module == m or module.endswith("." + m) or f".{m}." in f".{module}."
                    for m in saved
                )
                or (biases and name.endswith(".bias"))
            ):
                raise UserError(
                    f"{self.label}: adapter saves {name!r} whole, but neither "
                    "modules_to_save nor bias covers it"
                )

    def _fold(self, module: str, parts: Mapping[str, str]) -> Fold:
        embedding = "lora_embedding_A" in parts
        a_key = parts.get("lora_embedding_A" if embedding else "lora_A.weight")
        b_key = parts.get("lora_embedding_B" if embedding else "lora_B.weight")
        if a_key is None or b_key is None:
            raise UserError(f"{self.label}: LoRA module {module!r} lacks its A or B matrix")
        a_shape = self._handle_shape(a_key)
        if len(a_shape) != 2:
            raise UserError(f"{self.label}: LoRA on {module!r} is not a linear or embedding layer")
        transpose = embedding or bool(self.config.get("fan_in_fan_out"))
        return Fold(a=a_key, b=b_key, scale=self._scale(module, a_shape[0]), transpose=transpose)

    def _bias_folds(self, updates, base_names) -> dict[str, Fold]:
        biases = {
            f"{m}.bias": (m, p["lora_B.bias"]) for m, p in updates.items() if "lora_B.bias" in p
        }
        mapping = align_names(biases, base_names, self.label)
        if len(mapping) != len(biases):
            raise UserError(f"{self.label}: lora_bias needs a bias in the base layer")
        return {
            base: Fold(bias=biases[n][1], scale=self._scale(biases[n][0], None))
            for base, n in mapping.items()
        }

    def _scale(self, module: str, rank: int | None) -> float:
        if rank is None:  # lora_bias: same scaling as the module's A/B pair
            rank = self._handle_shape(self._a_key_of(module))[0]
        alpha = self.config.get("lora_alpha", 8)
        for pattern, value in (self.config.get("alpha_pattern") or {}).items():
            if re.match(rf"(.*\.)?({pattern})$", module):
                alpha = value
                break
        return alpha / math.sqrt(rank) if self.config.get("use_rslora") else alpha / rank

    def _a_key_of(self, module: str) -> str:
        for key in self.keys():
            if key.endswith(f"{module}.lora_A.weight"):
                return key
        raise UserError(f"{self.label}: LoRA module {module!r} lacks lora_A")

    def _handle_shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def apply(self, name: str, weight: torch.Tensor, fold: Fold) -> torch.Tensor:
        """Return the base tensor `name` with this adapter's change applied."""
        if fold.replace is not None:
            new = self.read(fold.replace)
            if new.shape != weight.shape:
                raise UserError(
                    f"{self.label}: saved module tensor {name!r} has shape "
                    f"{tuple(new.shape)}, the base has {tuple(weight.shape)}"
                )
            return new.to(weight.dtype)
        if fold.bias is not None:
            import torch  # tensors are torch's: torch is loaded already

            dtype = torch.float64 if weight.dtype == torch.float64 else torch.float32
            return (weight.to(dtype) + self.read(fold.bias).to(dtype) * fold.scale).to(weight.dtype)
        return fold_lora(weight, self.read(fold.a), self.read(fold.b), fold.scale, fold.transpose)


def targeted(module: str, config: Mapping[str, Any]) -> bool:
    """True when peft's target_modules/exclude_modules rules select module (name matching only)."""

    def matches(spec) -> bool:
        if spec is None:
            return False
        if isinstance(spec, str):
            return spec == "all-linear" or re.fullmatch(spec, module) is not None
        return any(module == t or module.endswith("." + t) for t in spec)

    targets = config.get("target_modules")
    return (targets is None or matches(targets)) and not matches(config.get("exclude_modules"))


def _check_config(config: Any, label: str) -> None:
    if not isinstance(config, dict) or config.get("peft_type", "LORA") != "LORA":
        raise UserError(
            f"{label}: only LoRA adapters can be folded, not "
            f"{config.get('peft_type') if isinstance(config, dict) else config!r}"
        )
    for key, why in (
        ("use_dora", "DoRA adapters (use_dora) are not supported"),
        ("alora_invocation_tokens", "activated LoRA (aLoRA) cannot be folded"),
        ("trainable_token_indices", "trainable-token adapters are not supported"),
        ("target_parameters", "LoRA on raw parameters (target_parameters) is not supported"),
        ("layer_replication", "layer_replication adapters are not supported"),
    ):
        if config.get(key):
            raise UserError(f"{label}: {why}")


def _open_adapter(folder: Path, label: str, allow_pickle: bool) -> tuple[Path, Any]:
    """(the weights file, its state dict when pickled, else None: read it on first use)."""
    safe = folder / "adapter_model.safetensors"
    if safe.is_file():
        return safe, None
    pickled = folder / "adapter_model.bin"
    if not pickled.is_file():
        raise UserError(
            f"{label}: {folder} has adapter_config.json but no adapter_model.safetensors"
        )
    if not allow_pickle:
        raise UserError(f"{label}: {pickled} is a pickle file; pass allow_pickle to read it")
    return pickled, load_pickle(pickled, label)


class LoraCheckpoint:
    """A base checkpoint seen through a LoRA adapter: reads fold the adapter in, tensor by tensor.

    Module weights saved whole in the adapter folder (e.g. an ST Dense head) are read from there.
    """

    def __init__(self, folder: Path, base: Checkpoint, label: str, *, allow_pickle: bool = False):
        self.path = Path(folder)
        self.label = label
        self.base = base
        self.adapter = LoraAdapter(folder, label, allow_pickle=allow_pickle)
        self.own = Checkpoint(folder, label, allow_pickle=allow_pickle, require_root=False)
        self.modules = self.own.modules if self.own.is_st else base.modules
        self.config = self.own.config or base.config
        root = {k: v for k, v in base.tensors.items() if "/" not in k}
        extra = {k: v for k, v in base.tensors.items() if "/" in k}
        self.tensors = root | (self.own.tensors if self.own.is_st else extra)
        self._folds = self.adapter.folds(sorted(root))

    @property
    def is_st(self) -> bool:
        return self.modules is not None

    @property
    def tokenizer_dir(self) -> Path:
        own = any(
            (self.path / f).is_file()
            for f in ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
        )
        return self.path if own else self.base.tokenizer_dir

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Return a tensor of the folded model (base tensor + this adapter's update)."""
        if key in self.own.tensors and self.own.is_st:
            return self.own.read(key, dtype)
        fold = self._folds.get(key)
        if fold is None:
            return self.base.read(key, dtype)
        tensor = self.adapter.apply(key, self.base.read(key), fold)
        return tensor if dtype is None else tensor.to(dtype)

    def can_read_rows(self, key: str) -> bool:
        """True for tensors this adapter leaves unchanged (folded ones are read whole)."""
        return (key in self.own.tensors and self.own.is_st) or key not in self._folds

    def read_rows(
        self,
        key: str,
        start: int,
        stop: int,
        dtype: torch.dtype | None = None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return rows start:stop of an unfolded tensor (see can_read_rows), into out if given."""
        if key in self.own.tensors and self.own.is_st:
            return self.own.read_rows(key, start, stop, dtype, out)
        if key in self._folds:
            raise ValueError(f"{key!r} is folded from a LoRA adapter; read it whole")
        return self.base.read_rows(key, start, stop, dtype, out)

    def close(self) -> None:
        self.own.close()
