"""Read local checkpoints lazily, tensor by tensor, and map their tensor names onto each other.

A `Checkpoint` is a sentence-transformers folder (modules.json + module folders) or a plain
Hugging Face folder. Weights are memory-mapped safetensors, single-file or sharded with an
index; pickle-only folders are refused unless allow_pickle, then read with
`torch.load(weights_only=True, mmap=True)`. Tensor keys are the file's names for the root module
and "<module dir>/<name>" for other modules (e.g. "2_Dense/linear.weight").

Opening a safetensors checkpoint reads its headers only (zoo.merge.header) and imports no torch,
so a merge is planned without it; torch is imported where a tensor is read.
"""

from __future__ import annotations

import json
import mmap
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UserError
from zoo.merge.dtypes import TORCH_NAMES, name_of, to_torch
from zoo.merge.header import Header, read_header
from zoo.safety import PICKLE_FILE, PICKLE_INDEX

if TYPE_CHECKING:
    import torch

SAFE_INDEX = "model.safetensors.index.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx")
# Prefixes that head-carrying or wrapped checkpoints put before the backbone's own names.
KNOWN_PREFIXES = (
    "bert.",
    "roberta.",
    "distilbert.",
    "xlm_roberta.",
    "model.",
    "transformer.",
    "gpt_neox.",
    "base_model.model.",
    "0.auto_model.",
)


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives and what it looks like, known from file headers only."""

    shape: tuple[int, ...]
    dtype_name: str  # safetensors' name ("BF16"): zoo.merge.dtypes
    file: Path
    key: str

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype (imports torch: for reading the tensor)."""
        return to_torch(self.dtype_name)


def read_json(path: Path) -> Any:
    """Return parsed JSON; raise UserError naming the file when it is unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path}: {_first_line(err)}") from None


def st_modules(folder: Path) -> list[dict] | None:
    """Return modules.json's entries, or None for a plain Hugging Face folder."""
    path = folder / "modules.json"
    if not path.is_file():
        return None
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise UserError(f"{path} is not a list of modules")
    return modules


