"""`zoo merge` end to end on tiny BERT bags published on the embedded Hub."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from huggingface_hub import ModelCard

from tests.tiny import load_all
from zoo.cli import main
from zoo.errors import UserError
from zoo.hub.session import open_hub_if
from zoo.pipelines.merging import MergeOptions, merge, prepare_merge
from zoo.recipe.lock import load_lock

SELECT_A = """\
merge_method: {method}
base_model: zoo/tiny-base
zoo:
  select: {{kind: bag, experiment: exp-a, order_by: training.ratio, parameters: {{weight: 1.0}}}}
  publish: {{repo_id: zoo/tiny-{method}}}
"""


def run_merge(hub, recipe=None, *, lock=None, token=None, **options):
    """The merge pipeline as `zoo merge` runs it: prepared, then run with the Hub it needs open."""
    job = prepare_merge(recipe, lock, MergeOptions(**options))
    with open_hub_if(job.needs_hub, hub, token, create=job.writes_hub) as h:
        return merge(h, job)


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_select_picks_exactly_the_experiments_bags(hub, published, tmp_path):
    recipe = write(
        tmp_path, SELECT_A.format(method="linear").replace("base_model: zoo/tiny-base\n", "")
    )
    outcome = run_merge(
        hub.url, recipe, out=tmp_path / "out", token=hub.admin_token, progress=False
    )
    want = sorted(f"{r}@{s}" for r, s in published["bags"].items() if "exp-a" in r)
    assert sorted(m.pinned for m in outcome.lock.models) == want
    assert [m.requested for m in outcome.lock.models] == [m.pinned for m in outcome.lock.models]
    assert outcome.lock.base is None
    bags = [load_all(hub_path) for hub_path in _pulled(hub, want)]
    merged = load_all(tmp_path / "out")
    for name, tensor in merged.items():
        torch.testing.assert_close(tensor, sum(b[name] for b in bags) / 3, rtol=0, atol=1e-6)


def _pulled(hub, refs):
    from zoo.hub.session import open_hub
    from zoo.pipelines import pull

    with open_hub(hub.url, hub.admin_token) as h:
        return [pull(h, ref).path for ref in refs]


def test_lock_reproduces_byte_for_byte(hub, published, tmp_path):
    recipe = write(tmp_path, SELECT_A.format(method="multislerp"))
    first = run_merge(hub.url, recipe, out=tmp_path / "a", token=hub.admin_token, progress=False)
    again = run_merge(
        hub.url,
        lock=tmp_path / "a" / "zoo.lock.json",
        out=tmp_path / "b",
        token=hub.admin_token,
        progress=False,
    )
    assert (tmp_path / "a/model.safetensors").read_bytes() == (
        tmp_path / "b/model.safetensors"
    ).read_bytes()
    assert again.lock == first.lock and again.out == tmp_path / "b"
    assert load_lock(tmp_path / "b/zoo.lock.json") == first.lock
    assert (tmp_path / "b" / "recipe.yaml").read_text() == recipe.read_text()


def test_lock_refuses_changed_inputs(hub, published, tmp_path):
    recipe = write(tmp_path, SELECT_A.format(method="multislerp"))
    run_merge(hub.url, recipe, out=tmp_path / "a", token=hub.admin_token, progress=False)
    lock = json.loads((tmp_path / "a/zoo.lock.json").read_text())
    lock["models"][0]["files"]["model.safetensors"] = "0" * 64
    (tmp_path / "bad.lock.json").write_text(json.dumps(lock))
    with pytest.raises(UserError, match="the lock says"):
        run_merge(
            hub.url,
            lock=tmp_path / "bad.lock.json",
            out=tmp_path / "c",
            token=hub.admin_token,
        )
    assert not (tmp_path / "c").exists()


def test_publish_loads_by_repo_id_and_keeps_history(hub, published, tmp_path):
    recipe = write(tmp_path, SELECT_A.format(method="multislerp"))
    first = run_merge(
        hub.url,
        recipe,
        out=tmp_path / "m1",
        publish=True,
        token=hub.admin_token,
        progress=False,
    )
    second = run_merge(
        hub.url,
        recipe,
        out=tmp_path / "m2",
        publish=True,
        token=hub.admin_token,
        progress=False,
    )
    assert (first.tag, second.tag) == ("v1", "v2")
    api = hub.api()
    tags = {t.name: t.target_commit for t in api.list_repo_refs("zoo/tiny-multislerp").tags}
    assert tags == {"v1": first.published.split("@")[1], "v2": second.published.split("@")[1]}
    files = set(api.list_repo_files("zoo/tiny-multislerp", revision="v1"))
    assert {
        "recipe.yaml",
        "zoo.lock.json",
        "zoo.json",
        "README.md",
        "modules.json",
        "1_Pooling/config.json",
        "model.safetensors",
    } <= files
    meta = json.loads(
        open(api.hf_hub_download("zoo/tiny-multislerp", "zoo.json", revision="v1")).read()
    )
    assert meta["kind"] == "merged" and sorted(meta["parents"]) == sorted(
        f"{r}@{s}" for r, s in published["bags"].items() if "exp-a" in r
    )
    readme = open(api.hf_hub_download("zoo/tiny-multislerp", "README.md", revision="v1")).read()
    assert "base_model_relation: merge" in readme and "merge_method: multislerp" in readme
    card = ModelCard(readme)
    assert card.data.base_model_relation == "merge"
    assert card.data.base_model == sorted(r for r in published["bags"] if "exp-a" in r)
    _check_loads_from_hub(hub, "zoo/tiny-multislerp", tmp_path / "m1")


def _check_loads_from_hub(hub, repo, local):
    code = textwrap.dedent(f"""
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers import AutoModel, AutoTokenizer
        texts = ["def add(a, b): return a + b", "open a file for reading"]
        st = SentenceTransformer({repo!r}, device="cpu")
        emb = st.encode(texts, convert_to_tensor=True)
        assert any(type(m).__name__ == "Normalize" for m in st), "Normalize survived"
        tok, model = AutoTokenizer.from_pretrained({repo!r}), AutoModel.from_pretrained({repo!r})
        batch = tok(texts, padding=True, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        auto = torch.nn.functional.normalize(hidden[:, 0], dim=-1)  # the tiny BERT pools CLS
        local = SentenceTransformer({str(local)!r}, device="cpu")
        local = local.encode(texts, convert_to_tensor=True)
        print(float((auto - emb).abs().max()), float((local - emb).abs().max()))
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
    auto_diff, local_diff = map(float, proc.stdout.split()[-2:])
    assert auto_diff < 1e-5 and local_diff == 0.0


def test_dry_run_reads_no_weights(hub, published, tmp_path, capsys):
    recipe = write(
        tmp_path, SELECT_A.format(method="ties").replace("weight: 1.0", "weight: 1.0, density: 0.5")
    )
    code = main(
        ["merge", str(recipe), "--dry-run", "--json", "--hub", hub.url, "--token", hub.admin_token]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    plan = json.loads(out)
    assert plan["method"] == "ties" and len(plan["models"]) == 3
    assert all(len(m["ref"].split("@")[1]) == 40 for m in plan["models"])
    assert plan["estimated_peak_bytes"] > plan["out_bytes"] > 0
    assert not (tmp_path / "merged").exists()


CLI_BAD = [
    (
        "unknown method",
        "merge_method: lnear\nmodels:\n  - model: zoo/tiny-base\n",
        "did you mean 'linear'",
    ),
    (
        "unknown repo",
        "merge_method: linear\nmodels:\n  - model: zoo/nope\n    parameters: {weight: 1}\n",
        "not found",
    ),
    (
        "unknown revision",
        "merge_method: linear\n"
        "models:\n  - model: zoo/tiny-base@nope\n    parameters: {weight: 1}\n",
        "revision not found",
    ),
    (
        "select matches nothing",
        SELECT_A.format(method="multislerp").replace("exp-a", "exp-zzz"),
        "matched no member",
    ),
    (
        "publish without block",
        "merge_method: linear\nmodels:\n  - model: zoo/tiny-base\n    parameters: {weight: 1}\n",
        "zoo.publish",
    ),
]


@pytest.mark.parametrize("case, text, needle", CLI_BAD, ids=[c[0] for c in CLI_BAD])
def test_cli_bad_input(hub, published, tmp_path, capsys, case, text, needle):
    recipe = write(tmp_path, text)
    argv = [
        "merge",
        str(recipe),
        "--out",
        str(tmp_path / "out"),
        "--hub",
        hub.url,
        "--token",
        hub.admin_token,
    ]
    code = main(argv + (["--publish"] if case == "publish without block" else []))
    _, err = capsys.readouterr()
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_cli_missing_recipe_and_lock(capsys, tmp_path):
    assert main(["merge", str(tmp_path / "none.yaml")]) == 2
    assert "recipe not found" in capsys.readouterr().err
    assert main(["merge", "--lock", str(tmp_path / "none.json")]) == 2
    assert "lock file not found" in capsys.readouterr().err


LOCAL = """\
merge_method: linear
models:
  - model: {a}
    parameters: {{weight: 1.0}}
  - model: {b}
    parameters: {{weight: 1.0}}
zoo:
  publish: {{repo_id: local/tiny-linear}}
"""


def _local_recipe(families, tmp_path, monkeypatch, first: int):
    """Two tiny BERT variants (from `first`) and the LOCAL recipe over them, run from tmp_path."""
    monkeypatch.chdir(tmp_path)
    a, b = families("bert")["variants"][first : first + 2]
    return a, b, write(tmp_path, LOCAL.format(a=a, b=b))


def test_publishing_local_inputs_pushes_them_with_push_inputs(
    families, tmp_path, capsys, monkeypatch
):
    a, b, recipe = _local_recipe(families, tmp_path, monkeypatch, 0)
    new_hub = tmp_path / "new-hub"
    argv = ["merge", str(recipe), "--publish", "--json", "--quiet", "--hub", str(new_hub)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--push-inputs" in err and str(a) in err and err.count("\n") == 1, err
    assert not new_hub.exists() and not (tmp_path / "merged").exists()  # refused before any work
    assert main([*argv, "--push-inputs"]) == 0, capsys.readouterr().err
    published = json.loads(capsys.readouterr().out)["published"]
    out = tmp_path / "merged" / "local--tiny-linear"  # the default output
    lock = load_lock(out / "zoo.lock.json")
    assert [m.requested for m in lock.models] == [str(a), str(b)]
    assert [m.pinned.split("@")[0] for m in lock.models] == [f"local/{a.name}", f"local/{b.name}"]
    meta = json.loads((out / "zoo.json").read_text())
    assert meta["kind"] == "merged" and meta["parents"] == [m.pinned for m in lock.models]
    assert main(["show", published, "--json", "--hub", str(new_hub)]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["parents"] == meta["parents"]
    assert main(["show", lock.models[0].pinned, "--json", "--hub", str(new_hub)]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["kind"] == "base"  # no zoo.json: base


def test_the_same_publish_runs_again_into_its_default_output(
    families, tmp_path, capsys, monkeypatch
):
    a, b, recipe = _local_recipe(families, tmp_path, monkeypatch, 1)
    argv = ["merge", str(recipe), "--publish", "--push-inputs", "--json", "--quiet"]
    argv += ["--hub", str(tmp_path / "hub")]
    tags = []
    for _ in range(2):
        assert main(argv) == 0, capsys.readouterr().err
        tags.append(json.loads(capsys.readouterr().out)["tag"])
    assert tags == ["v1", "v2"]
    assert [p.name for p in (tmp_path / "merged").iterdir()] == ["local--tiny-linear"]
    assert (tmp_path / "merged" / "local--tiny-linear" / "model.safetensors").is_file()
    assert main([*argv, "--out", str(tmp_path / "merged" / "local--tiny-linear")]) == 2
    assert "already exists" in capsys.readouterr().err  # an explicit --out is never replaced


def test_a_default_output_that_zoo_did_not_write_is_refused(
    families, tmp_path, capsys, monkeypatch
):
    a, b, recipe = _local_recipe(families, tmp_path, monkeypatch, 0)
    mine = tmp_path / "merged" / "local--tiny-linear"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    assert main(["merge", str(recipe), "--quiet"]) == 2
    assert "not a zoo merge output" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "mine"


PR_RECIPE = """\
merge_method: linear
models:
  - model: {a}
    parameters: {{weight: {wa}}}
  - model: {b}
    parameters: {{weight: 1.0}}
zoo:
  publish: {{repo_id: zoo/tiny-pr-{unique}}}
  eval: {{task_dirs: [{dev}]}}
"""


def _scores_at(api, repo_id, revision):
    path = api.hf_hub_download(repo_id, "zoo.json", revision=revision)
    return json.loads(open(path).read())["scores"]


def test_publish_as_a_pull_request_then_merge_it(hub, published, tmp_path, capsys):
    from tests.eval import helpers

    dev = helpers.sts_task(tmp_path / "dev" / "HandSTS")
    a, b = sorted(f"{r}@{s}" for r, s in published["bags"].items() if "exp-a" in r)[:2]
    unique = os.urandom(4).hex()
    repo_id, api = f"zoo/tiny-pr-{unique}", hub.api()
    argv = ["--json", "--quiet", "--hub", hub.url, "--token", hub.admin_token]
    first = write(tmp_path, PR_RECIPE.format(a=a, b=b, wa=1.0, unique=unique, dev=dev), "1.yaml")
    assert main(["merge", str(first), "--pr", *argv]) == 2  # --pr needs --publish
    assert "needs --publish" in capsys.readouterr().err
    assert main(["merge", str(first), "--publish", "--out", str(tmp_path / "1"), *argv]) == 0
    main_sha = json.loads(capsys.readouterr().out)["published"].split("@")[1]
    second = write(tmp_path, PR_RECIPE.format(a=a, b=b, wa=3.0, unique=unique, dev=dev), "2.yaml")
    assert (
        main(["merge", str(second), "--publish", "--pr", "--out", str(tmp_path / "2"), *argv]) == 0
    )
    got = json.loads(capsys.readouterr().out)
    assert got["tag"] is None and got["pr"] == f"{hub.url}/{repo_id}/discussions/1"
    assert api.model_info(repo_id).sha == main_sha  # main is untouched until the merge
    pr = api.get_discussion_details(repo_id, 1)
    assert pr.is_pull_request and pr.status == "open"
    before = _scores_at(api, repo_id, main_sha)["HandSTS"]
    after = _scores_at(api, repo_id, "refs/pr/1")["HandSTS"]
    row = f"| HandSTS | {100 * before:.2f} | {100 * after:.2f} | {100 * (after - before):+.2f} |"
    assert row in pr.events[0].content, pr.events[0].content
    assert "**Forgetting** (largest drop)" in pr.events[0].content
    api.merge_pull_request(repo_id, 1)
    assert api.model_info(repo_id).sha == got["published"].split("@")[1]
    assert _scores_at(api, repo_id, "main") == {"HandSTS": after}


def test_a_sliced_recipe_of_hub_models_opens_the_hub_pins_and_merges(hub, published, tmp_path):
    """Slice sources named by repo id are Hub inputs: the CLI opens the Hub, the lock pins them."""
    text = (
        "merge_method: linear\nslices:\n"
        "  - sources:\n"
        "      - {model: zoo/exp-a-bag-0, layer_range: [0, 2], parameters: {weight: 0.5}}\n"
        "      - {model: zoo/exp-a-bag-1, layer_range: [0, 2], parameters: {weight: 0.5}}\n"
        "  - sources:\n"
        "      - {model: zoo/tiny-base, layer_range: [1, 2], parameters: {weight: 1.0}}\n"
    )
    recipe = write(tmp_path, text)
    out = tmp_path / "sliced"
    args = ["merge", str(recipe), "--out", str(out), "--quiet"]
    assert main([*args, "--hub", hub.url, "--token", hub.admin_token]) == 0
    lock = json.loads((out / "zoo.lock.json").read_text())
    pinned = sorted(s["model"] for sl in lock["slices"] for s in sl["sources"])
    assert all(len(p.split("@")[1]) == 40 for p in pinned), pinned
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 3
