"""Fixtures for Hub tests: a real embedded Hub server on 127.0.0.1 and its admin token.

`hub` (alias `hub_server`) is one server per test session; tests must use their own repo names
(`unique` helps). Talk to it through the official client with an explicit endpoint:
`HfApi(endpoint=hub.url, token=hub.admin_token)`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi

from zoo.hub.server import HubStore, serve_in_thread

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Hub:
    """A running Hub: its base URL, its storage root and its admin token."""

    url: str
    root: Path
    admin_token: str

    def api(self, token: str | None = None) -> HfApi:
        """An official client pointed at this Hub (admin token unless another is given)."""
        return HfApi(endpoint=self.url, token=token or self.admin_token)

    def add_token(self, name: str, write: bool = True) -> str:
        """Register a user token with the running server's store and return it."""
        return HubStore(self.root).add_token(name, write)


@pytest.fixture(scope="session")
def hub(tmp_path_factory) -> Iterator[Hub]:
    """One embedded Hub server for the whole session."""
    root = tmp_path_factory.mktemp("hub") / "root"
    store = HubStore(root)
    with serve_in_thread(root) as url:
        yield Hub(url, root, store.admin_token())


@pytest.fixture(scope="session")
def hub_server(hub: Hub) -> Hub:
    """Alias of `hub` for client-side tests."""
    return hub


@pytest.fixture
def unique() -> str:
    """A short unique suffix for repo names, so tests sharing the session server never collide."""
    return uuid.uuid4().hex[:10]


def free_port() -> int:
    """Return a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m zoo.hub.server` in a subprocess, for crash tests (start, SIGKILL, restart)."""

    def __init__(self, root: Path):
        self.root, self.port, self.proc = root, free_port(), None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        cmd = [
            sys.executable,
            "-m",
            "zoo.hub.server",
            "--root",
            str(self.root),
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{self.url}/api/models", timeout=1).status_code == 200:
                    return self
            except httpx2.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server subprocess did not start")

    def kill(self) -> None:
        """SIGKILL the server (no cleanup of any kind runs)."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_process(tmp_path) -> Iterator[ServerProcess]:
    """A factory-free helper: a not-yet-started server subprocess on a fresh root."""
    proc = ServerProcess(tmp_path / "hub")
    HubStore(proc.root)
    yield proc
    proc.stop()
