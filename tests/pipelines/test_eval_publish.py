"""`zoo eval REPO --publish`: scores that arrive after publishing reach the repo and its card.

Run as a user would (the `zoo` CLI against the live embedded Hub), checked with the official
huggingface_hub client: the new revision's files, the card's model-index, the plot it shows, and
that `zoo card --update` afterwards keeps every score (it reads `.eval_results/` back).
"""

import json
import os
import shutil

import yaml
from huggingface_hub import ModelCard, parse_eval_result_entries
from markdown_it import MarkdownIt

from tests.eval import helpers
from tests.recipe.conftest import published  # noqa: F401  (tiny base + bags on the Hub)
from zoo.cli import main
from zoo.hub.session import open_hub
from zoo.pipelines import push


def _h(hub):
    return ["--hub", hub.url, "--token", hub.admin_token]


def _tasks(tmp_path):
    """Two small STS task folders: HandSTS and PairSTS (the same pairs, the order reversed)."""
    one = helpers.sts_task(tmp_path / "tasks" / "HandSTS")
    rows = [{"s1": b, "s2": a, "score": s} for a, b, s in helpers.STS_PAIRS]
    two = helpers.write_task(tmp_path / "tasks" / "PairSTS", "PairSTS", "sts", {"test.jsonl": rows})
    return str(one), str(two)