class Checkpoint:
    """A local model folder opened for lazy reading; call close() (or use `with`) when done.

    Opening reads headers only. Nothing is ever written to the folder.
    """

    def __init__(
        self, path: Path, label: str, *, allow_pickle: bool = False, require_root: bool = True
    ):
        self.path = Path(path)
        self.label = label
        if not self.path.is_dir():
            raise UserError(f"{label}: {self.path} is not a folder")
        self.modules = st_modules(self.path)
        self.config = self._config()
        self.tensors: dict[str, TensorInfo] = {}
        self._handles: dict[Path, Any] = {}  # pickled state dicts (memory-mapped by torch)
        self._maps: dict[Path, MappedFile] = {}  # safetensors files
        self._described: dict[Path, dict] = {}
        self._allow_pickle = allow_pickle
        self._require_root = require_root
        try:
            self._index_modules()
        except BaseException:
            self.close()
            raise

    @property
    def is_st(self) -> bool:
        return self.modules is not None

    @property
    def tokenizer_dir(self) -> Path:
        return self.path

    def module_dirs(self) -> list[str]:
        """Return module folders that may hold weights: "" (the transformer) first."""
        dirs = [""] + [m.get("path", "") for m in self.modules or []]
        return list(dict.fromkeys(d.strip("/") for d in dirs))

    def read(self, key: str, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Return the tensor stored under key, on the CPU, as a fresh tensor in `dtype` (default:
        as stored). Safetensors files are read through a memory map in one pass (the copy is
        the conversion) and the pages read are unmapped right after, so they do not stay
        resident in this process."""
        info = self.tensors[key]
        rows = info.shape[0] if info.shape else 1
        return self._read(info, 0, rows, dtype)

    def read_rows(
        self,
        key: str,
        start: int,
        stop: int,
        dtype: torch.dtype | None = None,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return rows start:stop (axis 0) of the tensor under key, reading only those rows;
        into `out` (converted on the way) when given."""
        return self._read(self.tensors[key], start, stop, dtype, out)

    def _read(self, info: TensorInfo, start: int, stop: int, dtype, out=None) -> torch.Tensor:
        handle = self._handles.get(info.file)
        try:
            if isinstance(handle, dict):
                tensor = handle[info.key]
                tensor = tensor[start:stop] if tensor.dim() else tensor
                return tensor.to(dtype or tensor.dtype) if out is None else out.copy_(tensor)
            return self._maps[info.file].read(info, start, stop, dtype or info.dtype, out)
        except (ValueError, RuntimeError, OSError) as err:
            raise UserError(
                f"{self.label}: cannot read rows {start}:{stop} of {info.key!r} from "
                f"{info.file}: {_first_line(err)}"
            ) from None

    def can_read_rows(self, key: str) -> bool:
        """True: every tensor of a plain checkpoint can be read a row slice at a time."""
        return True

    def close(self) -> None:
        """Release pickled state dicts and unmap safetensors files."""
        self._handles.clear()
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _config(self) -> dict | None:
        path = self.path / "config.json"
        return read_json(path) if path.is_file() else None

    def _index_modules(self) -> None:
        for module in self.module_dirs():
            files = weight_files(self.path / module, self._allow_pickle, self.label)
            if files is None:
                if module == "" and self._require_root:
                    raise UserError(
                        f"{self.label}: no weights in {self.path} (expected "
                        "model.safetensors, a sharded index or pytorch_model.bin)"
                    )
                continue
            for file, keys in files.items():
                self._index_file(file, keys, module)

    def _index_file(self, file: Path, keys: list[str] | None, module: str) -> None:
        prefix = f"{module}/" if module else ""
        for key, (shape, dtype) in self._open(file).items():
            if keys is None or key in keys:
                self.tensors[prefix + key] = TensorInfo(shape, dtype, file, key)
        missing = sorted(set(keys or ()) - set(self._open(file)))
        if missing:
            raise UserError(f"{self.label}: {file.name} lacks {missing[0]!r} listed in its index")

    def _open(self, file: Path) -> dict[str, tuple[tuple[int, ...], str]]:
        if file in self._described:
            return self._described[file]
        if file.suffix == ".safetensors":
            self._maps[file] = MappedFile(file, self.label)  # checks the header
            described = describe_header(self._maps[file].header, file, self.label)
        else:
            self._handles[file] = load_pickle(file, self.label)
            described = describe(self._handles[file], file, self.label)
        self._described[file] = described
        return described


class MappedFile:
    """A safetensors file mapped read-only; reads copy (and convert) a row range in one pass,
    then drop the pages they touched from this process (they stay in the page cache). A read
    into a buffer of the stored dtype is a pread instead (no pages mapped at all).
    Safe to read from several threads."""

    def __init__(self, file: Path, label: str):
        self.header = safetensors_header(file, label)
        with open(file, "rb") as f:
            try:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                self._fd = os.dup(f.fileno())
            except (ValueError, OSError) as err:
                raise UserError(f"{label}: cannot map {file}: {_first_line(err)}") from None
        self._start = self.header.data_start
        self._offsets = {k: e.begin for k, e in self.header.tensors.items()}

    def read(
        self,
        info: TensorInfo,
        start: int,
        stop: int,
        dtype: torch.dtype,
        out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return rows start:stop of info's tensor (the whole tensor when 0-d) in dtype, or
        copied into out (its dtype) in the same one pass."""
        import torch

        row = 1
        for dim in info.shape[1:]:
            row *= dim
        shape = (stop - start, *info.shape[1:]) if info.shape else ()
        count = row * (stop - start)
        if count == 0:
            return torch.empty(shape, dtype=dtype) if out is None else out
        begin = self._start + self._offsets[info.key] + start * row * info.dtype.itemsize
        if out is not None and out.dtype == info.dtype and out.is_contiguous() and out.is_cpu:
            return self._pread(out, begin, count * info.dtype.itemsize)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns that the buffer is read-only
            raw = torch.frombuffer(self._map, dtype=info.dtype, count=count, offset=begin)
        if out is None:
            out = raw.to(dtype, copy=True).view(shape)
        else:
            out.copy_(raw.view(shape))
        del raw
        self._release(begin, count * info.dtype.itemsize)
        return out

    def _pread(self, out: torch.Tensor, begin: int, size: int) -> torch.Tensor:
        """Copy the stored bytes straight into out with pread: a copy from the page cache,
        without faulting the mapping in (twice as fast as copying from the map, measured)."""
        import torch

        view = memoryview(out.view(torch.uint8).numpy()).cast("B")
        done = 0
        while done < size:
            got = os.preadv(self._fd, [view[done:size]], begin + done)
            if got <= 0:
                raise OSError(f"unexpected end of file at byte {begin + done}")
            done += got
        return out

    def _release(self, begin: int, size: int) -> None:
        page = mmap.PAGESIZE
        first = -(-begin // page) * page
        last = (begin + size) // page * page
        if last > first:
            self._map.madvise(mmap.MADV_DONTNEED, first, last - first)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            self._map.close()
        except BufferError:  # a view is still alive somewhere; the GC unmaps it
            pass


def weight_files(
    folder: Path, allow_pickle: bool, label: str
) -> dict[Path, list[str] | None] | None:
    """Return {file: keys it should hold (None = all)} for a module folder, or None if it has none.

    Prefers safetensors; pickle files are refused unless allow_pickle.
    """
    if (folder / SAFE_INDEX).is_file():
        return _from_index(folder, SAFE_INDEX)
    if (folder / "model.safetensors").is_file():
        return {folder / "model.safetensors": None}
    pickled = (folder / PICKLE_INDEX).is_file() or (folder / PICKLE_FILE).is_file()
    if not pickled:
        return None
    if not allow_pickle:
        raise UserError(
            f"{label}: {folder} has only pickle weights (pytorch_model.bin); convert "
            "them to safetensors or pass allow_pickle (read with weights_only=True)"
        )
    if (folder / PICKLE_INDEX).is_file():
        return _from_index(folder, PICKLE_INDEX)
    return {folder / PICKLE_FILE: None}


def _from_index(folder: Path, index_name: str) -> dict[Path, list[str]]:
    index = read_json(folder / index_name)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{folder / index_name} has no weight_map")
    files: dict[Path, list[str]] = {}
    for key, name in sorted(weight_map.items()):
        path = folder / str(name)
        if path.parent != folder or not path.is_file():
            raise UserError(f"{folder / index_name} names a missing shard {name!r}")
        files.setdefault(path, []).append(key)
    return files


def safetensors_header(file: Path, label: str) -> Header:
    """Return the checked header of a safetensors file (zoo.merge.header; no torch); raise
    UserError naming the file when it is not a valid one."""
    try:
        with open(file, "rb") as f:
            return read_header(f, os.fstat(f.fileno()).st_size)
    except (ValueError, OSError) as err:
        raise UserError(f"{label}: corrupt safetensors file {file}: {_first_line(err)}") from None


def describe_header(
    header: Header, file: Path, label: str
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Return {key: (shape, dtype name)} of a header; raise UserError for a dtype zoo cannot
    merge."""
    out = {}
    for key, entry in header.tensors.items():
        if entry.dtype not in TORCH_NAMES:
            raise UserError(
                f"{label}: {file} stores {key!r} as {entry.dtype}, which zoo cannot merge"
            )
        out[key] = (entry.shape, entry.dtype)
    return out


def open_safetensors(file: Path, label: str) -> Any:
    """Return a safe_open handle (memory-mapped, for reading tensors: imports torch); raise
    UserError for a corrupt file."""
    from safetensors import safe_open

    try:
        return safe_open(str(file), framework="pt", device="cpu")
    except Exception as err:  # SafetensorError and OSError alike
        raise UserError(f"{label}: corrupt safetensors file {file}: {_first_line(err)}") from None


def load_pickle(file: Path, label: str) -> dict[str, torch.Tensor]:
    """Return a pickled state dict loaded with weights_only=True (memory-mapped when possible)."""
    import torch

    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) format cannot be memory-mapped
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"{label}: cannot load {file} safely: {_first_line(err)}") from None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise UserError(f"{label}: {file} is not a state dict of tensors")
    return dict(state)


