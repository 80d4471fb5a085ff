"""`zoo merge --search`: grid and greedy-soup weight search on dev task folders, recorded in the
output, the lock and the card; the chosen candidate is what gets merged and published."""

import json

import pytest
import torch
from huggingface_hub import ModelCard

from tests.eval import helpers
from tests.recipe.test_merge_pipeline import _pulled, run_merge, write
from tests.tiny import load_all
from zoo.cli import main
from zoo.eval import evaluate
from zoo.merge.engine import MergeInput, merge_folders

RECIPE = """\
merge_method: linear
zoo:
  select: {{kind: bag, experiment: exp-a, order_by: training.ratio, parameters: {{weight: 1.0}}}}
  publish: {{repo_id: zoo/tiny-searched}}
  search:
    task_dirs: [{dev}]
{strategy}
"""
GRID = "    grid: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]"


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    return helpers.sts_task(tmp_path_factory.mktemp("dev") / "HandSTS")


def _dev_score(path, dev):
    return evaluate(path, task_dirs=[dev], progress=False, cache_dir=False).tasks[0].score


def test_grid_search_merges_the_best_candidate(hub, published, dev, tmp_path):
    recipe = write(tmp_path, RECIPE.format(dev=dev, strategy=GRID))
    outcome = run_merge(
        hub.url,
        recipe,
        out=tmp_path / "out",
        token=hub.admin_token,
        progress=False,
        search=True,
    )
    trials = outcome.search["trials"]
    assert [t["values"] for t in trials] == [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 1.0],
    ]
    best = outcome.search["best"]
    assert trials[best]["score"] == max(t["score"] for t in trials)
    # the recorded score is the published model's real dev score
    assert abs(_dev_score(tmp_path / "out", dev) - trials[best]["score"]) < 1e-6
    # what was merged is the chosen weighting, and the lock records it
    weights = trials[best]["values"]
    assert [m.params["weight"] for m in outcome.lock.models] == weights
    bags = _pulled(hub, [m.pinned for m in outcome.lock.models])
    ref = tmp_path / "ref"
    merge_folders(
        [MergeInput(p, {"weight": w}) for p, w in zip(bags, weights)],
        None,
        "linear",
        {},
        ref,
        progress=False,
    )
    ours, theirs = load_all(tmp_path / "out"), load_all(ref)
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert json.loads((tmp_path / "out" / "search.json").read_text()) == outcome.search
    again = run_merge(
        hub.url,
        lock=tmp_path / "out" / "zoo.lock.json",
        out=tmp_path / "again",
        token=hub.admin_token,
        progress=False,
    )
    assert again.report.files["model.safetensors"] == outcome.report.files["model.safetensors"]


def test_greedy_soup_is_published_with_its_search_in_the_card(
    hub, published, dev, tmp_path, capsys
):
    recipe = write(tmp_path, RECIPE.format(dev=dev, strategy="    greedy: true"))
    capsys.readouterr()
    code = main(
        [
            "merge",
            str(recipe),
            "--search",
            "--publish",
            "--out",
            str(tmp_path / "out"),
            "--json",
            "--quiet",
            "--hub",
            hub.url,
            "--token",
            hub.admin_token,
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    search = json.loads(out)["search"]
    trials = search["trials"]
    assert len(trials) == 5  # 3 models alone, the best two, the best two + the third
    alone = [t["score"] for t in trials[:3]]
    top2 = sorted(range(3), key=lambda i: (-alone[i], i))[:2]
    assert [v is not None for v in trials[3]["values"]] == [i in top2 for i in range(3)]
    assert all(v is not None for v in trials[4]["values"])
    assert search["best"] == (4 if trials[4]["score"] >= trials[3]["score"] else 3)
    api = hub.api()
    card = open(api.hf_hub_download("zoo/tiny-searched", "README.md")).read()
    assert "## Weight search" in card and "greedy over `weight`" in card
    chosen = [line for line in card.splitlines() if line.endswith("| ✓ |")]
    assert len(chosen) == 1 and chosen[0].startswith(f"| {search['best'] + 1} |")
    assert "search.json" in api.list_repo_files("zoo/tiny-searched")
    assert ModelCard(card).data.base_model  # still a valid card


@pytest.mark.parametrize(
    "strategy, needle",
    [
        ("    grid: [[1.0, 1.0]]", "zoo.search.grid[0]: 2 values for 3 models"),
        ("    grid: [[1.0, 1.0, 1.0]]\n    greedy: true", "either grid"),
        ("", "either grid"),
    ],
)
def test_search_errors(hub, published, dev, tmp_path, capsys, strategy, needle):
    recipe = write(tmp_path, RECIPE.format(dev=dev, strategy=strategy))
    capsys.readouterr()
    code = main(
        [
            "merge",
            str(recipe),
            "--search",
            "--out",
            str(tmp_path / "o"),
            "--hub",
            hub.url,
            "--token",
            hub.admin_token,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_search_needs_a_search_block(hub, published, tmp_path, capsys):
    recipe = write(
        tmp_path,
        "merge_method: linear\n"
        "zoo:\n  select: {kind: bag, experiment: exp-a, parameters: {weight: 1.0}}\n",
    )
    code = main(["merge", str(recipe), "--search", "--hub", hub.url, "--token", hub.admin_token])
    assert code == 2 and "has none" in capsys.readouterr().err
