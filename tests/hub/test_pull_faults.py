"""The network failing under a pull: cut transfers resume; a hub that goes away, one clear error."""

from __future__ import annotations

import json
import time

import pytest
import torch
from safetensors.torch import save_file

from tests.hub.flaky_proxy import FlakyProxy
from zoo import pipelines
from zoo.errors import HubUnreachable
from zoo.hub.session import open_hub

MB = 1 << 20


@pytest.fixture
def published(hub, tmp_path, unique):
    """A 16 MiB member on the session hub; returns (repo_id, sha, source folder)."""
    d = tmp_path / "model"
    d.mkdir()
    save_file({"w": torch.randn(4 * MB)}, d / "model.safetensors")
    (d / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with open_hub(hub.url, hub.admin_token) as zhub:
        sha, _ = pipelines.push(zhub, d, f"zoo/flaky-{unique}")
    return f"zoo/flaky-{unique}", sha, d


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setenv("ZOO_HUB_RETRIES", "3")
    monkeypatch.setenv("ZOO_HUB_BACKOFF", "0.05")


def test_transfers_cut_midway_resume_and_verify(hub, published, tmp_path, fast_retries):
    repo, sha, src = published
    proxy = FlakyProxy(hub.url, match=b"model.safetensors")
    proxy.cut(3, after=3 * MB)
    with open_hub(proxy.url, hub.admin_token) as zhub:
        pulled = pipelines.pull(zhub, f"{repo}@{sha}", tmp_path / "out")
    assert proxy.cut_connections == 3
    assert pulled.sha == sha and pulled.redownloaded == []
    assert (pulled.path / "model.safetensors").read_bytes() == (
        src / "model.safetensors"
    ).read_bytes()


def test_hub_going_away_mid_pull_is_retried_then_one_clear_error(
    hub, published, tmp_path, fast_retries
):
    repo, sha, _ = published
    proxy = FlakyProxy(hub.url, match=b"model.safetensors")
    proxy.cut(1, after=2 * MB)
    proxy.vanish_on_cut = True  # 2 MiB into the weights, the hub goes away for good
    start = time.monotonic()
    with open_hub(proxy.url, hub.admin_token) as zhub:
        with pytest.raises(HubUnreachable) as err:
            pipelines.pull(zhub, f"{repo}@{sha}", tmp_path / "out")
    spent = time.monotonic() - start
    message = str(err.value)
    assert "\n" not in message and f"pull {repo}@{sha}" in message
    assert "gave up after 4 attempts" in message and "unreachable" in message
    # bounded: the client's own retries (5 x 1 s resuming a body; 1+2+4+8+8 s for a metadata HEAD
    # that meets the dead hub) + zoo's 0.05+0.1+0.2 s
    assert spent < 60
    assert not (tmp_path / "out" / "model.safetensors").exists()  # nothing half-written in place


def test_backoff_doubles_between_attempts(monkeypatch):
    from zoo.hub import session

    monkeypatch.setenv("ZOO_HUB_RETRIES", "3")
    monkeypatch.setenv("ZOO_HUB_BACKOFF", "0.5")
    waits, calls = [], []
    monkeypatch.setattr(session.time, "sleep", waits.append)

    def down():
        calls.append(1)
        raise HubUnreachable("pull x: hub h is unreachable (ConnectError)")

    with pytest.raises(HubUnreachable, match="gave up after 4 attempts"):
        session.retrying("pull x", down)
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]


def test_a_pull_that_recovers_within_the_retries_succeeds(monkeypatch):
    from zoo.hub import session

    monkeypatch.setenv("ZOO_HUB_BACKOFF", "0")
    outcomes = [HubUnreachable("down"), HubUnreachable("down"), "done"]

    def flaky():
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    assert session.retrying("pull x", flaky) == "done"
