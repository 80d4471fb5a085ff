"""Replay: the lineage's exact rows regenerated from its records, and a seeded fraction of them."""

import json

import numpy as np
import pytest

from zoo.data.corpus import load_corpus
from zoo.data.replay import HistoryDraw, history, replay_indices, select_history, whole
from zoo.data.sampler import bag_count, draw_indices, sample_bags, select_rows
from zoo.data.spec import parse_corpus_spec
from zoo.errors import IntegrityError, UserError


def _corpus(tmp_path, sizes):
    datasets = []
    for name, n in sizes.items():
        rows = [{"query": f"{name}-q{i}", "pos": [f"{name}-p{i}"]} for i in range(n)]
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        datasets.append({"name": name, "type": "retrieval", "source": {"path": f"{name}.jsonl"}})
    return load_corpus(parse_corpus_spec({"datasets": datasets}, base_dir=tmp_path))


def _draws(member, manifest):
    return [
        HistoryDraw(
            member,
            d.name,
            d.fingerprint,
            d.size,
            manifest.ratio,
            manifest.seed,
            manifest.bootstrap,
            d.indices_sha256,
        )
        for d in manifest.datasets
    ]


def test_history_is_the_union_of_the_bags_rows(tmp_path):
    corpus = _corpus(tmp_path, {"a": 50, "b": 9})
    bags = sample_bags(corpus, (0.4, 0.6), seed=3)
    hist = history(d for i, bag in enumerate(bags) for d in _draws(f"org/bag-{i}@{'0' * 40}", bag))
    for name, size in (("a", 50), ("b", 9)):
        expected = set()
        for bag in bags:
            expected |= set(draw_indices(name, size, bag.ratio, 3, False).tolist())
        assert hist.indices[name].tolist() == sorted(expected)
    assert hist.rows() == sum(len(i) for i in hist.indices.values())


def test_replay_refinds_exactly_the_rows_the_bags_used(tmp_path):
    corpus = _corpus(tmp_path, {"a": 50, "b": 9})
    (bag,) = sample_bags(corpus, (0.5,), seed=1)
    hist = history(_draws("org/bag@" + "0" * 40, bag))
    picked = replay_indices(hist, 0.2, seed=4)
    rows = select_history(corpus, hist, picked)
    trained = select_rows(corpus, bag)
    for name in ("a", "b"):
        assert len(picked[name]) == bag_count(0.2, len(hist.indices[name]))
        assert set(rows[name]["query"]) <= set(trained[name]["query"])  # only rows trained on
        assert rows[name]["query"] == [f"{name}-q{i}" for i in picked[name].tolist()]
    assert {k: v.tolist() for k, v in replay_indices(hist, 0.2, seed=4).items()} == {
        k: v.tolist() for k, v in picked.items()
    }  # deterministic
    assert replay_indices(hist, 0.2, seed=5)["a"].tolist() != picked["a"].tolist()
    assert replay_indices(hist, 1.0, seed=4)["a"].tolist() == hist.indices["a"].tolist()


def test_whole_corpus_history_for_models_without_lineage(tmp_path):
    corpus = _corpus(tmp_path, {"a": 20})
    hist = whole(corpus)
    assert hist.indices["a"].tolist() == list(range(20))
    assert len(replay_indices(hist, 0.1, 0)["a"]) == 2


def test_tampered_records_and_changed_data_are_refused(tmp_path):
    corpus = _corpus(tmp_path, {"a": 30})
    (bag,) = sample_bags(corpus, (0.5,), seed=2)
    (draw,) = _draws("org/bag@" + "0" * 40, bag)
    with pytest.raises(IntegrityError, match="do not hash"):
        history([draw.__class__(**{**draw.__dict__, "seed": 9})])
    other = draw.__class__(
        **{**draw.__dict__, "fingerprint": "f" * 64, "member": "org/x@" + "1" * 40}
    )
    with pytest.raises(UserError, match="other content"):
        history([draw, other])
    hist = history([draw])
    (tmp_path / "a.jsonl").write_text((tmp_path / "a.jsonl").read_text().replace("a-q3", "edited"))
    changed = load_corpus(
        parse_corpus_spec(
            {"datasets": [{"name": "a", "type": "retrieval", "source": {"path": "a.jsonl"}}]},
            base_dir=tmp_path,
        )
    )
    with pytest.raises(UserError, match="data changed since it was trained on"):
        select_history(changed, hist, replay_indices(hist, 0.5, 0))
    for bad in (0, 1.5, True):
        with pytest.raises(UserError, match="--replay"):
            replay_indices(hist, bad, 0)
    assert np.all(np.diff(hist.indices["a"]) > 0)
