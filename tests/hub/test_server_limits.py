"""The server's defences, measured on real sockets: loopback by default, deadlines, size caps."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from urllib.parse import urlsplit

import httpx2
import psutil
import pytest
from huggingface_hub import HfApi

from zoo.cli import build_parser
from zoo.hub.server import HubStore, serve_in_thread


def _raw(url: str, head: bytes, body: bytes = b"", wait: float = 10.0) -> tuple[int, float]:
    """Send a request by hand (head, then part of a body), return (status, seconds to answer)."""
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=wait) as s:
        start = time.monotonic()
        s.sendall(head + body)
        reply = s.recv(4096)
        return int(reply.split(b" ", 2)[1]), time.monotonic() - start


@pytest.fixture
def strict_hub(tmp_path):
    """A Hub with small deadlines and caps: 1 s body deadline, 1 s upload silence, 1 MiB objects."""
    root = tmp_path / "hub"
    store = HubStore(root)
    with serve_in_thread(
        root, body_timeout_s=1.0, idle_timeout_s=1.0, max_lfs_bytes=1 << 20
    ) as url:
        yield url, store.admin_token(), root


def test_every_way_to_start_the_server_binds_loopback(server_process):
    server = server_process.start()  # `python -m zoo.hub.server`, no --host
    listening = [
        c.laddr
        for c in psutil.Process(server.proc.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    ]
    assert [a.ip for a in listening] == ["127.0.0.1"]
    args = build_parser().parse_args(["hub", "serve", "--root", "x"])
    assert args.host == "127.0.0.1"


def test_a_body_that_never_arrives_is_cut_off_with_408(strict_hub):
    url, token, _ = strict_hub
    head = (
        b"POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 200\r\n\r\n"
    )
    status, seconds = _raw(url, head, b'{"name": "slow"')
    assert status == 408 and 0.9 < seconds < 5
    assert httpx2.get(f"{url}/api/models", timeout=5).status_code == 200  # still serving


def test_a_stalled_lfs_upload_is_cut_off_and_stores_nothing(strict_hub):
    url, token, root = strict_hub
    api = HfApi(endpoint=url, token=token)
    api.create_repo("zoo/stall")
    files = api.list_repo_files("zoo/stall")
    data = b"x" * 4096
    oid = hashlib.sha256(data).hexdigest()
    batch = httpx2.post(
        f"{url}/zoo/stall.git/info/lfs/objects/batch",
        timeout=10,
        headers={"authorization": f"Bearer {token}"},
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    ).json()
    href = urlsplit(batch["objects"][0]["actions"]["upload"]["href"])
    path = f"{href.path}?{href.query}".encode()
    head = b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"
    status, seconds = _raw(url, head, data[:1000])
    assert status == 408 and 0.9 < seconds < 5
    assert not HubStore(root).objects.path(oid).exists()
    assert api.list_repo_files("zoo/stall") == files


def test_an_object_over_the_cap_is_refused_and_the_repo_is_unchanged(strict_hub):
    url, token, _ = strict_hub
    api = HfApi(endpoint=url, token=token)
    api.create_repo("zoo/big")
    before = api.model_info("zoo/big").sha
    with pytest.raises(ValueError, match="larger than this Hub accepts"):  # the client's own error
        api.upload_file(path_or_fileobj=b"y" * (2 << 20), path_in_repo="big.bin", repo_id="zoo/big")
    assert api.model_info("zoo/big").sha == before


def test_oversized_headers_are_refused_and_the_server_lives_on(strict_hub):
    url = strict_hub[0]
    head = b"GET /api/models HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * (200 << 10) + b"\r\n\r\n"
    target = urlsplit(url)
    with socket.create_connection((target.hostname, target.port), timeout=10) as s:
        try:
            s.sendall(head)
            reply = s.recv(4096)
        except ConnectionError:
            reply = b""
    assert reply == b"" or int(reply.split(b" ", 2)[1]) in (400, 413, 431)
    assert httpx2.get(f"{url}/api/models", timeout=5).status_code == 200


def test_zoo_push_over_the_cap_is_one_line_exit_2(strict_hub, tmp_path, capsys):
    from zoo.cli import main

    url, token, _ = strict_hub
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"z" * (2 << 20))
    assert main(["push", str(folder), "zoo/too-big", "--hub", url, "--token", token]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "upload refused" in err and "larger than this Hub accepts" in err
    )


def test_a_file_over_the_cap_is_refused_over_xet_too(strict_hub, tmp_path, capsys, monkeypatch):
    """The cap of git-lfs objects holds for files that come through Xet (each xorb is under it:
    the shard that describes the whole file is refused, 413), for the client and for zoo push."""
    from huggingface_hub import constants

    from zoo.cli import main

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    url, token, root = strict_hub
    api = HfApi(endpoint=url, token=token)
    api.create_repo("zoo/big-xet")
    before = api.model_info("zoo/big-xet").sha
    with pytest.raises(ConnectionError, match="413"):  # hf_xet reports the CAS's status so
        api.upload_file(
            path_or_fileobj=os.urandom(2 << 20), path_in_repo="b.bin", repo_id="zoo/big-xet"
        )
    assert api.model_info("zoo/big-xet").sha == before
    assert not list((root / "xet").glob("sha256/*/*")), "no file over the cap was rebuilt"
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(os.urandom(2 << 20))
    assert main(["push", str(folder), "zoo/too-big-xet", "--hub", url, "--token", token]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "upload refused" in err and "larger than this Hub accepts" in err
    )
