"""kill -9 of `zoo push` mid-upload or mid-commit: no partial commit lands; a rerun completes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

from tests.hub.flaky_proxy import FlakyProxy
from zoo import pipelines
from zoo.hashing import sha256_file
from zoo.hub.server import HubStore
from zoo.hub.session import open_hub

PUSH = "import sys; from zoo.cli import main; sys.exit(main(sys.argv[1:]))"


def _folder(path, seed: int):
    path.mkdir()
    torch.manual_seed(seed)
    save_file({"w": torch.randn(6 << 20)}, path / "model.safetensors")  # 24 MiB: an LFS upload
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "seed": seed}))
    return path


def _start_push(folder, repo, url, token):
    env = {**os.environ, "ZOO_HUB": url, "HF_TOKEN": token}
    return subprocess.Popen(
        [sys.executable, "-c", PUSH, "push", str(folder), repo, "--hub", url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc, proxy, method: bytes, part: bytes, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not proxy.seen(method, part):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"push never sent {method!r} {part!r}"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _assert_head_is_whole(zhub, repo, tmp_path, allowed: dict) -> str:
    """The head is one of the allowed shas and every file there verifies on pull."""
    head = zhub.api.model_info(repo).sha
    assert head in allowed, f"head {head} is neither the old nor the new version"
    pulled = pipelines.pull(zhub, f"{repo}@{head}", tmp_path / f"check-{head[:8]}")
    expected = allowed[head]
    assert (pulled.path / "model.safetensors").read_bytes() == (
        expected / "model.safetensors"
    ).read_bytes()
    return head


@pytest.mark.parametrize("phase", ["mid-upload", "commit-sent"])
def test_push_killed_leaves_no_partial_commit_and_a_rerun_completes(hub, tmp_path, unique, phase):
    repo = f"zoo/push-kill-{unique}"
    old, new = _folder(tmp_path / "v1", 1), _folder(tmp_path / "v2", 2)
    with open_hub(hub.url, hub.admin_token) as zhub:
        v1, _ = pipelines.push(zhub, old, repo)
    proxy = FlakyProxy(hub.url)
    proxy.upload_delay = 0.002 if phase == "mid-upload" else 0.0
    proc = _start_push(new, repo, proxy.url, hub.admin_token)
    if phase == "mid-upload":
        _kill_when(proc, proxy, b"PUT", b"")
    else:
        _kill_when(proc, proxy, b"POST", b"/commit/")
    with open_hub(hub.url, hub.admin_token) as zhub:
        head = _assert_head_is_whole(
            zhub, repo, tmp_path, {v1: old, **_any_new(zhub, repo, v1, new)}
        )
        if phase == "mid-upload":
            assert head == v1
            oid = sha256_file(new / "model.safetensors")
            assert not HubStore(hub.root).objects.path(oid).exists()  # no half object published
        rerun = _start_push(new, repo, hub.url, hub.admin_token)
        assert rerun.wait(120) == 0, rerun.stderr.read().decode()[-2000:]
        final = zhub.api.model_info(repo).sha
        assert final != v1
        _assert_head_is_whole(zhub, repo, tmp_path, {final: new})


def _any_new(zhub, repo, v1, new) -> dict:
    """Whatever head other than v1 exists may only be the complete new version."""
    head = zhub.api.model_info(repo).sha
    return {} if head == v1 else {head: new}
