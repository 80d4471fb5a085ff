"""Refusals that keep zoo from running code it was handed: pickle-only weights are not loaded.

zoo never passes trust_remote_code (a test walks the source to keep it so); a model whose config
asks for custom code fails to load with a one-line error instead.
"""

from __future__ import annotations

from pathlib import Path

from zoo.errors import UserError

PICKLE_FILE, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
PICKLE_FILES = (PICKLE_FILE, PICKLE_INDEX)


def pickled_module(folder: Path) -> Path | None:
    """The first folder under `folder` whose weights exist only as a pickle, else None."""
    for marker in sorted(p for name in PICKLE_FILES for p in Path(folder).rglob(name)):
        module = marker.parent
        if (
            not any(module.glob("*.safetensors"))
            and not (module / "model.safetensors.index.json").is_file()
        ):
            return module
    return None


def refuse_pickles(folder: Path, what: str) -> None:
    """UserError when `folder` holds pickle-only weights (torch.load can run code)."""
    if (module := pickled_module(folder)) is not None:
        raise UserError(
            f"{what}: {module} has only pickle weights (pytorch_model.bin); zoo loads "
            "safetensors only here — convert them, or merge with --allow-pickle"
        )


def custom_code_error(exc: Exception) -> bool:
    """Whether a loading error is transformers refusing to run a model's own code."""
    return "trust_remote_code=True" in str(exc)
