"""Corpus spec and loader: each task type converts as documented; bad input names its field."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from zoo.data.corpus import load_corpus
from zoo.data.spec import load_corpus_spec, parse_corpus_spec
from zoo.errors import UserError

SHA = "a" * 40


def _write(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path.name


def _load(tmp_path, datasets, resolve=None, **top):
    (tmp_path / "corpus.yaml").write_text(yaml.safe_dump({"datasets": datasets, **top}))
    return load_corpus(load_corpus_spec(tmp_path / "corpus.yaml"), resolve=resolve)


def test_retrieval_keeps_rows_and_accepts_string_or_list(tmp_path):
    f = _write(
        tmp_path / "r.jsonl", [{"q": "a", "pos": "b"}, {"q": "c", "pos": ["d", "e"], "neg": ["f"]}]
    )
    ds = _load(
        tmp_path,
        [
            {
                "name": "r",
                "type": "retrieval",
                "source": {"path": f},
                "columns": {"query": "q"},
                "instruction": "Find it",
            }
        ],
    )["r"]
    assert ds.data.to_list() == [
        {"query": "a", "pos": ["b"], "neg": [], "label": "", "group": "r"},
        {"query": "c", "pos": ["d", "e"], "neg": ["f"], "label": "", "group": "r"},
    ]
    assert ds.in_batch_negatives and ds.instruction == "Find it" and ds.dropped == 0
    assert ds.data._fingerprint == ds.fingerprint and len(ds.fingerprint) == 64


def test_sts_high_scores_are_positives_and_low_partners_negatives(tmp_path):
    rows = [
        {"s1": "x", "s2": "close", "score": 4.6},
        {"s1": "x", "s2": "far", "score": 1.0},
        {"s1": "y", "s2": "mid", "score": 3.0},
        {"s1": "y", "s2": "same", "score": 5},
    ]
    ds = _load(
        tmp_path,
        [{"name": "s", "type": "sts", "source": {"path": _write(tmp_path / "s.jsonl", rows)}}],
    )["s"]
    # threshold = 0.8 * 5 = 4.0
    assert [(r["query"], r["pos"], r["neg"]) for r in ds.data] == [
        ("x", ["close"], ["far"]),
        ("y", ["same"], ["mid"]),
    ]
    assert ds.dropped == 2 and ds.in_batch_negatives


def test_pair_label_one_is_positive_label_zero_is_negative(tmp_path):
    rows = [
        {"a": "x", "b": "yes", "l": 1},
        {"a": "x", "b": "no", "l": 0},
        {"a": "z", "b": "no2", "l": 0},
    ]
    ds = _load(
        tmp_path,
        [
            {
                "name": "p",
                "type": "pair",
                "source": {"path": _write(tmp_path / "p.jsonl", rows)},
                "columns": {"s1": "a", "s2": "b", "label": "l"},
            }
        ],
    )["p"]
    assert [(r["query"], r["pos"], r["neg"]) for r in ds.data] == [("x", ["yes"], ["no"])]


@pytest.mark.parametrize("kind", ["classification", "clustering"])
def test_labelled_rows_become_same_label_positive_other_label_negatives(tmp_path, kind):
    rows = [{"text": f"{lab}{i}", "label": lab} for i in range(6) for lab in ("a", "b", "c")]
    rows.append({"text": "lonely", "label": "d"})  # a label with one member: dropped
    src = {"path": _write(tmp_path / "c.jsonl", rows)}
    corpus = _load(tmp_path, [{"name": "c", "type": kind, "source": src, "negatives": 3}])
    ds = corpus["c"]
    label_of = {r["text"]: r["label"] for r in rows}
    assert len(ds) == 18 and ds.dropped == 1 and not ds.in_batch_negatives
    for ex in ds.data:
        assert ex["label"] == label_of[ex["query"]] and ex["group"] == "c"
        assert ex["pos"][0] != ex["query"] and label_of[ex["pos"][0]] == ex["label"]
        assert len(ex["neg"]) == 3 and len(set(ex["neg"])) == 3
        assert all(label_of[n] != ex["label"] for n in ex["neg"])
    again = _load(tmp_path, [{"name": "c", "type": kind, "source": src, "negatives": 3}])["c"]
    assert again.data.to_list() == ds.data.to_list() and again.fingerprint == ds.fingerprint


def test_parquet_task_folder_cap_and_hub_sources(tmp_path):
    pq.write_table(
        pa.Table.from_pylist([{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(5)]),
        tmp_path / "r.parquet",
    )
    folder = tmp_path / "task"
    folder.mkdir()
    _write(folder / "train.jsonl", [{"text": t, "label": t[0]} for t in ("a1", "a2", "b1", "b2")])
    repo = tmp_path / "snapshot"
    (repo / "sub").mkdir(parents=True)
    _write(repo / "sub" / "train.jsonl", [{"s1": "u", "s2": "v", "label": 1}])
    calls = []

    def resolve(ref):
        calls.append(ref)
        return repo, SHA

    corpus = _load(
        tmp_path,
        [
            {"name": "pq", "type": "retrieval", "source": {"path": "r.parquet"}, "cap": 3},
            {"name": "tf", "type": "classification", "source": {"path": "task"}},
            {"name": "hub", "type": "pair", "source": {"hub": "org/data@main", "path": "sub"}},
        ],
        resolve=resolve,
    )
    assert corpus.sizes() == {"pq": 3, "tf": 4, "hub": 1}
    assert calls == ["org/data@main"]
    assert corpus["hub"].source == f"org/data@{SHA}:sub" and corpus["hub"].source_rev == SHA
    assert corpus["tf"].source_rev.startswith("sha256:")
    assert corpus.spec.ratios == (0.4, 0.6, 0.8, 1.0)


GOOD = {"name": "ok", "type": "retrieval", "source": {"path": "r.jsonl"}}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"type": "retreival"}, r"datasets\[0\] \(ok\)\.type: unknown task type 'retreival'"),
        (
            {"columns": {"pos": "positive"}},
            r"datasets\[0\] \(ok\)\.columns\.pos: column 'positive' missing",
        ),
        (
            {"columns": {"label": "x"}},
            r"datasets\[0\] \(ok\)\.columns\.label: unknown role for type retrieval",
        ),
        ({"source": {"path": "empty.jsonl"}}, r"datasets\[0\] \(ok\)\.source: .*empty dataset"),
        (
            {"source": {"path": "missing.jsonl"}},
            r"datasets\[0\] \(ok\)\.source\.path: .*missing\.jsonl not found",
        ),
        (
            {"source": {"url": "http://x"}},
            r"datasets\[0\] \(ok\)\.source\.url: Extra inputs are not permitted",
        ),
        (
            {"source": {"hub": "org/data"}},
            r"datasets\[0\] \(ok\)\.source\.hub: expected 'org/name@revision'",
        ),
        (
            {"source": {"hub": "org/data@v1"}},
            r"datasets\[0\] \(ok\)\.source\.hub: org/data@v1 needs a Hub resolver",
        ),
        (
            {"source": {"path": "bad.jsonl"}},
            r"datasets\[0\] \(ok\)\.source\.path: .*bad\.jsonl:2: invalid JSON",
        ),
        (
            {"source": {"path": "r.txt"}},
            r"datasets\[0\] \(ok\)\.source\.path: .*unsupported format",
        ),
        ({"cap": 0}, r"datasets\[0\] \(ok\)\.cap: Input should be greater than 0"),
        ({"bogus": 1}, r"datasets\[0\] \(ok\)\.bogus: Extra inputs are not permitted"),
        ({"negatives": 3}, r"datasets\[0\] \(ok\)\.negatives: only classification and clustering"),
        ({"min_score": 0.5}, r"datasets\[0\] \(ok\)\.min_score: only sts datasets"),
        ({"name": "bad name"}, r"datasets\[0\] \(bad name\)\.name: .*invalid dataset name"),
    ],
)
def test_bad_dataset_entries_are_one_line_user_errors_naming_the_field(tmp_path, change, expected):
    _write(tmp_path / "r.jsonl", [{"query": "q", "pos": ["p"]}])
    (tmp_path / "r.txt").write_text("x")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "bad.jsonl").write_text('{"query": "q", "pos": "p"}\n{not json\n')
    with pytest.raises(UserError, match=expected) as err:
        _load(tmp_path, [{**GOOD, **change}])
    assert ": 1 problem" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ({"ratios": [0.5, 0]}, r"ratios\[1\]: ratio 0(\.0)? is outside \(0, 1\]"),
        ({"ratios": [1.5]}, r"ratios\[0\]: ratio 1.5 is outside \(0, 1\]"),
        ({"datasets": []}, r"datasets: list at least one dataset"),
        ({"seed": -1}, r"seed: Input should be greater than or equal to 0"),
    ],
)
def test_bad_top_level_fields(tmp_path, top, expected):
    _write(tmp_path / "r.jsonl", [{"query": "q", "pos": ["p"]}])
    with pytest.raises(UserError, match=expected):
        _load(tmp_path, [GOOD], **top) if "datasets" not in top else load_corpus(
            parse_corpus_spec(top)
        )


def test_unreachable_hub_source_names_dataset_and_field(tmp_path):
    def resolve(ref):
        raise OSError("connection refused")

    with pytest.raises(
        UserError,
        match=r"datasets\[0\] \(h\)\.source\.hub: cannot reach org/d@main: connection refused",
    ):
        _load(
            tmp_path,
            [{"name": "h", "type": "sts", "source": {"hub": "org/d@main"}}],
            resolve=resolve,
        )


def test_unpinned_resolver_answer_is_rejected(tmp_path):
    with pytest.raises(UserError, match="not a 40-hex commit"):
        _load(
            tmp_path,
            [{"name": "h", "type": "sts", "source": {"hub": "org/d@main"}}],
            resolve=lambda ref: (tmp_path, "main"),
        )


def test_all_problems_are_reported_together(tmp_path):
    _write(tmp_path / "r.jsonl", [{"query": "q", "pos": ["p"]}])
    with pytest.raises(UserError) as err:
        _load(
            tmp_path,
            [{**GOOD, "type": "nope"}, {**GOOD, "name": "dup"}, {**GOOD, "name": "dup"}],
            ratios=[2],
        )
    message = str(err.value)
    assert "\n" not in message and ": 3 problems: " in message
    lines = message.split(": 3 problems: ", 1)[1].split("; ")
    assert any("datasets[0] (ok).type: unknown task type" in line for line in lines)
    assert any("datasets[2].name: duplicate dataset name 'dup'" in line for line in lines)
    assert any("ratios[0]: ratio 2.0 is outside" in line for line in lines)
    with pytest.raises(UserError) as err:  # data problems of several datasets, too
        _load(
            tmp_path,
            [
                {**GOOD, "source": {"path": "no1.jsonl"}},
                {**GOOD, "name": "b", "source": {"path": "no2.jsonl"}},
            ],
        )
    assert "no1.jsonl" in str(err.value) and "no2.jsonl" in str(err.value)


@pytest.mark.parametrize(
    ("kind", "rows", "expected"),
    [
        ("sts", [{"s1": "a", "s2": "b", "score": "high"}], r"row 1: score must be a number"),
        ("pair", [{"s1": "a", "s2": "b", "label": 2}], r"row 1: label must be 0 or 1"),
        (
            "classification",
            [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}],
            r"label: needs at least two distinct labels",
        ),
        ("retrieval", [{"query": "", "pos": "p"}], r"row 1: query must be a non-empty string"),
    ],
)
def test_bad_values_name_the_row(tmp_path, kind, rows, expected):
    with pytest.raises(UserError, match=expected):
        _load(
            tmp_path,
            [{"name": "x", "type": kind, "source": {"path": _write(tmp_path / "x.jsonl", rows)}}],
        )


def test_negatives_are_capped_by_the_other_labels_available(tmp_path):
    rows = [{"text": f"a{i}", "label": "a"} for i in range(40)] + [
        {"text": "b0", "label": "b"},
        {"text": "b1", "label": "b"},
    ]
    src = {"path": _write(tmp_path / "c.jsonl", rows)}
    ds = _load(tmp_path, [{"name": "c", "type": "classification", "source": src}])["c"]
    for ex in ds.data:
        expected = {"b0", "b1"} if ex["label"] == "a" else None
        if expected:
            assert sorted(ex["neg"]) == sorted(expected)  # the fallback path: only 2 exist
        else:
            assert len(ex["neg"]) == 7 and all(n.startswith("a") for n in ex["neg"])
