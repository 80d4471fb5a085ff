"""Fixtures of the eval tests: small task folders cut from the tiny suite, and no network.

The tiny suite and the tiny BERT (`tiny_suite`, `tiny_bert`) are tests/conftest.py's; expensive
things are session-scoped; the real MiniLM lives in test_minilm.py only.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from tests.eval import helpers


@pytest.fixture(scope="session")
def suite_dirs(tiny_suite) -> list[Path]:
    """Every tiny-suite task folder, sorted by path."""
    return sorted(p.parent for p in tiny_suite.glob("*/*/task.yaml"))


@pytest.fixture(scope="session")
def sts_dir(tmp_path_factory) -> Path:
    return helpers.sts_task(tmp_path_factory.mktemp("sts") / "HandSTS")


@pytest.fixture(scope="session")
def small_dirs(tiny_suite, sts_dir, tmp_path_factory) -> dict[str, Path]:
    """One small folder per task type: short-text tiny-suite tasks (long ones trimmed) + STS."""
    root, suite = tmp_path_factory.mktemp("small"), tiny_suite
    return {
        "retrieval": helpers.trimmed_copy(
            suite / "in-domain/ManPageRetrieval", root / "ManPageRetrieval", 20, distractors=20
        ),
        "sts": sts_dir,
        "pair_classification": suite / "in-domain/ManSeeAlsoPairs",
        "classification": suite / "new-domain/BibleGenreClassification",
        "clustering": suite / "in-domain/PyPackageClustering",
        "bitext_mining": suite / "ood/LocaleBitextMining",
    }


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return isinstance(address, (str, bytes))  # AF_UNIX paths are local


@pytest.fixture
def no_network(monkeypatch):
    """HF_HUB_OFFLINE=1 and a socket guard: any non-loopback connect or DNS lookup raises.

    Returns the list of refused addresses, so a test can also assert it stayed empty.
    """
    refused: list = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not _is_loopback(address):
            refused.append(address)
            raise OSError(f"network disabled in this test: connect to {address!r}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback((host,)):
            refused.append(host)
            raise OSError(f"network disabled in this test: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return refused