def _eval(hub, capsys, repo, task, *extra):
    capsys.readouterr()
    code = main(["eval", repo, "--task-dir", task, "--publish", "--json", *extra, *_h(hub)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _read(api, repo, name, revision="main"):
    return open(api.hf_hub_download(repo, name, revision=revision), encoding="utf-8").read()


def _entry(api, repo, task, revision="main"):
    (entry,) = parse_eval_result_entries(
        yaml.safe_load(_read(api, repo, f".eval_results/{task}.yaml", revision))
    )
    return entry


def _index(api, repo, revision="main"):
    """{task: value} of the card's model-index, as huggingface_hub parses the card."""
    card = ModelCard(_read(api, repo, "README.md", revision))
    return {r.dataset_name: r.metric_value for r in card.data.eval_results or []}


def _rounded(scores):
    """Scores as the --json report gives them (6 decimals); zoo.json keeps every digit."""
    return {k: round(v, 6) for k, v in scores.items()}


def _row(card, task):
    return next(line for line in card.splitlines() if line.startswith(f"| {task} |"))


def _assert_plot_shown(api, repo, card, revision="main"):
    assert "![Average main score per task type](scores.png)" in card
    # rendered as GFM (tables on), the plot is an image below the table, not a row of it
    html = MarkdownIt("commonmark").enable("table").render(card.split("\n---\n", 1)[1])
    table = html[html.index("<table>") : html.index("</table>")]
    assert "<img" not in table and '<img src="scores.png"' in html
    assert api.file_exists(repo, "scores.png", revision=revision)
    png = open(api.hf_hub_download(repo, "scores.png", revision=revision), "rb").read()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_eval_publish_on_a_member_merges_scores_and_card_update_keeps_them(
    hub, tiny_bert, tmp_path, capsys
):
    one, two = _tasks(tmp_path)
    folder = tmp_path / "model"
    shutil.copytree(tiny_bert, folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# mine\n")
    repo = f"zoo/evalpub-{os.urandom(4).hex()}"
    with open_hub(hub.url, hub.admin_token) as h:
        pushed, _ = push(h, folder, repo, kind="base")
    api = hub.api()
    card = _read(api, repo, "README.md")
    assert "model-index" not in card and "## Evaluation" not in card  # published without scores

    first = _eval(hub, capsys, repo, one)
    sha = first["published"].split("@")[1]
    score = first["tasks"][0]["score"]
    commits = api.list_repo_commits(repo)
    assert [c.commit_id for c in commits[:2]] == [sha, pushed]  # one commit on top of the push
    assert {".eval_results/HandSTS.yaml", "scores.png", "README.md", "zoo.json"} <= set(
        api.list_repo_files(repo)
    )
    entry = _entry(api, repo, "HandSTS")
    assert entry.task_id == "HandSTS" and entry.value == round(score, 6)
    assert (
        entry.dataset_id == "zoo-local/HandSTS" and entry.notes == "sts; main score cosine_spearman"
    )
    # the card: model-index (read by huggingface_hub from the Hub's card data), table, plot
    info = api.model_info(repo)
    assert info.sha == sha
    assert {r.dataset_name: r.metric_value for r in info.card_data.eval_results} == {
        "HandSTS": round(score, 6)
    }
    card = _read(api, repo, "README.md")
    assert _row(card, "HandSTS") == f"| HandSTS | sts | cosine_spearman | {100 * score:.2f} |"
    _assert_plot_shown(api, repo, card)
    data = ModelCard(card).data.to_dict()
    assert data["license"] == "apache-2.0"  # the published card's license stays
    assert "mteb" in data["tags"] and _rounded(data["zoo"]["scores"]) == {"HandSTS": score}

    # a second task: the first task's score stays, the new one joins it
    second = _eval(hub, capsys, repo, two)
    score2 = second["tasks"][0]["score"]
    assert _index(api, repo) == {"HandSTS": round(score, 6), "PairSTS": round(score2, 6)}
    assert _entry(api, repo, "HandSTS").value == round(score, 6)
    card = _read(api, repo, "README.md")
    assert _row(card, "PairSTS") == f"| PairSTS | sts | cosine_spearman | {100 * score2:.2f} |"
    assert _row(card, "HandSTS") == f"| HandSTS | sts | cosine_spearman | {100 * score:.2f} |"
    meta = json.loads(_read(api, repo, "zoo.json"))
    assert _rounded(meta["scores"]) == {"HandSTS": score, "PairSTS": score2}

    # `zoo card` renders what was published; --update makes no new revision
    head = api.model_info(repo).sha
    assert main(["card", repo, *_h(hub)]) == 0
    assert capsys.readouterr().out == card
    assert main(["card", repo, "--update", *_h(hub)]) == 0
    assert "up to date" in capsys.readouterr().out and api.model_info(repo).sha == head

    # a card edited by hand (table and model-index lost) comes back whole from `.eval_results/`
    hand = b"---\nlicense: apache-2.0\n---\n# edited\n"
    api.upload_file(path_or_fileobj=hand, path_in_repo="README.md", repo_id=repo)
    assert main(["card", repo, "--update", *_h(hub)]) == 0
    assert _read(api, repo, "README.md") == card

    # a score changed in `.eval_results/` (as another tool would) is what the re-render shows
    edited = (
        "- dataset: {id: zoo-local/HandSTS, task_id: HandSTS}\n  value: 0.123\n"
        "  notes: 'sts; main score cosine_spearman'\n"
    )
    api.upload_file(
        path_or_fileobj=edited.encode(), path_in_repo=".eval_results/HandSTS.yaml", repo_id=repo
    )
    assert main(["card", repo, "--update", *_h(hub)]) == 0
    card = _read(api, repo, "README.md")
    assert _row(card, "HandSTS") == "| HandSTS | sts | cosine_spearman | 12.30 |"
    assert _index(api, repo) == {"HandSTS": 0.123, "PairSTS": round(score2, 6)}

    # the task evaluated again: its new score replaces the old one; the other task stays
    _eval(hub, capsys, repo, one)
    assert _entry(api, repo, "HandSTS").value == round(score, 6)
    assert _index(api, repo) == {"HandSTS": round(score, 6), "PairSTS": round(score2, 6)}
    assert _row(_read(api, repo, "README.md"), "HandSTS").endswith(f" {100 * score:.2f} |")


def test_eval_publish_on_a_merged_model_keeps_its_table_and_opens_a_pr(
    hub,
    published,  # noqa: F811
    tmp_path,
    capsys,
):
    one, two = _tasks(tmp_path)
    a, b = sorted(f"{r}@{s}" for r, s in published["bags"].items() if "exp-a" in r)[:2]
    repo = f"zoo/evalpub-merged-{os.urandom(4).hex()}"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 1.0}}\n"
        f"  - model: {b}\n    parameters: {{weight: 1.0}}\n"
        f"zoo:\n  publish: {{repo_id: {repo}}}\n  eval: {{task_dirs: [{one}]}}\n"
    )
    argv = ["merge", str(recipe), "--publish", "--out", str(tmp_path / "m"), "--quiet", "--json"]
    assert main([*argv, *_h(hub)]) == 0, capsys.readouterr().err
    api = hub.api()
    before_card = _read(api, repo, "README.md")
    before_yaml = _read(api, repo, ".eval_results/HandSTS.yaml")
    labels = [r.split("@")[0].rsplit("/", 1)[1] for r in (a, b)]
    header = "| task | type | metric | " + " | ".join([*labels, "merged"]) + " |"
    assert header in before_card
    old_row = _row(before_card, "HandSTS")

    got = _eval(hub, capsys, repo, two)
    score2 = got["tasks"][0]["score"]
    card = _read(api, repo, "README.md")
    assert header in card and _row(card, "HandSTS") == old_row  # the merge's table stays
    assert (
        _row(card, "PairSTS") == f"| PairSTS | sts | cosine_spearman | — | — | {100 * score2:.2f} |"
    )
    assert _read(api, repo, ".eval_results/HandSTS.yaml") == before_yaml
    assert _entry(api, repo, "PairSTS").value == round(score2, 6)
    index = _index(api, repo)
    assert set(index) == {"HandSTS", "PairSTS"} and index["PairSTS"] == round(score2, 6)
    _assert_plot_shown(api, repo, card)
    assert "```mermaid" in card and "## Lock" in card  # still the merged card
    assert main(["card", repo, "--update", *_h(hub)]) == 0
    assert "up to date" in capsys.readouterr().out

    # --pr: the same commit on refs/pr/N; main moves only when it is merged
    edited = (
        "- dataset: {id: zoo-local/HandSTS, task_id: HandSTS}\n  value: 0.5\n"
        "  notes: 'sts; main score cosine_spearman'\n"
    )
    api.upload_file(
        path_or_fileobj=edited.encode(), path_in_repo=".eval_results/HandSTS.yaml", repo_id=repo
    )
    head = api.model_info(repo).sha
    pr = _eval(hub, capsys, repo, one, "--pr")
    assert pr["pr"] == f"{hub.url}/{repo}/discussions/1" and api.model_info(repo).sha == head
    assert _entry(api, repo, "HandSTS").value == 0.5  # main: untouched
    real = round(pr["tasks"][0]["score"], 6)
    assert _entry(api, repo, "HandSTS", "refs/pr/1").value == real
    details = api.get_discussion_details(repo, 1)
    assert details.is_pull_request and "HandSTS" in details.events[0].content
    api.merge_pull_request(repo, 1)
    assert _index(api, repo)["HandSTS"] == real


