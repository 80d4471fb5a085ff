"""`zoo boom` on the tiny suite: bags, recipe, lock, merged model with complete card and lineage."""

import json

import yaml
from huggingface_hub import ModelCard

from zoo.cli import main


def run_boom(hub, tiny_suite, out, capsys, *extra):
    capsys.readouterr()
    publish = (
        [] if "--publish" in extra else ["--publish", "exp/boom-tiny", "--bls", "exp/bls-tiny"]
    )
    argv = [
        "boom",
        str(tiny_suite / "corpus.yaml"),
        "--base",
        "zoo/tiny-bert",
        "--ratios",
        "0.5,1.0",
        *publish,
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(out),
        "--json",
        "--hub",
        hub.url,
        "--token",
        hub.admin_token,
        *extra,
    ]
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_boom_publishes_everything_and_reuses_bags(hub, tiny_suite, tiny_base, tmp_path, capsys):
    tasks = [
        str(tiny_suite / "in-domain" / "ManPageRetrieval"),
        str(tiny_suite / "ood" / "LocaleBitextMining"),
    ]
    first = run_boom(
        hub, tiny_suite, tmp_path / "w", capsys, *[a for t in tasks for a in ("--eval-task-dir", t)]
    )
    assert [b["published"].split("@")[0] for b in first["bags"]] == ["exp/bag-0.5", "exp/bag-1.0"]
    assert not any(b["reused"] for b in first["bags"])
    api = hub.api()
    files = set(api.list_repo_files("exp/boom-tiny"))
    assert {"recipe.yaml", "zoo.lock.json", "zoo.json", "README.md", "model.safetensors"} <= files
    recipe = yaml.safe_load(open(api.hf_hub_download("exp/boom-tiny", "recipe.yaml")).read())
    assert recipe["merge_method"] == "multislerp"
    assert recipe["zoo"]["select"] == {
        "kind": "bag",
        "experiment": "boom-tiny",
        "order_by": "training.ratio",
        "parameters": {"weight": 1.0},
    }
    lock = json.loads(open(api.hf_hub_download("exp/boom-tiny", "zoo.lock.json")).read())
    bag_refs = sorted(b["published"] for b in first["bags"])
    assert sorted(m["pinned"] for m in lock["models"]) == bag_refs
    assert lock["base"]["pinned"] == tiny_base["ref"]
    card = open(api.hf_hub_download("exp/boom-tiny", "README.md")).read()
    mermaid = card.split("```mermaid")[1].split("```")[0]
    for ref in bag_refs + [tiny_base["ref"]]:
        assert f"{ref.split('@')[0]}@{ref.split('@')[1][:8]}" in mermaid
    assert ModelCard(card).data.base_model == ["exp/bag-0.5", "exp/bag-1.0"]
    # the card shows base vs each bag vs merged for every task, with the plot committed beside it
    header = next(line for line in card.splitlines() if line.startswith("| task | type | metric |"))
    assert header == "| task | type | metric | base | bag-0.5 | bag-1.0 | merged |"
    for task in ("ManPageRetrieval", "LocaleBitextMining"):
        row = next(line for line in card.splitlines() if line.startswith(f"| {task} |"))
        assert row.count("|") == 8 and "—" not in row
    assert {"scores.png", ".eval_results/ManPageRetrieval.yaml", "eval/merged.json"} <= files
    index = ModelCard(card).data.eval_results
    assert {r.dataset_name for r in index} == {"ManPageRetrieval", "LocaleBitextMining"}
    merged_meta = json.loads(open(api.hf_hub_download("exp/boom-tiny", "zoo.json")).read())
    assert set(merged_meta["scores"]) == {"ManPageRetrieval", "LocaleBitextMining"}
    bls = json.loads(open(api.hf_hub_download("exp/bls-tiny", "zoo.json")).read())
    assert bls["labels"]["role"] == "bls-baseline" and bls["training"]["ratio"] == 1.0

    second = run_boom(hub, tiny_suite, tmp_path / "w", capsys)
    assert all(b["reused"] for b in second["bags"])
    assert [b["published"] for b in second["bags"]] == [b["published"] for b in first["bags"]]
    assert second["tag"] == "v2"


def test_card_rerenders_identically_and_updates(hub, tiny_suite, tiny_base, tmp_path, capsys):
    tasks = [str(tiny_suite / "in-domain" / "ManPageRetrieval")]
    run_boom(
        hub,
        tiny_suite,
        tmp_path / "w2",
        capsys,
        "--publish",
        "exp/boom-card",
        "--eval-task-dir",
        tasks[0],
    )
    api = hub.api()
    published = open(api.hf_hub_download("exp/boom-card", "README.md")).read()
    h = ["--hub", hub.url, "--token", hub.admin_token]
    assert main(["card", "exp/boom-card", *h]) == 0
    assert capsys.readouterr().out == published  # same inputs, same bytes
    before = api.model_info("exp/boom-card").sha
    assert main(["card", "exp/boom-card", "--update", *h]) == 0
    assert "up to date" in capsys.readouterr().out
    assert api.model_info("exp/boom-card").sha == before  # nothing changed: no new revision
    # an out-of-date card (edited by hand) is re-rendered and published as a new revision
    api.upload_file(
        path_or_fileobj=published.replace("Merged with", "Hand-edited; merged with").encode(),
        path_in_repo="README.md",
        repo_id="exp/boom-card",
    )
    edited = api.model_info("exp/boom-card").sha
    assert main(["card", "exp/boom-card", "--update", *h]) == 0
    new = capsys.readouterr().out.strip().split("@")[1]
    commits = api.list_repo_commits("exp/boom-card")
    assert commits[0].commit_id == new and commits[1].commit_id == edited
    assert open(api.hf_hub_download("exp/boom-card", "README.md", revision=new)).read() == published


def test_eval_cli_on_a_hub_member_and_bad_input(hub, tiny_base, tiny_suite, capsys):
    h = ["--hub", hub.url, "--token", hub.admin_token]
    task = str(tiny_suite / "in-domain" / "ManPageRetrieval")
    assert main(["eval", "zoo/tiny-bert", "--task-dir", task, "--json", *h]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["revision"] == tiny_base["ref"].split("@")[1]
    assert [t["name"] for t in report["tasks"]] == ["ManPageRetrieval"]
    assert main(["eval", str(tiny_base["path"]), *h]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main(["eval", str(tiny_base["path"]), "--task-dir", "/nonexistent/task"]) == 2
    assert capsys.readouterr().err.startswith("zoo: error:")
