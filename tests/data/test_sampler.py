"""Bagging sampler: exact per-dataset counts, determinism across processes, bootstrap, replay."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydantic
import pytest

from zoo.data.corpus import load_corpus
from zoo.data.sampler import (
    BagManifest,
    bag_count,
    draw_indices,
    indices_sha256,
    sample_bags,
    select_rows,
)
from zoo.data.spec import parse_corpus_spec
from zoo.errors import UserError

SIZES = {"a": 5, "b": 10, "c": 1, "d": 0, "e": 7, "f": 1000}


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (0.5, {"a": 3, "b": 5, "c": 1, "d": 0, "e": 4, "f": 500}),  # 2.5 -> 3, 3.5 -> 4
        (0.4, {"a": 2, "b": 4, "c": 1, "d": 0, "e": 3, "f": 400}),  # 0.4 -> at least 1
        (0.6, {"a": 3, "b": 6, "c": 1, "d": 0, "e": 4, "f": 600}),  # 4.2 -> 4
        (0.15, {"a": 1, "b": 2, "c": 1, "d": 0, "e": 1, "f": 150}),  # 1.5 -> 2, 1.05 -> 1
        (1.0, SIZES),
    ],
)
def test_counts_follow_the_documented_rule_exactly(ratio, expected):
    (bag,) = sample_bags(SIZES, [ratio], seed=1)
    assert {d.name: d.count for d in bag.datasets} == expected
    for name, n in SIZES.items():
        idx = draw_indices(name, n, ratio, 1, bootstrap=False)
        assert len(idx) == expected[name] == bag_count(ratio, n)
        assert len(set(idx.tolist())) == len(idx)  # without replacement
        assert all(0 <= i < n for i in idx.tolist()) and list(idx) == sorted(idx)
        assert bag.draw(name).indices_sha256 == indices_sha256(idx)


def test_count_uses_the_decimal_ratio_not_the_binary_float():
    # 0.29 * 50 is 14.499999999999998 in floating point; the decimal rule gives 14.5 -> 15
    assert 0.29 * 50 + 0.5 < 15
    assert bag_count(0.29, 50) == 15


def test_ratio_one_without_replacement_is_the_whole_dataset():
    idx = draw_indices("x", 37, 1.0, 9, bootstrap=False)
    assert idx.tolist() == list(range(37))


def test_every_bag_has_every_dataset_and_one_manifest_per_ratio():
    bags = sample_bags(SIZES, seed=0)
    assert [b.ratio for b in bags] == [0.4, 0.6, 0.8, 1.0]
    assert all([d.name for d in b.datasets] == list(SIZES) for b in bags)
    assert len({b.manifest_sha256 for b in bags}) == 4


def test_deterministic_and_seed_sensitive():
    assert sample_bags(SIZES, seed=3) == sample_bags(SIZES, seed=3)
    a, b = sample_bags(SIZES, [0.5], seed=3)[0], sample_bags(SIZES, [0.5], seed=4)[0]
    assert a.draw("f").indices_sha256 != b.draw("f").indices_sha256
    assert a.manifest_sha256 != b.manifest_sha256


def test_identical_manifests_in_another_process():
    code = (
        "import json; from zoo.data.sampler import sample_bags; "
        "print(json.dumps([b.model_dump(mode='json') "
        f"for b in sample_bags({SIZES!r}, seed=11, bootstrap=True)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    here = [b.model_dump(mode="json") for b in sample_bags(SIZES, seed=11, bootstrap=True)]
    assert json.loads(out.stdout) == here


def test_bootstrap_unique_fraction_is_one_minus_one_over_e():
    n = 200_000
    idx = draw_indices("big", n, 1.0, 5, bootstrap=True)
    assert len(idx) == n
    unique = len(np.unique(idx)) / n
    # expected 1 - 1/e = 0.63212; the standard deviation at this n is about 0.001
    assert abs(unique - (1 - 1 / math.e)) < 0.005
    counts = np.bincount(idx, minlength=n)
    assert abs(counts.mean() - 1.0) < 1e-9 and abs(counts.var() - 1.0) < 0.02  # Binomial(n, 1/n)


def test_bootstrap_smaller_ratio_draws_count_rows_with_repeats():
    idx = draw_indices("big", 10_000, 0.4, 2, bootstrap=True)
    assert len(idx) == 4000 and len(np.unique(idx)) < 4000


@pytest.mark.parametrize(
    ("ratios", "field"), [([0.0], "ratios[0]"), ([0.5, 1.2], "ratios[1]"), ([-1], "ratios[0]")]
)
def test_ratios_outside_the_unit_interval_are_user_errors(ratios, field):
    with pytest.raises(UserError, match=re.escape(field) + r": ratio .* is outside \(0, 1\]"):
        sample_bags(SIZES, ratios)


def test_manifest_json_round_trip_and_tamper_detection():
    (bag,) = sample_bags(SIZES, [0.6], seed=2)
    text = bag.model_dump_json()
    assert BagManifest.model_validate_json(text) == bag
    tampered = json.loads(text)
    tampered["datasets"][0]["count"] += 1
    with pytest.raises(pydantic.ValidationError, match="manifest_sha256"):
        BagManifest.model_validate_json(json.dumps(tampered))


def _corpus(tmp_path, rows):
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = parse_corpus_spec(
        {"datasets": [{"name": "r", "type": "retrieval", "source": {"path": "r.jsonl"}}]},
        base_dir=tmp_path,
    )
    return load_corpus(spec)


def test_select_rows_refinds_the_exact_rows(tmp_path):
    corpus = _corpus(tmp_path, [{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(40)])
    bags = sample_bags(corpus, seed=7)
    for bag in bags:
        rows = select_rows(corpus, BagManifest.model_validate_json(bag.model_dump_json()))
        idx = draw_indices("r", 40, bag.ratio, 7, bootstrap=False)
        assert rows["r"]["query"] == [f"q{i}" for i in idx.tolist()]
        assert bag.draw("r").fingerprint == corpus["r"].fingerprint
        assert bag.draw("r").source == "r.jsonl" and bag.draw("r").source_rev.startswith("sha256:")


def test_select_rows_fails_clearly_when_the_data_changed(tmp_path):
    rows = [{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(40)]
    (bag,) = sample_bags(_corpus(tmp_path, rows), [0.5], seed=7)
    rows[3]["query"] = "edited"
    with pytest.raises(UserError, match="dataset 'r': data changed"):
        select_rows(_corpus(tmp_path, rows), bag)


def test_select_rows_needs_a_fingerprint(tmp_path):
    corpus = _corpus(tmp_path, [{"query": f"q{i}", "pos": [f"p{i}"]} for i in range(40)])
    (bag,) = sample_bags({"r": 40}, [0.5])
    with pytest.raises(UserError, match="no fingerprint"):
        select_rows(corpus, bag)
