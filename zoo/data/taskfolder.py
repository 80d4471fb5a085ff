"""Task folders: one folder per task, `task.yaml` plus JSON Lines files (see CLI-CONTRACT.md).

    retrieval            corpus.jsonl {id, text}; queries.jsonl {id, text, pos: [corpus ids]}
    sts                  test.jsonl {s1, s2, score}
    pair_classification  test.jsonl {s1, s2, label: 0|1}
    classification       train.jsonl and test.jsonl {text, label}
    clustering           test.jsonl {text, label}
    bitext_mining        test.jsonl {s1, s2}
    any type, optional   train.jsonl {query, pos, neg?} | {s1, s2, score|label} | {text, label}

`validate_task_folder` is the one checker used by the suite builder, the corpus loader and eval.
The types and the files each requires are zoo.tasks.TASK_TYPES; the row shapes are defined here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from zoo.data.jsonl import iter_jsonl
from zoo.errors import UserError
from zoo.schema import Strict, read_yaml
from zoo.tasks import TASK_TYPES, FolderType


class TaskInfo(Strict):
    """The contents of task.yaml."""

    name: str
    type: FolderType
    description: str
    main_score: str | None = None
    instruction: str | None = None


def _is_text(v: object) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_label(v: object) -> bool:
    return _is_text(v) or (isinstance(v, int) and not isinstance(v, bool))


def _is_binary(v: object) -> bool:
    return v in (0, 1) and not isinstance(v, (bool, float))


def _is_texts(v: object) -> bool:
    return _is_text(v) or (isinstance(v, list) and bool(v) and all(_is_text(x) for x in v))


def _is_opt_texts(v: object) -> bool:
    return isinstance(v, list) and all(_is_text(x) for x in v)


Check = Callable[[object], bool]
_TEXT = (_is_text, "a non-empty string")
_LABEL = (_is_label, "a string or integer label")
_SHAPES: dict[str, dict[str, tuple[Check, str]]] = {
    "doc": {"id": _TEXT, "text": _TEXT},
    "query": {"id": _TEXT, "text": _TEXT, "pos": (_is_opt_texts, "a list of corpus ids")},
    "sts": {"s1": _TEXT, "s2": _TEXT, "score": (_is_number, "a number")},
    "pair": {"s1": _TEXT, "s2": _TEXT, "label": (_is_binary, "0 or 1")},
    "labelled": {"text": _TEXT, "label": _LABEL},
    "bitext": {"s1": _TEXT, "s2": _TEXT},
    "retrieval_train": {"query": _TEXT, "pos": (_is_texts, "a string or a list of strings")},
}
_OPTIONAL = {"retrieval_train": {"neg": (_is_opt_texts, "a list of strings")}}


def read_task_info(folder: Path) -> TaskInfo:
    """Parse and check `folder/task.yaml`; raise UserError naming the file and field."""
    path = folder / "task.yaml"
    raw = read_yaml(path, str(path), missing="missing (every task folder needs a task.yaml)")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with name, type, description")
    try:
        return TaskInfo.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) if str(p).isprintable() else repr(p) for p in err["loc"])
        raise UserError(f"{path}: {field}: {err['msg']}") from None


def validate_task_folder(folder: str | Path) -> TaskInfo:
    """Check a task folder completely; return its TaskInfo or raise UserError naming file and line.

    Checks task.yaml, the files its type requires (present, non-empty, every line a JSON object
    with the right fields and value types), unique ids and that every retrieval qrel points to a
    corpus id, and the optional train.jsonl. Reads only; does not modify anything.
    """
    folder = Path(folder)
    if not _is_dir(folder):
        raise UserError(f"{folder}: not a task folder (no such directory)")
    info = read_task_info(folder)
    files = TASK_TYPES[info.type].files
    for name, shape in files.items():
        _check_file(folder / name, shape, required=True)
    if "train.jsonl" not in files:
        _check_file(folder / "train.jsonl", "train", required=False)
    if info.type == "retrieval":
        _check_qrels(folder)
    return info


def _is_dir(folder: Path) -> bool:
    try:
        return folder.is_dir()
    except OSError:  # e.g. a name too long: not a folder we can check
        return False


def _check_file(path: Path, shape: str, required: bool) -> int:
    """Check every line of one file against `shape`; return the number of rows."""
    if not path.exists():
        if required:
            raise UserError(f"{path}: missing (required for this task type)")
        return 0
    count = 0
    for lineno, obj in iter_jsonl(path):
        fields = _train_shape(obj) if shape == "train" else shape
        if fields is None:
            raise UserError(
                f"{path}:{lineno}: a training row needs query+pos, s1+s2+score|label or text+label"
            )
        _check_row(path, lineno, obj, fields)
        count += 1
    if count == 0:
        raise UserError(f"{path}: empty (needs at least one JSON line)")
    return count


def _train_shape(obj: dict) -> str | None:
    """Return which training-row shape `obj` has, or None."""
    if "query" in obj:
        return "retrieval_train"
    if "s1" in obj and "score" in obj:
        return "sts"
    if "s1" in obj and "label" in obj:
        return "pair"
    if "text" in obj:
        return "labelled"
    return None


def _check_row(path: Path, lineno: int, obj: dict, shape: str) -> None:
    """Raise UserError if `obj` lacks a field of `shape` or holds a value of the wrong type."""
    fields = {**_SHAPES[shape], **_OPTIONAL.get(shape, {})}
    for key, (check, expected) in fields.items():
        if key not in obj:
            if key in _SHAPES[shape]:
                raise UserError(f"{path}:{lineno}: missing field {key!r}")
            continue
        if not check(obj[key]):
            raise UserError(f"{path}:{lineno}: field {key!r} must be {expected}")


def _check_qrels(folder: Path) -> None:
    """Check unique ids and that every query has positives that exist in the corpus."""
    corpus_ids: set[str] = set()
    corpus = folder / "corpus.jsonl"
    for lineno, obj in iter_jsonl(corpus):
        if obj["id"] in corpus_ids:
            raise UserError(f"{corpus}:{lineno}: duplicate id {obj['id']!r}")
        corpus_ids.add(obj["id"])
    query_ids: set[str] = set()
    queries = folder / "queries.jsonl"
    for lineno, obj in iter_jsonl(queries):
        if obj["id"] in query_ids:
            raise UserError(f"{queries}:{lineno}: duplicate id {obj['id']!r}")
        query_ids.add(obj["id"])
        if not obj["pos"]:
            raise UserError(f"{queries}:{lineno}: field 'pos' is empty (needs at least one id)")
        for doc_id in obj["pos"]:
            if doc_id not in corpus_ids:
                raise UserError(f"{queries}:{lineno}: pos id {doc_id!r} is not in corpus.jsonl")
