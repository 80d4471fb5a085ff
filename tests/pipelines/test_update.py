"""`zoo update` on the tiny suite: three consecutive updates of a BOOM model, each a new revision
of the same repo, with the exact replay rows re-found from the lineage, plus the error paths."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml
from huggingface_hub import ModelCard

from zoo.cli import main
from zoo.data.sampler import bag_count, draw_indices, indices_sha256

# the tiny suite's two new-domain datasets; the third update brings the first again under a new name
NEW = ("BibleKjvWebBitext", "BibleGenreClassification", "BibleKjvWebBitext")


def new_corpus(tiny_suite, tmp_path, i):
    """A corpus spec of one new-domain dataset, renamed so each update brings new data."""
    spec = yaml.safe_load((tiny_suite / "new-domain.yaml").read_text())
    (entry,) = [d for d in spec["datasets"] if d["name"] == NEW[i]]
    entry["source"]["path"] = str(tiny_suite / entry["source"]["path"])
    entry["name"] = f"{NEW[i]}-{i}"
    path = tmp_path / f"new-{i}.yaml"
    path.write_text(yaml.safe_dump({"datasets": [entry]}))
    return path


def run(hub, capsys, *argv):
    capsys.readouterr()
    code = main([*argv, "--hub", hub.url, "--token", hub.admin_token])
    out, err = capsys.readouterr()
    return code, out, err


def update(hub, capsys, current, corpus, out, *extra):
    """Run `zoo update`; the lineage's local datasets resolve against the tiny suite."""
    code, stdout, err = run(
        hub,
        capsys,
        "update",
        current,
        str(corpus),
        "--replay",
        "0.3",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--json",
        *extra,
    )
    assert code == 0, err
    return json.loads(stdout)


@pytest.fixture(scope="module")
def boom_model(hub, tiny_suite, tiny_base, tmp_path_factory):  # noqa: F811
    """A BOOM model of two bags published as exp/upd-boom (tag v1)."""
    import _pytest.capture  # noqa: F401  (capsys is function-scoped: call main directly)

    work = tmp_path_factory.mktemp("upd")
    argv = [
        "boom",
        str(tiny_suite / "corpus.yaml"),
        "--base",
        "zoo/tiny-bert",
        "--ratios",
        "0.5,1.0",
        "--publish",
        "exp/upd-boom",
        "--bag-prefix",
        "exp/upd-bag",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(work / "boom"),
        "--json",
        "--hub",
        hub.url,
        "--token",
        hub.admin_token,
    ]
    assert main(argv) == 0
    return work


