"""The zoo CLI on the Hub commands: outputs, and one-line errors with exit 2 for bad input."""

import json
import subprocess
import sys

import pytest

from zoo.cli import main

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "bert"}')
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_push_ls_show_pull(capsys, hub, folder, tmp_path):
    h = ["--hub", hub.url, "--token", hub.admin_token]
    code, out, _ = run(
        capsys, "push", folder, "zoo/cli-model", "--meta", "team=cli-x", "--json", *h
    )
    assert code == 0
    sha = json.loads(out)["sha"]
    code, out, _ = run(capsys, "ls", "--json", "--meta", "team=cli-x", *h)
    assert code == 0 and [r["sha"] for r in json.loads(out)] == [sha]
    code, out, _ = run(capsys, "ls", *h)
    assert "zoo/cli-model" in out and sha[:8] in out
    code, out, _ = run(capsys, "show", f"zoo/cli-model@{sha}", *h)
    assert code == 0 and f"zoo/cli-model@{sha}" in out and "kind: base" in out
    code, out, _ = run(capsys, "pull", "zoo/cli-model", "--to", tmp_path / "p", *h)
    assert code == 0 and out.strip() == str(tmp_path / "p")
    assert (tmp_path / "p" / "config.json").read_text() == '{"model_type": "bert"}'


BAD = [
    ("push missing folder", ["push", "{tmp}/nope", "zoo/a"], "folder not found"),
    ("push malformed repo id", ["push", "{folder}", "not a repo"], "invalid repo id"),
    ("push bad kind", ["push", "{folder}", "zoo/a", "--kind", "bagg"], "invalid choice"),
    ("push kind needs training", ["push", "{folder}", "zoo/a", "--kind", "bag"], "training"),
    ("push bad meta", ["push", "{folder}", "zoo/a", "--meta", "novalue"], "KEY=VALUE"),
    ("push bad token", ["push", "{folder}", "zoo/a", "--token", "hf_wrong"], "token"),
    ("show malformed repo id", ["show", "zoo/a/b"], "invalid repo id"),
    ("show unknown repo", ["show", "zoo/nothing-here"], "not found"),
    ("show unknown revision", ["show", "zoo/known@nosuchbranch"], "revision not found"),
    ("show malformed revision", ["show", "zoo/known@a..b"], "invalid revision"),
    ("pull unknown revision", ["pull", "zoo/known@v9"], "revision not found"),
    ("pull malformed repo id", ["pull", "zoo/-bad-"], "invalid repo id"),
    ("pull to a file", ["pull", "zoo/known", "--to", "{folder}/config.json"], "not a directory"),
    ("pull bad token", ["pull", "zoo/known", "--token", "hf_wrong"], "token"),
    ("ls bad token", ["ls", "--token", "hf_wrong"], "token"),
    ("ls bad kind", ["ls", "--kind", "nope"], "invalid choice"),
    ("ls missing hub dir", ["ls", "--hub", "{tmp}/no-hub"], "no embedded hub"),
    ("ls missing hub dir, given first", ["--hub", "{tmp}/no-hub", "ls"], "no embedded hub"),
    ("pull bad token, given first", ["--token", "hf_wrong", "pull", "zoo/known"], "token"),
    ("serve on a --hub URL", ["--hub", "http://x", "hub", "serve"], "hub directory"),
    ("serve on a URL", ["hub", "serve", "--root", "http://x"], "hub directory"),
    ("serve bad port", ["hub", "serve", "--root", "{tmp}/h", "--port", "70000"], "port"),
    ("token bad name", ["hub", "token", "add", "bad name!", "--root", "{tmp}/h"], "name"),
]


@pytest.mark.parametrize("case, argv, needle", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_exit_2(capsys, hub, folder, tmp_path, case, argv, needle):
    if not any(a.startswith("--hub") for a in argv) and argv[0] != "hub":
        argv = [*argv, "--hub", hub.url]
        if "--token" not in argv:
            argv += ["--token", hub.admin_token]
    _known(hub)
    argv = [a.format(tmp=tmp_path, folder=folder) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("zoo: error: ") and needle in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "cmd", [["ls"], ["show", "zoo/a"], ["pull", "zoo/a"], ["push", "{folder}", "zoo/a"]]
)
def test_unreachable_hub_is_one_line_exit_2(capsys, folder, cmd):
    code, _, err = run(capsys, *[c.format(folder=folder) for c in cmd], "--hub", UNREACHABLE)
    assert code == 2 and "unreachable" in err and err.count("\n") == 1


def test_installed_console_script(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "show", "zoo/x", "--hub", UNREACHABLE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        proc.returncode == 2
        and proc.stderr.startswith("zoo: error:")
        and "Traceback" not in proc.stderr
    )


_KNOWN: set[str] = set()  # hub URLs where zoo/known exists


def _known(hub):
    if hub.url in _KNOWN:
        return
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=hub.admin_token)
    api.create_repo("zoo/known", exist_ok=True)
    api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="zoo/known")
    _KNOWN.add(hub.url)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_weights_are_never_published(capsys, hub, folder, bad):
    import torch
    from safetensors.torch import save_file

    (folder / "2_Dense").mkdir()
    save_file(
        {"linear.weight": torch.tensor([[1.0, bad]])}, folder / "2_Dense" / "model.safetensors"
    )
    repo = f"zoo/nonfinite-{abs(hash(str(bad))) % 10_000}"
    code, _, err = run(capsys, "push", folder, repo, "--hub", hub.url, "--token", hub.admin_token)
    assert code == 2 and err.count("\n") == 1
    assert "NaN or Inf weights (2_Dense/model.safetensors: linear.weight)" in err
    assert not hub.api().repo_exists(repo)