def read_tensor(file: Path, key: str, label: str) -> torch.Tensor:
    """Return one tensor of a safetensors file, mapping the file only for this read."""
    with open_safetensors(file, label) as handle:
        return handle.get_tensor(key)


def describe(
    state: Mapping[str, Any], file: Path, label: str
) -> dict[str, tuple[tuple[int, ...], str]]:
    """Return {key: (shape, dtype name)} of a loaded state dict; raise UserError for a dtype zoo
    cannot merge."""
    out = {}
    for key, tensor in state.items():
        try:
            out[key] = (tuple(tensor.shape), name_of(tensor.dtype))
        except ValueError:
            raise UserError(
                f"{label}: {file} stores {key!r} as {tensor.dtype}, which zoo cannot merge"
            ) from None
    return out


def align_names(source: Iterable[str], reference: Iterable[str], label: str) -> dict[str, str]:
    """Map a source's root tensor names onto reference names, with or without known prefixes.

    Returns {reference name: source name}; names with no counterpart are left out. Raises
    UserError when two source names claim the same reference name.
    """
    ref = set(reference)
    mapping: dict[str, str] = {}
    for name in sorted(source):
        target = _counterpart(name, ref)
        if target is None:
            continue
        if target in mapping:
            raise UserError(f"{label}: both {mapping[target]!r} and {name!r} map onto {target!r}")
        mapping[target] = name
    return mapping


def _counterpart(name: str, ref: set[str]) -> str | None:
    if "/" in name or name in ref:
        return name if name in ref else None
    for prefix in KNOWN_PREFIXES:
        if name.startswith(prefix) and name[len(prefix) :] in ref:
            return name[len(prefix) :]
        if prefix + name in ref:
            return prefix + name
    return None


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


def first_nonfinite(folder: Path) -> str | None:
    """'file: tensor' of the first floating tensor under folder holding NaN or Inf, else None."""
    import torch
    from safetensors import safe_open

    for path in sorted(Path(folder).rglob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for name in f.keys():
                t = f.get_tensor(name)
                if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                    return f"{path.relative_to(folder).as_posix()}: {name}"
    return None