def test_three_consecutive_updates(hub, tiny_suite, boom_model, tmp_path, capsys):
    api = hub.api()
    old_task = str(tiny_suite / "in-domain" / "ManPageRetrieval")
    shas = [api.list_repo_refs("exp/upd-boom").tags[0].target_commit]
    for i in range(3):
        corpus = new_corpus(tiny_suite, tmp_path, i)
        task = str(tiny_suite / "new-domain" / NEW[i])
        method = "multislerp" if i == 0 else "opcm"
        got = update(
            hub,
            capsys,
            "exp/upd-boom",
            corpus,
            tmp_path / f"u{i}",
            "--publish",
            "--data-root",
            str(tiny_suite),
            "--method",
            method,
            "--eval-task-dir",
            old_task,
            "--eval-task-dir",
            task,
        )
        assert got["tag"] == f"v{i + 2}" and got["published"].startswith("exp/upd-boom@")
        assert got["current"] == f"exp/upd-boom@{shas[-1]}"
        assert got["update"].startswith("exp/upd-boom-updates@")
        meta = json.loads(
            open(api.hf_hub_download("exp/upd-boom", "zoo.json", revision=got["tag"])).read()
        )
        assert meta["kind"] == "merged" and meta["parents"] == [got["current"], got["update"]]
        upd = json.loads(
            open(
                api.hf_hub_download(
                    *got["update"].split("@")[:1], "zoo.json", revision=got["update"].split("@")[1]
                )
            ).read()
        )
        assert upd["kind"] == "update" and upd["parents"] == [got["current"]]
        assert upd["training"]["replay"] == 0.3
        roles = {d["name"]: d["role"] for d in upd["training"]["datasets"]}
        assert roles[f"{NEW[i]}-{i}"] == "train"
        # the replay covers the BOOM corpus and every earlier update's new data, nothing else
        assert {n for n, r in roles.items() if r == "replay"} == {
            *_bag_datasets(api),
            *(f"{NEW[j]}-{j}" for j in range(i)),
        }
        recipe = yaml.safe_load(
            open(api.hf_hub_download("exp/upd-boom", "recipe.yaml", revision=got["tag"])).read()
        )
        assert recipe["merge_method"] == method
        weights = (
            [m["parameters"]["weight"] for m in recipe["models"]]
            if method == "multislerp"
            else None
        )
        if weights:  # auto: in proportion to the examples seen
            assert weights[1] < weights[0] and abs(sum(weights) - 1) < 1e-6
        shas.append(got["published"].split("@")[1])
    _check_replay_rows_are_refound(api)
    tags = {t.name: t.target_commit for t in api.list_repo_refs("exp/upd-boom").tags}
    assert [tags[f"v{k}"] for k in range(1, 5)] == shas
    assert {t.name for t in api.list_repo_refs("exp/upd-boom-updates").tags} == {"v1", "v2", "v3"}
    card = open(api.hf_hub_download("exp/upd-boom", "README.md", revision="v4")).read()
    mermaid = card.split("```mermaid")[1].split("```")[0]
    for sha in shas[:3]:  # every earlier revision is in the v4 card's history
        assert f"exp/upd-boom@{sha[:8]}" in mermaid
    assert "exp/upd-boom-updates@" in mermaid and "exp/upd-bag-0.5@" in mermaid
    assert ModelCard(card).data.base_model == ["exp/upd-boom", "exp/upd-boom-updates"]
    _check_loads_at_tags(hub, "exp/upd-boom", ["v2", "v3", "v4"])


def _bag_datasets(api):
    meta = json.loads(open(api.hf_hub_download("exp/upd-bag-1.0", "zoo.json")).read())
    return {d["name"] for d in meta["training"]["datasets"]}


def _check_replay_rows_are_refound(api):
    """The first update's replay indices, recomputed here from the bags' records alone."""
    from zoo.data.replay import HistoryDraw, history, replay_indices

    draws = []
    for repo in ("exp/upd-bag-0.5", "exp/upd-bag-1.0"):
        t = json.loads(open(api.hf_hub_download(repo, "zoo.json")).read())["training"]
        draws += [
            HistoryDraw(
                repo,
                d["name"],
                d["fingerprint"],
                d["size"],
                t["ratio"],
                t["seed"],
                False,
                d["indices_sha256"],
            )
            for d in t["datasets"]
        ]
    picked = replay_indices(history(draws), 0.3, seed=0)
    first = api.list_repo_refs("exp/upd-boom-updates").tags
    sha = next(t.target_commit for t in first if t.name == "v1")
    upd = json.loads(
        open(api.hf_hub_download("exp/upd-boom-updates", "zoo.json", revision=sha)).read()
    )
    for d in upd["training"]["datasets"]:
        if d["role"] == "replay":
            assert d["indices_sha256"] == indices_sha256(picked[d["name"]])
            assert d["count"] == bag_count(
                0.3,
                len(
                    np.union1d(
                        draw_indices(d["name"], d["size"], 0.5, 0, False),
                        draw_indices(d["name"], d["size"], 1.0, 0, False),
                    )
                ),
            )


def _check_loads_at_tags(hub, repo, tags):
    code = textwrap.dedent(f"""
        from transformers import AutoModel
        from sentence_transformers import SentenceTransformer
        for tag in {tags!r}:
            AutoModel.from_pretrained({repo!r}, revision=tag)
            st = SentenceTransformer({repo!r}, revision=tag, device="cpu")
            print(tag, st.encode(["x"]).shape[-1])
    """)
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": hub.admin_token,
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [line.split()[0] for line in proc.stdout.splitlines()] == tags


