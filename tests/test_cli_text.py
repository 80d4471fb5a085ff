"""What the zoo command prints for each result, as text and as --json data (zoo.cli_text)."""

import json
from pathlib import Path
from types import SimpleNamespace as NS

from zoo.cli_text import (
    bag_row,
    bags_text,
    boom_data,
    boom_text,
    card_update_text,
    merge_data,
    merge_text,
    output,
    pull_data,
    pushed_text,
    suite_text,
    update_data,
    update_text,
)

SHA = "a" * 40


def _bag(ratio, reused=False):
    training = NS(examples_seen=120, wall_time_s=1.234, corpus_manifest_hash="m" * 64)
    result = None if reused else NS(final_loss=0.5, examples_seen=120, wall_time_s=1.234)
    return NS(
        ratio=ratio,
        path=Path(f"/w/bag-{ratio}"),
        meta=NS(training=training),
        result=result,
        published=f"exp/bag-{ratio}@{SHA}",
        reused=reused,
    )


def test_output_is_the_text_or_sorted_json():
    assert output({"b": 1, "a": [2]}, "text", as_json=False) == "text"
    assert output({"b": 1, "a": [2]}, "text", as_json=True) == json.dumps(
        {"a": [2], "b": 1}, indent=2, sort_keys=True
    )


def test_bags():
    rows = [bag_row(_bag(0.4)), bag_row(_bag(1.0, reused=True))]
    assert rows[1]["path"] is None and rows[0]["wall_time_s"] == 1.23
    assert bags_text(rows) == (
        f"bag 0.4: exp/bag-0.4@{SHA}  (120 examples, 1.23 s, loss 0.5)\n"
        f"bag 1.0: exp/bag-1.0@{SHA}  (reused: same manifest and settings already published)"
    )


def test_boom():
    result = NS(
        bags=[_bag(0.4), _bag(1.0, reused=True)],
        recipe=Path("/w/recipe.yaml"),
        merged=NS(published=f"exp/boom@{SHA}", tag="v1"),
        bls=f"exp/bls@{SHA}",
    )
    data = boom_data(result)
    assert json.loads(json.dumps(data)) == data  # plain data
    assert boom_text(data) == "\n".join(
        [
            f"bag 0.4: exp/bag-0.4@{SHA}",
            f"bag 1.0: exp/bag-1.0@{SHA} (reused)",
            "recipe: /w/recipe.yaml",
            f"merged: exp/boom@{SHA} (tag v1)",
            f"bls: exp/bls@{SHA}",
        ]
    )
    assert "bls" not in boom_text({**data, "bls": None})


def test_update():
    merged = NS(published=None, tag=None, pr_url=None, out=Path("/w/merged"))
    result = NS(
        current=f"exp/m@{SHA}",
        update="/w/update",
        recipe=Path("/w/r.yaml"),
        weights=(0.75, 0.25),
        new_rows=30,
        replay_rows=10,
        merged=merged,
    )
    data = update_data(result)
    assert data["weights"] == [0.75, 0.25]
    assert update_text(data) == (
        "update model: /w/update (30 new rows + 10 replayed)\n"
        "recipe: /w/r.yaml (weights 0.75, 0.25)\n"
        "merged: /w/merged"
    )
    published = {**data, "published": f"exp/m@{SHA}", "tag": "v2"}
    assert update_text(published).endswith(f"merged: exp/m@{SHA} (tag v2)")
    proposed = {**data, "published": f"exp/m@{SHA}", "pr": "http://h/exp/m/discussions/3"}
    assert update_text(proposed).endswith(
        f"merged: exp/m@{SHA} (pull request http://h/exp/m/discussions/3)"
    )


def test_merge():
    report = NS(seconds=1.23456, peak_rss_bytes=10, files={"model.safetensors": "h"})
    outcome = NS(
        out=Path("/w/out"),
        published=None,
        tag=None,
        pr_url=None,
        report=report,
        plan={},
        search=None,
    )
    data = merge_data(outcome)
    assert data["seconds"] == 1.235 and merge_text(data) == "/w/out"
    search = {
        "strategy": "grid",
        "parameter": "weight",
        "best": 1,
        "trials": [{"values": [0.2], "score": 0.1}, {"values": [0.8], "score": 0.56789}],
    }
    text = merge_text({**data, "published": f"o/m@{SHA}", "tag": "v1", "search": search})
    assert text == (
        f"/w/out\npublished o/m@{SHA} (tag v1)\n"
        "search (grid): 2 candidates, best weight=[0.8] (dev score 0.5679)"
    )
    pr = {**data, "published": f"o/m@{SHA}", "pr": "http://h/o/m/discussions/1"}
    assert (
        merge_text(pr) == f"/w/out\nproposed o/m@{SHA} as pull request http://h/o/m/discussions/1"
    )


def test_members_and_data():
    assert pushed_text({"repo_id": "o/m", "sha": SHA, "kind": "base"}) == f"o/m@{SHA}"
    pulled = NS(path=Path("/c/m"), repo_id="o/m", sha=SHA, verified_files=3)
    assert pull_data(pulled) == {"path": "/c/m", "repo_id": "o/m", "sha": SHA, "verified_files": 3}
    assert card_update_text("o/m@v1", SHA) == f"o/m@{SHA}"
    assert card_update_text("o/m@v1", None) == "o/m@v1: the card is up to date"
    assert suite_text({"path": "/s", "pushed": None}) == "/s"
    assert suite_text({"path": "/s", "pushed": "o/suite"}) == "/s\npushed o/suite"