def test_eval_publish_bad_input_is_one_line(hub, tiny_bert, tmp_path, capsys):
    one, _ = _tasks(tmp_path)
    for argv, says in [
        (["eval", str(tiny_bert), "--task-dir", one, "--publish"], "is a local folder"),
        (["eval", "zoo/x", "--task-dir", one, "--pr"], "--pr needs --publish"),
        (["eval", "zoo/evalpub-missing", "--task-dir", one, "--publish"], "evalpub-missing"),
    ]:
        capsys.readouterr()
        assert main([*argv, *_h(hub)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("zoo: error:") and says in err and err.count("\n") == 1, err


def test_eval_results_read_back_by_the_hub_client():
    """What zoo writes reads back whole; another tool's entry gets type 'other'; junk is skipped."""
    from zoo.cards.model_index import eval_results_yaml, parse_eval_results_yaml
    from zoo.pipelines.cards import fold_entries

    results = {
        "columns": [{"label": "m", "ref": "o/m"}],
        "tasks": [{"name": "T", "type": "sts", "metric": "cosine_spearman"}],
        "scores": {"m": {"T": 0.4567891234}},
    }
    files = eval_results_yaml(results, "m", {"T": {"id": "o/bench", "revision": "abc"}})
    files[".eval_results/hle.yaml"] = "- dataset: {id: cais/hle, task_id: default}\n  value: 20.9\n"
    files[".eval_results/bad.yaml"] = "- [not, an, entry]\n"
    files[".eval_results/junk.yaml"] = "{{{"
    entries = parse_eval_results_yaml(files)
    assert entries == [
        {
            "name": "T",
            "type": "sts",
            "metric": "cosine_spearman",
            "value": 0.456789,
            "dataset": {"id": "o/bench", "revision": "abc"},
        },
        {
            "name": "default",
            "type": "other",
            "metric": "main_score",
            "value": 20.9,
            "dataset": {"id": "cais/hle"},
        },
    ]
    folded = fold_entries(results, "m", "o/m", entries)
    assert folded["scores"]["m"] == {"T": 0.4567891234, "default": 20.9}  # T kept: same to 6 dp
    assert results["scores"]["m"] == {"T": 0.4567891234}  # the input is not changed
    assert fold_entries(None, "m", "o/m", []) is None