def test_update_error_paths(hub, tiny_suite, tiny_base, boom_model, tmp_path, capsys):
    corpus = new_corpus(tiny_suite, tmp_path, 0)
    cases = [
        (["zoo/tiny-bert", str(corpus), "--replay", "0.1"], "no zoo training lineage"),
        (["exp/upd-boom", str(corpus), "--replay", "0"], "--replay: fraction 0.0 is outside"),
        (["exp/upd-boom", str(corpus), "--replay", "0.1", "--weights", "1,2,3"], "--weights"),
        (
            ["exp/upd-boom", str(corpus), "--replay", "0.1", "--method", "multislerpp"],
            "did you mean 'multislerp'",
        ),
        (
            ["exp/upd-boom", str(tiny_suite / "corpus.yaml"), "--replay", "0.1"],
            "also in the model's history",
        ),
        (["exp/no-such-model", str(corpus), "--replay", "0.1"], "exp/no-such-model"),
    ]
    before = hub.api().list_repo_refs("exp/upd-boom").tags
    for argv, needle in cases:
        code, _, err = run(
            hub,
            capsys,
            "update",
            *argv,
            "--out",
            str(tmp_path / "w"),
            "--data-root",
            str(tiny_suite),
        )
        assert code == 2, (argv, err)
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert hub.api().list_repo_refs("exp/upd-boom").tags == before  # nothing published


def test_community_model_updates_with_an_explicit_replay_corpus(
    hub, tiny_suite, tiny_base, tmp_path, capsys
):
    corpus = new_corpus(tiny_suite, tmp_path, 1)
    got = update(
        hub,
        capsys,
        "zoo/tiny-bert",
        corpus,
        tmp_path / "c",
        "--replay-corpus",
        str(tiny_suite / "corpus.yaml"),
        "--update-repo",
        "exp/community-updates",
    )
    assert got["published"] is None and got["weights"] == [0.5, 0.5]
    assert got["replay_rows"] > 0 and got["new_rows"] > 0


def _main_scores(api, repo, revision):
    return json.loads(open(api.hf_hub_download(repo, "zoo.json", revision=revision)).read())[
        "scores"
    ]


def _row(task, before, after):
    cell = lambda v: "—" if v is None else f"{100 * v:.2f}"  # noqa: E731
    delta = "—" if None in (before, after) else f"{100 * (after - before):+.2f}"
    return f"| {task} | {cell(before)} | {cell(after)} | {delta} |"


def test_update_as_a_pull_request_shows_forgetting_and_gain(
    hub, tiny_suite, boom_model, tmp_path, capsys
):
    api, repo = hub.api(), "exp/upd-boom"
    corpus = new_corpus(tiny_suite, tmp_path, 1)
    spec = yaml.safe_load(corpus.read_text())
    spec["datasets"][0]["name"] = f"{NEW[1]}-pr"  # new to the lineage, whatever ran before
    corpus.write_text(yaml.safe_dump(spec))
    main_sha, tags = api.model_info(repo).sha, api.list_repo_refs(repo).tags
    old_task, new_task = "ManPageRetrieval", NEW[1]
    got = update(
        hub,
        capsys,
        repo,
        corpus,
        tmp_path / "pr",
        "--pr",
        "--data-root",
        str(tiny_suite),
        "--eval-task-dir",
        str(tiny_suite / "in-domain" / old_task),
        "--eval-task-dir",
        str(tiny_suite / "new-domain" / new_task),
    )
    num = int(got["pr"].rsplit("/", 1)[1])
    assert got["tag"] is None and got["pr"] == f"{hub.url}/{repo}/discussions/{num}"
    assert api.model_info(repo).sha == main_sha and api.list_repo_refs(repo).tags == tags
    pr = api.get_discussion_details(repo, num)
    text = pr.events[0].content
    before, after = _main_scores(api, repo, main_sha), _main_scores(api, repo, f"refs/pr/{num}")
    assert set(after) == {old_task, new_task}
    for task in sorted(before.keys() | after.keys()):
        assert _row(task, before.get(task), after.get(task)) in text, text
    assert "**Forgetting** (largest drop)" in text or "no delta to show" in text
    api.merge_pull_request(repo, num)
    assert api.model_info(repo).sha == got["published"].split("@")[1]
    merged = json.loads(open(api.hf_hub_download(repo, "zoo.json")).read())
    assert merged["kind"] == "merged" and merged["parents"] == [got["current"], got["update"]]
