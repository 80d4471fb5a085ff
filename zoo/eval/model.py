"""The model side of evaluation: loading, identity (the cache key), bf16 choice, ModelMeta stub.

A model is a local sentence-transformers folder or an already-loaded SentenceTransformer; Hub
models are pulled by the orchestration layer first. Identity is never a bare name: a pinned
40-hex revision, or else a sha256 of what determines the model's output.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from zoo.errors import UserError
from zoo.hashing import digest_sha256, folder_digest, skip_hidden
from zoo.safety import custom_code_error, refuse_pickles
from zoo.types import COMMIT_RE

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Bf16 = bool | Literal["auto"]
# Files that never change what a folder's model computes.
_IGNORED_FILES = {"README.md"}


@dataclass(frozen=True)
class ModelSpec:
    """What evaluate() was given, normalised: a display name, a revision label and an identity."""

    name: str
    revision: str | None
    identity: str
    folder: Path | None


def resolve_model(
    model: str | Path | SentenceTransformer, model_name: str | None, revision: str | None
) -> ModelSpec:
    """Name and identify a model without loading it (a folder is hashed, not read by torch).

    Identity is `rev:<name>@<sha>` when `revision` is a 40-hex commit (trusted to be immutable),
    else `sha256:<hex>` of the folder's files or of the loaded model's tensors and config.
    A branch or tag revision is kept as a label only: it can move, so it cannot key a cache.
    """
    if isinstance(model, (str, Path)):
        folder = Path(model)
        if not folder.is_dir():
            raise UserError(
                f"{model}: no such model folder (eval takes a local sentence-transformers "
                "folder; pull Hub models first with `zoo pull REPO_ID[@REV]`)"
            )
        name = model_name or folder.resolve().name
        content = None
    else:
        folder = None
        card = getattr(model, "model_card_data", None)
        name = model_name or getattr(card, "model_name", None) or "local-model"
        content = model
    if revision and COMMIT_RE.match(revision):
        identity = f"rev:{name}@{revision}"
    elif folder is not None:
        identity = "sha256:" + folder_identity(folder)
    else:
        identity = "sha256:" + loaded_identity(content)
    return ModelSpec(name, revision, identity, folder)


def folder_identity(folder: Path) -> str:
    """sha256 over (relative path, sha256) of every file but README.md and hidden paths.

    Weights, configs, tokenizer and module folders (1_Pooling/...) all change the output,
    so all are covered; a card edit does not invalidate cached scores.
    """
    digest = folder_digest(folder, skip=_skip_card_and_hidden)
    if not digest:
        raise UserError(f"{folder}: empty model folder")
    return digest_sha256(digest)


def _skip_card_and_hidden(rel: PurePosixPath) -> bool:
    return skip_hidden(rel) or rel.as_posix() in _IGNORED_FILES


def loaded_identity(model: SentenceTransformer) -> str:
    """sha256 over a loaded model's tensors (name, dtype, shape, bytes), modules and tokenizer."""
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(_module_configs(model), sort_keys=True, default=str).encode())
    h.update(_tokenizer_text(model).encode())
    return h.hexdigest()


def _module_configs(model: SentenceTransformer) -> dict[str, Any]:
    modules = [
        [type(m).__name__, m.get_config_dict() if hasattr(m, "get_config_dict") else None]
        for m in model
    ]
    return {
        "modules": modules,
        "max_seq_length": model.max_seq_length,
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": model.similarity_fn_name,
    }


def _tokenizer_text(model: SentenceTransformer) -> str:
    tok = getattr(model, "tokenizer", None)
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is not None:
        return backend.to_str()
    if tok is not None and hasattr(tok, "get_vocab"):
        return json.dumps(tok.get_vocab(), sort_keys=True)
    return ""


def load_model(spec: ModelSpec, device: str | None) -> SentenceTransformer:
    """Load the folder of `spec` with sentence-transformers, local files only (no network)."""
    from sentence_transformers import SentenceTransformer

    refuse_pickles(spec.folder, "evaluate")
    try:
        return SentenceTransformer(str(spec.folder), device=device, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if custom_code_error(exc):
            first = "it needs its own Python code, which zoo never runs (trust_remote_code)"
        raise UserError(
            f"{spec.folder}: not a loadable sentence-transformers model folder ({first})"
        ) from None


def bf16_enabled(setting: Bf16, device_type: str) -> bool:
    """Whether to run under bf16 autocast: True/False as given; "auto" = the hardware has bf16.

    On CPU "auto" means oneDNN reports native bf16 (AVX512-BF16 / AMX); elsewhere autocast
    would be emulated and slower than fp32.
    """
    if setting not in (True, False, "auto"):
        raise UserError(f"bf16 must be true, false or 'auto', got {setting!r}")
    if setting != "auto":
        return bool(setting)
    import torch

    if device_type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and _mkldnn_bf16())
    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def _mkldnn_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # older or stripped builds
        return False


def model_meta_stub(
    model: str | Path | SentenceTransformer,
    *,
    name: str,
    revision: str | None,
    training_datasets: tuple[str, ...] | list[str] | None = None,
    adapted_from: str | None = None,
) -> dict[str, Any]:
    """Return the ModelMeta fields mteb's results folders need, as plain JSON-ready data.

    Keys: name, revision, n_parameters, embed_dim, max_tokens, training_datasets (sorted list
    or None), adapted_from. Loads a folder model if given a path; does not mutate a loaded one.
    """
    loaded = model if not isinstance(model, (str, Path)) else None
    if loaded is None:
        loaded = load_model(resolve_model(model, name, revision), device="cpu")
    return {
        "name": name,
        "revision": revision,
        "n_parameters": int(sum(p.numel() for p in loaded.parameters())),
        "embed_dim": loaded.get_embedding_dimension(),
        "max_tokens": loaded.max_seq_length,
        "training_datasets": sorted(set(training_datasets)) if training_datasets else None,
        "adapted_from": adapted_from,
    }