def test_global_options_before_and_after_the_subcommand(capsys, folder, tmp_path):
    d = tmp_path / "hub"
    code, out, _ = run(capsys, "--hub", d, "push", folder, "zoo/first", "--json")  # creates d
    assert code == 0 and json.loads(out)["repo_id"] == "zoo/first"
    for argv in (
        ["--hub", d, "ls"],
        ["ls", "--hub", d],
        ["--hub", tmp_path / "no", "ls", "--hub", d],
    ):
        code, out, err = run(capsys, *argv, "--json")
        assert code == 0, err
        assert [r["repo_id"] for r in json.loads(out)] == ["zoo/first"]
    code, _, err = run(capsys, "--hub", d, "ls", "--hub", tmp_path / "no")  # the later one wins
    assert code == 2 and "no embedded hub" in err


def test_global_hub_before_the_subcommand_through_the_console_script(capsys, folder, tmp_path):
    d = tmp_path / "hub"
    assert run(capsys, "push", folder, "zoo/scripted", "--hub", d)[0] == 0
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "--hub", str(d), "ls", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [r["repo_id"] for r in json.loads(proc.stdout)] == ["zoo/scripted"]


def test_global_token_before_the_subcommand(capsys, hub, folder, unique):
    repo = f"zoo/token-first-{unique}"
    code, out, err = run(capsys, "--token", hub.admin_token, "push", folder, repo, "--hub", hub.url)
    assert code == 0, err
    assert hub.api().repo_exists(repo)


@pytest.mark.parametrize(
    "where", [["--debug", "show", "zoo/x"], ["show", "zoo/x", "--debug"]], ids=["first", "after"]
)
def test_debug_shows_the_traceback_before_or_after_the_subcommand(capsys, where):
    code, _, err = run(capsys, *where, "--hub", UNREACHABLE)
    assert code == 2 and err.startswith("Traceback (most recent call last):")
    assert err.splitlines()[-1].startswith("zoo: error: ") and "unreachable" in err


LEAVES = [
    ["hub", "serve"],
    ["hub", "token", "add"],
    ["push"],
    ["ls"],
    ["show"],
    ["pull"],
    ["merge"],
    ["data", "suite", "build"],
    ["bag", "train"],
    ["boom"],
    ["update"],
    ["eval"],
    ["card"],
]


@pytest.mark.parametrize("cmd", LEAVES, ids=[" ".join(c) for c in LEAVES])
def test_every_command_lists_the_global_options(capsys, cmd):
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0
    options = out.split("global options:")[1]
    assert all(o in options for o in ("--hub HUB", "--token TOKEN", "--debug"))


def test_push_of_an_outside_checkpoint_defaults_to_kind_base(capsys, hub, folder, unique):
    """A folder zoo did not make (no zoo.json): no --kind needed, it is published as kind base."""
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "", "type": "x"}]')
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nbase_model: nreimers/MiniLM-L6-H384-uncased\n"
        "tags:\n- sentence-transformers\n---\n# someone else's model\n"
    )
    h = ["--hub", hub.url, "--token", hub.admin_token]
    code, out, err = run(capsys, "push", folder, f"zoo/outside-{unique}", "--json", *h)
    assert code == 0, err
    assert json.loads(out)["kind"] == "base"
    code, out, _ = run(capsys, "show", f"zoo/outside-{unique}", "--json", *h)
    assert (
        json.loads(out)["meta"]["kind"] == "base" and json.loads(out)["meta"]["base_model"] is None
    )
    code, out, _ = run(capsys, "push", "--help")
    assert "base for a folder without one" in " ".join(out.split())


def test_hub_commands_take_the_global_hub_as_their_root(capsys, tmp_path):
    from zoo.hub.server import HubStore

    d = tmp_path / "hub"
    code, out, err = run(capsys, "--hub", d, "hub", "token", "add", "alice", "--write")
    assert code == 0, err
    user = HubStore(d).auth.authenticate(out.strip())
    assert (user.name, user.write) == ("alice", True)
