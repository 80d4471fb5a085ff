"""The Hub's disk filling up mid-upload: a clear refusal, the repo unchanged, the server serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi

from tests.hub.conftest import free_port
from tests.sandbox import private_mount
from zoo.cli import main
from zoo.hub.server import HubStore

REPO = Path(__file__).resolve().parents[2]
# Inside a private mount namespace: the prepared hub moves onto a 3 MiB tmpfs, then is served.
SERVE = """
set -e
cp -a "{root}" "{root}.stage"
mount -t tmpfs -o size=3m tmpfs "{root}"
cp -a "{root}.stage/." "{root}/"
exec "{python}" -m zoo.hub.server --root "{root}" --port {port}
"""


@pytest.fixture
def small_disk_hub(tmp_path):
    root = tmp_path / "hub"
    token = HubStore(root).admin_token()
    port = free_port()
    script = SERVE.format(root=root, python=sys.executable, port=port)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [*private_mount(), "sh", "-c", script],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(f"{url}/api/models", timeout=1).status_code == 200:
                break
        except httpx2.HTTPError:
            pass
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the small-disk hub did not start"
        time.sleep(0.1)
    yield url, token
    proc.kill()
    proc.wait(10)


def test_an_upload_that_fills_the_disk_is_refused_cleanly(small_disk_hub, tmp_path, capsys):
    url, token = small_disk_hub
    api = HfApi(endpoint=url, token=token)
    api.create_repo("zoo/full")
    api.upload_file(path_or_fileobj=b"a" * (512 << 10), path_in_repo="fits.bin", repo_id="zoo/full")
    before = api.model_info("zoo/full").sha
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(4 << 20))
    start = time.monotonic()
    assert main(["push", str(folder), "zoo/full", "--hub", url, "--token", token]) == 1
    assert time.monotonic() - start < 30  # 507 is final: no retry storm
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is out of storage" in err and "storage is full" in err, err
    assert api.model_info("zoo/full").sha == before
    assert sorted(api.list_repo_files("zoo/full")) == [".gitattributes", "fits.bin"]
    r = httpx2.get(f"{url}/zoo/full/resolve/main/fits.bin", timeout=10)
    assert r.status_code == 200 and r.content == b"a" * (512 << 10)


def test_a_xet_upload_that_fills_the_disk_is_refused_cleanly(small_disk_hub, tmp_path):
    """Over Xet the client (hf_xet) retries every 5xx, 507 included, for minutes by default;
    a user bounds that with HF_XET_CLIENT_RETRY_MAX_ATTEMPTS. The outcome is as over git-lfs."""
    url, token = small_disk_hub
    api = HfApi(endpoint=url, token=token)
    api.create_repo("zoo/full-xet")
    before = api.model_info("zoo/full-xet").sha
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "big.bin").write_bytes(os.urandom(4 << 20))
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
    env |= {"PYTHONPATH": str(REPO), "HF_XET_CLIENT_RETRY_MAX_ATTEMPTS": "1"}
    argv = ["push", str(folder), "zoo/full-xet", "--hub", url, "--token", token]
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", *argv], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert err.count("\n") == 1 and "is out of storage" in err and "Xet storage is full" in err, err
    assert api.model_info("zoo/full-xet").sha == before
    assert api.list_repo_files("zoo/full-xet") == [".gitattributes"]
