"""`zoo hub serve` tells the user where the home page is, and the page is there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import httpx2

from tests.hub.conftest import free_port


def test_hub_serve_prints_the_home_page_url(tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "zoo.cli", "hub", "serve", "--root", str(tmp_path / "h"),
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        lines = [proc.stderr.readline() for _ in range(2)]
        found = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", "".join(lines))
        assert found, lines
        for _ in range(100):
            try:
                r = httpx2.get(found.group(1), headers={"accept": "text/html"})
                break
            except httpx2.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and "<title>" in r.text and "Models" in r.text
    finally:
        proc.terminate()
        proc.wait(10)
