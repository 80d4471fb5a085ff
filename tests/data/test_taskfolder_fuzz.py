"""Property tests of validate_task_folder: any folder either validates or raises a one-line
UserError naming the offending file (and line, for a bad row); no other exception escapes."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import FUZZ, names, one_line_error, typo
from zoo.data.taskfolder import read_task_info, validate_task_folder
from zoo.errors import UserError

FOLDERS: dict[str, dict[str, list[dict]]] = {
    "retrieval": {
        "corpus.jsonl": [{"id": "d1", "text": "one"}, {"id": "d2", "text": "two"}],
        "queries.jsonl": [
            {"id": "q1", "text": "first", "pos": ["d1"]},
            {"id": "q2", "text": "second", "pos": ["d2", "d1"]},
        ],
        "train.jsonl": [{"query": "a", "pos": "b", "neg": ["c"]}, {"query": "x", "pos": ["y"]}],
    },
    "sts": {
        "test.jsonl": [{"s1": "a", "s2": "b", "score": 3.5}, {"s1": "c", "s2": "d", "score": 1}],
        "train.jsonl": [{"s1": "a", "s2": "b", "score": 0.5}],
    },
    "pair_classification": {
        "test.jsonl": [{"s1": "a", "s2": "b", "label": 1}, {"s1": "a", "s2": "c", "label": 0}],
        "train.jsonl": [{"s1": "a", "s2": "b", "label": 0}],
    },
    "classification": {
        "train.jsonl": [{"text": "a", "label": "x"}, {"text": "c", "label": "y"}],
        "test.jsonl": [{"text": "b", "label": 2}],
    },
    "clustering": {
        "test.jsonl": [{"text": "a", "label": "x"}],
        "train.jsonl": [{"text": "b", "label": "y"}],
    },
    "bitext_mining": {
        "test.jsonl": [{"s1": "a", "s2": "b"}],
        "train.jsonl": [{"query": "a", "pos": ["b"], "neg": []}],
    },
}
OPTIONAL_FIELDS = {"neg"}  # every other field of the rows above is required
INFO_REQUIRED = ("name", "type", "description")
RAW_YAML = [
    "1" * 5000,
    "2001-13-45",
    "!!timestamp 'x'",
    "!!int ''",
    "!!bool maybe",
    "[" * 600,
    "*nowhere",
    "'unterminated",
    "\t",
    "!!python/object:os.system 'ls'",
    "~",
    "[]",
    "{}",
]
# JSON lines that are no row: a huge integer, deep nesting, NaN, a BOM, two objects, bad syntax
RAW_LINES = [
    "1" * 5000,
    "[" * 100000,
    '{"id": NaN}',
    "\ufeff{}",
    '{"a": 1}{"b": 2}',
    "[]",
    "null",
    '"text"',
    "{",
    '{"id": "d1", "text": "one",}',
    "{'id': 'd1'}",
]
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=10)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
DIR = object()  # a file replaced by a directory of the same name


def _outcome(folder: Path) -> str | None:
    """Validate `folder`: None if valid, else its one-line UserError message."""
    return one_line_error(validate_task_folder, folder)


def _write(root: Path, task_yaml: bytes | None, files: dict[str, object]) -> Path:
    """Write folder T: task.yaml and the files (bytes; None leaves one out; DIR makes a folder)."""
    folder = root / "T"
    folder.mkdir(parents=True)
    for name, content in {"task.yaml": task_yaml, **files}.items():
        if content is DIR:
            (folder / name).mkdir()
        elif content is not None:
            (folder / name).write_bytes(content)
    return folder


def _info(kind: str) -> dict:
    return {"name": "T", "type": kind, "description": "d", "main_score": "m", "instruction": "i"}


def _lines(rows: list[dict]) -> list[bytes]:
    return [json.dumps(r, ensure_ascii=False).encode() for r in rows]


def _join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@st.composite
def _broken_info(draw, kind: str) -> tuple[bytes | None, tuple, bool]:
    """Return (task.yaml bytes, alternatives the error must name one of, whether it must fail)."""
    info = _info(kind)
    op = draw(
        st.sampled_from(["drop", "add", "replace", "rename", "raw", "text", "bytes", "missing"])
    )
    key = draw(st.sampled_from(sorted(info)))
    if op == "drop":
        del info[key]
        return yaml.safe_dump(info).encode(), (("task.yaml", key),), key in INFO_REQUIRED
    if op == "add":
        new = "zz" + draw(st.text(max_size=6))
        info[new] = draw(JSON_VALUES)
        return yaml.safe_dump(info, allow_unicode=True).encode(), (("task.yaml", new),), True
    if op == "rename":
        new = typo(key, draw)
        info[new] = info.pop(key)
        return yaml.safe_dump(info).encode(), (("task.yaml", key), ("task.yaml", new)), True
    if op == "replace":
        info[key] = draw(JSON_VALUES)
        return yaml.safe_dump(info, allow_unicode=True).encode(), (("task.yaml", key),), False
    if op == "missing":
        return None, (("task.yaml",),), True
    if op == "raw":
        info[key] = "ZZRAWZZ"
        text = yaml.safe_dump(info).replace("ZZRAWZZ", draw(st.sampled_from(RAW_YAML)))
        return text.encode(), (("task.yaml",),), False
    blob = draw(st.binary(max_size=40)) if op == "bytes" else draw(st.text(max_size=40)).encode()
    return blob, (("task.yaml",),), False


@st.composite
def _broken_row(draw, name: str, rows: list[dict]) -> tuple[bytes, tuple, bool]:
    """Return (file bytes with one row broken, alternatives to name, whether it must fail)."""
    lines, i = _lines(rows), draw(st.integers(0, len(rows) - 1))
    row, at = dict(rows[i]), f"{name}:{i + 1}:"
    op = draw(
        st.sampled_from(
            ["drop", "add", "replace", "rename", "truncate", "json", "raw", "text", "bytes"]
        )
    )
    key = draw(st.sampled_from(sorted(row)))
    needed = key not in OPTIONAL_FIELDS
    must_fail = op in ("truncate", "json", "raw") or (op in ("drop", "rename") and needed)
    if op == "drop":
        del row[key]
    elif op == "add":
        row["zz" + draw(st.text(max_size=6))] = draw(JSON_VALUES)
    elif op == "replace":
        row[key] = draw(JSON_VALUES)
    elif op == "rename":
        row[typo(key, draw)] = row.pop(key)
    lines[i] = json.dumps(row, ensure_ascii=False).encode()
    if op == "truncate":
        lines[i] = lines[i][: draw(st.integers(1, len(lines[i]) - 1))]
    elif op == "json":
        lines[i] = json.dumps(draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))).encode()
    elif op == "raw":
        lines[i] = draw(st.sampled_from(RAW_LINES)).encode()
    elif op == "text":  # any one line; a blank one drops the row (a problem elsewhere, or none)
        text = draw(st.text(max_size=30)).replace("\r", "").replace("\n", "")
        lines[i], must_fail = text.encode(), bool(text.strip())
    elif op == "bytes":
        blob = draw(st.binary(max_size=20)).replace(b"\n", b"").replace(b"\r", b"")
        lines[i] = blob + b"\xff"  # never valid UTF-8
        return _join(lines), ((name,),), True
    # a changed corpus id shows up as a query's positive that is no longer in the corpus
    cross = (("queries.jsonl:", "is not in corpus.jsonl"),) if name == "corpus.jsonl" else ()
    alternatives = ((at,), *cross) if op != "text" or must_fail else ((),)
    return _join(lines), alternatives, must_fail


@st.composite
def _broken_file(draw, kind: str, name: str) -> tuple[object, tuple, bool]:
    """Return (file content, alternatives to name, whether it must fail) for a whole-file defect."""
    required = name != "train.jsonl" or kind == "classification"
    op = draw(st.sampled_from(["missing", "empty", "blank", "dir", "bytes"]))
    content = {"missing": None, "empty": b"", "blank": b"\n  \n\t\n", "dir": DIR}.get(op)
    if op == "bytes":
        content = draw(st.binary(max_size=60))
    return content, ((name,),), required or op in ("empty", "blank", "dir")


@st.composite
def _broken_qrels(draw) -> tuple[dict, tuple, bool]:
    """Return (retrieval rows, alternatives to name, True): a duplicate id or a bad qrel."""
    files = copy.deepcopy(FOLDERS["retrieval"])
    op = draw(st.sampled_from(["dangling", "empty_pos", "dup_corpus", "dup_query"]))
    if op.startswith("dup"):
        name = "corpus.jsonl" if op == "dup_corpus" else "queries.jsonl"
        files[name][1]["id"] = files[name][0]["id"]
        return files, ((f"{name}:2:", "duplicate id"),), True
    i = draw(st.integers(0, 1))
    if op == "empty_pos":
        files["queries.jsonl"][i]["pos"] = []
        return files, ((f"queries.jsonl:{i + 1}:", "'pos'"),), True
    missing = "missing-" + draw(st.text(max_size=8))
    files["queries.jsonl"][i]["pos"][-1] = missing
    return files, ((f"queries.jsonl:{i + 1}:", missing),), True


@st.composite
def broken_folders(draw) -> tuple[bytes | None, dict, tuple, bool]:
    """Return (task.yaml, files, alternatives one of which the error must name, must it fail)."""
    kind = draw(st.sampled_from(sorted(FOLDERS)))
    files: dict[str, object] = {n: _join(_lines(rows)) for n, rows in FOLDERS[kind].items()}
    task_yaml = yaml.safe_dump(_info(kind)).encode()
    target = draw(st.sampled_from(["task.yaml", "qrels", *sorted(files)]))
    if target == "task.yaml":
        task_yaml, names, must_fail = draw(_broken_info(kind))
    elif target == "qrels":
        rows, names, must_fail = draw(_broken_qrels())
        task_yaml = yaml.safe_dump(_info("retrieval")).encode()
        files = {n: _join(_lines(r)) for n, r in rows.items()}
    elif draw(st.booleans()):
        files[target], names, must_fail = draw(_broken_row(target, FOLDERS[kind][target]))
    else:
        files[target], names, must_fail = draw(_broken_file(kind, target))
    return task_yaml, files, names, must_fail


@settings(FUZZ, max_examples=300)
@given(case=broken_folders())
def test_a_broken_folder_validates_or_names_the_file_and_line(case):
    task_yaml, files, alternatives, must_fail = case
    with tempfile.TemporaryDirectory() as tmp:
        message = _outcome(_write(Path(tmp), task_yaml, files))
    assert message is not None or not must_fail, f"accepted: {task_yaml!r} {files!r}"
    if message is not None:
        named = any(all(names(message, n) for n in alt) for alt in alternatives)
        assert named, (alternatives, message)


@pytest.mark.parametrize("kind", sorted(FOLDERS))
def test_every_valid_folder_validates(tmp_path, kind):
    files = {n: _join(_lines(rows)) for n, rows in FOLDERS[kind].items()}
    assert _outcome(_write(tmp_path, yaml.safe_dump(_info(kind)).encode(), files)) is None


@FUZZ
@given(value=JSON_VALUES, blob=st.binary(max_size=40))
def test_any_task_yaml_reads_or_is_one_user_error(value, blob):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        texts = [yaml.safe_dump(value, allow_unicode=True), json.dumps(value)]
        for content in [*(t.encode() for t in texts), blob]:
            (folder / "task.yaml").write_bytes(content)
            try:
                read_task_info(folder)
            except UserError as err:
                assert len(str(err).splitlines()) == 1 and "task.yaml" in str(err), str(err)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"s1": "a", "s2": "b", "score": math.nan}, "score"),
        ({"s1": "a", "s2": "b", "score": math.inf}, "score"),
        ({"s1": "a", "s2": "b", "label": True}, "label"),
    ],
)
def test_non_finite_scores_and_boolean_labels_are_refused(tmp_path, row, field):
    kind = "sts" if "score" in row else "pair_classification"
    files = {"test.jsonl": _join(_lines([row]))}
    message = _outcome(_write(tmp_path, yaml.safe_dump(_info(kind)).encode(), files))
    assert message is not None and f"test.jsonl:1: field '{field}'" in message, message


def test_every_raw_line_is_refused_naming_file_and_line(tmp_path):
    info = yaml.safe_dump(_info("bitext_mining")).encode()
    for i, line in enumerate(RAW_LINES):
        message = _outcome(_write(tmp_path / str(i), info, {"test.jsonl": line.encode() + b"\n"}))
        assert "test.jsonl:1:" in message, message


def test_every_raw_yaml_token_in_task_yaml_is_one_user_error(tmp_path):
    for i, token in enumerate(RAW_YAML):
        task_yaml = f"name: T\ntype: sts\ndescription: {token}\n".encode()
        message = _outcome(_write(tmp_path / str(i), task_yaml, {"test.jsonl": b"{}\n"}))
        assert "task.yaml" in message or "test.jsonl:1:" in message, message


def test_odd_folder_paths_are_one_user_error(tmp_path):
    for folder in [tmp_path / "missing", tmp_path / ("a" * 300), "nul\x00byte"]:
        assert "not a task folder" in _outcome(Path(folder))
    (tmp_path / "task.yaml").mkdir()
    assert "task.yaml" in _outcome(tmp_path)
