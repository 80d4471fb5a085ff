"""Assemble the output folder: a complete sentence-transformers (or plain HF) model.

Everything except the weights is copied from the donor (the base, else the first model):
modules.json, module configs (Pooling, Dense, Normalize, ...), sentence_bert_config.json,
config_sentence_transformers.json, config.json and tokenizer files. The donor's README.md is
left out (it describes the donor, not the merge). Output is built in a temporary folder next to
`out` and renamed into place at the end, so a failure leaves nothing behind; the folder left by a
killed merge (its owner process is gone) is removed by the next merge into the same `out`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zoo.errors import UserError, disk_full
from zoo.hashing import folder_digest, skip_nothing
from zoo.merge.dtypes import TORCH_NAMES, name_of
from zoo.merge.io import WEIGHT_SUFFIXES, read_json
from zoo.merge.lora import LoraCheckpoint
from zoo.merge.tokenizer_files import write_chat_template, write_tokenizer
from zoo.merge.vocab import TOKENIZER_FILES, VocabPlan

_SKIP = {"README.md", "adapter_config.json", "mergekit_config.yml"}
_ST_FILES = {"modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"}
_OWNER = ".zoo-owner"  # in a temporary output folder: the pid of the merge building it


def start_output(out: Path) -> Path:
    """Refuse an existing non-empty `out`; return a fresh temporary folder in its parent."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"output {out} already exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.zoo-tmp-", dir=out.parent))
    (tmp / _OWNER).write_text(str(os.getpid()))
    return tmp


@contextlib.contextmanager
def building(out: Path) -> Iterator[Path]:
    """A temporary folder to build `out` in, discarded on any failure (disk full: one clear
    error)."""
    tmp = start_output(out)
    try:
        yield tmp
    except BaseException as exc:
        discard(tmp)
        if isinstance(exc, OSError) and (full := disk_full(exc, out)):
            raise full from None
        raise


def _remove_orphans(out: Path) -> None:
    """Delete temporary folders for `out` whose merge process no longer exists (killed)."""
    for tmp in out.parent.glob(f".{out.name}.zoo-tmp-*"):
        try:
            pid = int((tmp / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # being created right now, or not ours
        if not _alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def discard(tmp: Path) -> None:
    """Remove a temporary output folder (after a failure)."""
    shutil.rmtree(tmp, ignore_errors=True)


def finish(tmp: Path, out: Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """Move the finished folder into place and return {relative path: sha256} of its files;
    `known` hashes (taken while writing) are trusted, the other files are read."""
    out = Path(out)
    (tmp / _OWNER).unlink(missing_ok=True)
    if out.is_dir():
        out.rmdir()  # empty, checked by start_output
    os.replace(tmp, out)
    return file_hashes(out, known)


def file_hashes(folder: Path, known: dict[str, str] | None = None) -> dict[str, str]:
    """Return {relative posix path: sha256 hex} for every file under folder, sorted (zoo wrote
    them all, so none is skipped); `known` hashes are trusted instead of reading those files."""
    return folder_digest(Path(folder), skip=skip_nothing, known=known)


def support_files(folder: Path, module_dirs: list[str]) -> dict[str, Path]:
    """Return {relative path: file} of a model folder's non-weight files (root + module folders)."""
    files = {}
    for module in module_dirs:
        base = folder / module
        if not base.is_dir():
            continue
        entries = base.iterdir() if module == "" else base.rglob("*")
        for path in sorted(entries):
            rel = path.relative_to(folder)
            if path.is_file() and _keep(path, rel):
                files[rel.as_posix()] = path
    return files


def _keep(path: Path, rel: Path) -> bool:
    name = path.name
    if any(part.startswith(".") for part in rel.parts) or name in _SKIP:
        return False
    if name.startswith("adapter_model.") or name.endswith(".index.json") and "model" in name:
        return False
    return not name.endswith(WEIGHT_SUFFIXES)


def copy_files(files: dict[str, Path], tmp: Path) -> None:
    """Copy support files into the output folder, creating module folders as needed."""
    for rel, src in files.items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def tokenizer_files(folder: Path) -> dict[str, Path]:
    """Return the tokenizer files present in folder (top level), by name."""
    return {name: folder / name for name in TOKENIZER_FILES if (folder / name).is_file()}


def update_config(tmp: Path, *, dtype: Any, vocab_rows: int | None) -> None:
    """Record the output dtype (a safetensors name or a torch.dtype) and vocabulary size in
    config.json, when they changed."""
    if dtype is None and vocab_rows is None:
        return

    def change(config: dict[str, Any]) -> dict[str, Any]:
        if dtype is not None:
            name = TORCH_NAMES[name_of(dtype)]
            for key in ("dtype", "torch_dtype"):
                if key in config or key == "dtype":
                    config[key] = name
        if vocab_rows is not None and "vocab_size" in config:
            config["vocab_size"] = vocab_rows
        return config

    rewrite_config(tmp, change)


def rewrite_config(tmp: Path, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Replace tmp's config.json by change(config) (nothing when there is none)."""
    path = tmp / "config.json"
    if path.is_file():
        config = change(read_json(path))
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def assemble(
    tmp: Path,
    donor: Any,
    vocab: VocabPlan | None,
    dtype: Any,
    chat_template: str | None = None,
) -> None:
    """Copy the donor's non-weight files into tmp (the tokenizer from vocab's source when a
    tokenizer setting built the vocabulary, rewritten for it), write the chat template, and
    update config.json's dtype and vocabulary size."""
    files = donor_files(donor)
    if vocab is not None:
        theirs = tokenizer_files(donor.tokenizer_dir)
        files = {k: v for k, v in files.items() if k not in theirs}
        files.update(tokenizer_files(vocab.tokenizer_dir))
    copy_files(files, tmp)
    if vocab is not None:
        write_tokenizer(vocab, tmp)
    if chat_template is not None:
        write_chat_template(tmp, chat_template)
    update_config(tmp, dtype=dtype, vocab_rows=vocab.rows if vocab else None)


def donor_files(donor: Any) -> dict[str, Path]:
    """Return the donor's non-weight files; an adapter folder is completed from its base."""
    if not isinstance(donor, LoraCheckpoint):
        return support_files(donor.path, donor.module_dirs())
    base = donor.base
    files = support_files(base.path, base.module_dirs())
    if donor.own.is_st:  # an ST adapter folder carries its own module configs
        files = {k: v for k, v in files.items() if "/" not in k and k not in _ST_FILES}
        files |= support_files(donor.path, donor.own.module_dirs())
    return files | tokenizer_files(donor.tokenizer_dir)
