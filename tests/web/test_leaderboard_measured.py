"""Scores a leaderboard row takes from elsewhere: those a merged model's evaluation measured for
its base and parents at their pinned commits (eval/card-results.json), and those of the weights a
BLS baseline copies (labels.same_weights_as). A row's own .eval_results always win."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import CommitOperationAdd

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from tests.web.zoo_fixtures import training
from zoo.cards.model_index import eval_results_yaml
from zoo.hub.metadata import ZooMetadata
from zoo.hub.server import HubStore
from zoo.hub.server.web import leaderboard as LB

EXP = "measured-exp"
TASKS = [{"name": "t1", "type": "retrieval", "metric": "ndcg_at_10"},
         {"name": "t2", "type": "sts", "metric": "cosine_spearman"}]  # fmt: skip


def _commit(api, repo: str, files: dict[str, str]) -> str:
    api.create_repo(repo, exist_ok=True)
    ops = [CommitOperationAdd(p, text.encode()) for p, text in files.items()]
    return api.create_commit(repo, ops, commit_message=f"publish {repo}").oid


@pytest.fixture(scope="module")
def family(hub):  # noqa: F811
    api = hub.api()
    base_sha = _commit(api, "measured/base", {"zoo.json": ZooMetadata(kind="base").to_json()})
    base = f"measured/base@{base_sha}"
    bag_meta = ZooMetadata(kind="bag", base_model=base, training=training(EXP))
    bag = f"measured/bag@{_commit(api, 'measured/bag', {'zoo.json': bag_meta.to_json()})}"
    bls = ZooMetadata(kind="bag", base_model=base, training=training(None),
                      labels={"role": "bls-baseline", "same_weights_as": bag})  # fmt: skip
    _commit(api, "measured/bls", {"zoo.json": bls.to_json()})
    results = {
        "tasks": TASKS,
        "columns": [
            {"label": "base", "ref": base},
            {"label": "bag", "ref": bag},
            {"label": "merged", "ref": "/tmp/local/merged"},
        ],  # fmt: skip
        "scores": {
            "base": {"t1": 0.30, "t2": 0.40},
            "bag": {"t1": 0.50, "t2": 0.60},
            "merged": {"t1": 0.70, "t2": 0.80},
        },  # fmt: skip
    }
    merged = ZooMetadata(kind="merged", base_model=base, parents=(bag,))
    files = {"zoo.json": merged.to_json(), LB.CARD_RESULTS: json.dumps(results)}
    files.update(eval_results_yaml({"tasks": TASKS, "scores": {"m": {"t1": 0.71}}}, "m"))
    _commit(api, "measured/merged", files)
    return HubStore(hub.root)


def _scores(board) -> dict[str, list[float | None]]:
    tasks = [i for i, (kind, _l, _t) in enumerate(board.columns) if kind == "task"]
    return {r.model.id: [r.cells[i].value for i in tasks] for r in board.rows}


def test_rows_take_the_scores_measured_beside_the_merge(family):
    board = LB.board(family, None, EXP)
    assert [name for name, _type in board.tasks] == ["t1", "t2"]
    got = _scores(board)
    assert got["measured/base"] == [0.30, 0.40]
    assert got["measured/bag"] == [0.50, 0.60]
    assert got["measured/bls"] == [0.50, 0.60]  # the bag's weights, so the bag's scores
    # the merged model's own .eval_results win; t2 only in its evaluation, for a local column
    assert got["measured/merged"] == [0.71, None]


def test_a_later_commit_of_a_parent_does_not_take_old_measurements(hub, family):  # noqa: F811
    api = hub.api()
    api.upload_file(path_or_fileobj=b"x", path_in_repo="notes.txt", repo_id="measured/base")
    got = _scores(LB.board(family, None, EXP))
    assert got["measured/base"] == [None, None]  # measured at the old commit, not at main
    assert got["measured/bag"] == [0.50, 0.60]
