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


_KNOWN: set[str] = set()  # the Hub URLs zoo/known was already created on


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
