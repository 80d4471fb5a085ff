"""A TCP proxy in front of a Hub that slows, cuts or loses the connection: real network failures.

`cut(n, after)` makes the next n connections that send a GET whose request line contains `match`
drop `after` response bytes later (then vanish, with vanish_on_cut); `vanish()` closes every
connection and the listener (connection refused from then on), as a hub that goes away does.
`upload_delay` slows the uplink; `requests` and `seen()` tell a test how far a client has got.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit


class FlakyProxy:
    def __init__(self, upstream: str, match: bytes = b"/resolve/"):
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        self.match = match
        self.cuts: list[int] = []
        self.vanish_on_cut = False
        self.upload_delay = 0.0  # seconds slept per chunk sent to the hub (slow uplink)
        self.requests: list[bytes] = []  # request lines seen, in order
        self.gone = False
        self.connections = 0
        self.cut_connections = 0
        self._live: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, n: int, after: int) -> None:
        """Drop the next n matching connections after `after` bytes of response."""
        with self._lock:
            self.cuts += [after] * n

    def vanish(self) -> None:
        """Close the listener and every open connection: the hub is gone."""
        with self._lock:
            self.gone = True
            _close(self._listener)
            for s in self._live:
                _close(s)

    def _matches(self, data: bytes) -> bool:
        line = data.split(b"\r\n", 1)[0]
        return line.startswith(b"GET ") and self.match in line

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self.gone:  # accepted in the instant the hub went away
                    _close(client)
                    return
                self.connections += 1
                self._live.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            return _close(client)
        with self._lock:
            self._live.append(upstream)
            if self.gone:
                _close(upstream)
                _close(client)
                return
        state = {"limit": None, "sent": 0}
        threading.Thread(target=self._requests, args=(client, upstream, state), daemon=True).start()
        self._responses(upstream, client, state)

    def _requests(self, client: socket.socket, upstream: socket.socket, state: dict) -> None:
        """Client → hub; a matching request arms this connection's cut."""
        while data := _recv(client):
            self._log(data)
            if state["limit"] is None and self._matches(data):
                with self._lock:
                    if self.cuts:
                        state["limit"] = state["sent"] + self.cuts.pop(0)
                        self.cut_connections += 1
            try:
                upstream.sendall(data)
            except OSError:
                break
            time.sleep(self.upload_delay)
        _close(upstream)

    def _log(self, data: bytes) -> None:
        line = data.split(b"\r\n", 1)[0]
        if (
            line.split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE")
            and b"HTTP/1" in line
        ):
            with self._lock:
                self.requests.append(line)

    def seen(self, method: bytes, part: bytes = b"") -> bool:
        """Whether a request with this method (and part in its line) has been sent."""
        with self._lock:
            return any(r.startswith(method + b" ") and part in r for r in self.requests)

    def _responses(self, upstream: socket.socket, client: socket.socket, state: dict) -> None:
        """Hub → client, closing both sides once an armed connection has passed its limit."""
        while data := _recv(upstream):
            limit, sent = state["limit"], state["sent"]
            if limit is not None and sent + len(data) > limit:
                client.sendall(data[: max(limit - sent, 0)])
                if self.vanish_on_cut:
                    self.vanish()
                break
            try:
                client.sendall(data)
            except OSError:
                break
            state["sent"] = sent + len(data)
        _close(client)
        _close(upstream)


def _recv(s: socket.socket) -> bytes:
    try:
        return s.recv(65536)
    except OSError:
        return b""


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
