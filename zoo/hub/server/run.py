"""Run the Hub server: blocking (`zoo hub serve`) or in a background thread (tests, CLI commands).

uvicorn serves the app with a keep-alive timeout (Limits.keep_alive_s) and an h11 header-size
cap; per-request body caps and deadlines live in the app (http.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from zoo.hub.server.app import create_app
from zoo.hub.server.http import Limits

_START_TIMEOUT_S = 30.0


def _config(root: Path, host: str, port: int, quiet: bool, limits: dict) -> uvicorn.Config:
    app = create_app(Path(root), **limits)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        timeout_keep_alive=limits.get("keep_alive_s", Limits.keep_alive_s),
        h11_max_incomplete_event_size=64 * 1024,
        server_header=False,
    )


def serve(root: Path, host: str = "127.0.0.1", port: int = 8000, **limits) -> None:
    """Serve the Hub stored in `root` until interrupted (SIGINT/SIGTERM stop it cleanly)."""
    uvicorn.Server(_config(root, host, port, quiet=False, limits=limits)).run()


def base_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches the server at (0.0.0.0 -> 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def serve_in_thread(
    root: Path, host: str = "127.0.0.1", port: int = 0, quiet: bool = True, **limits
) -> Iterator[str]:
    """Serve `root` from a daemon thread; yield the base URL ("http://127.0.0.1:NNNNN").

    port 0 picks a free port (the socket is bound here, so there is no race). On exit the
    server finishes in-flight requests and the thread is joined.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(_config(root, host, sock.getsockname()[1], quiet, limits))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="zoo-hub"
    )
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the Hub server for {root} did not start")
        time.sleep(0.01)
    try:
        yield base_url(host, sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
