"""Concurrent load on a real Hub server process through the official client; counts lost commits.

`run_load(root, LoadConfig(...))` starts `python -m zoo.hub.server` (uvicorn, 127.0.0.1, access log
on) on a fresh `root`, creates the repos, then for `seconds`:

- writers (threads) loop: read the head (model_info), commit one small file with
  parent_commit = that head through HfApi.create_commit; a 412 is a conflict: re-read and retry;
- readers (threads) loop: model_info, list_repo_files, hf_hub_download of a file pinned at a
  commit sha (checked byte for byte), and a Range request on it (checked too).

Then it verifies that every commit a writer was told succeeded is in list_repo_commits and that
its file reads back, byte for byte, at that commit; that the history holds nothing else; and it
tallies every error other than a 412. Threads are enough: the server is another process.
Used by tests/hub/test_server_load.py (5 s) and benchmarks/hub_load.py (60 s); the arrow points
from benchmarks to tests, never back.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx2
from huggingface_hub import CommitOperationAdd, HfApi, constants, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from zoo.hub.server import HubStore

REPO_ROOT = Path(__file__).resolve().parents[2]
PINNED = "pinned.bin"  # a .bin: the client uploads it through LFS, readers download it
_STATUS = re.compile(r'" (\d{3}) ')  # uvicorn access log: ... "GET /x HTTP/1.1" 200 OK


@dataclass(frozen=True)
class LoadConfig:
    """How hard and how long to push."""

    seconds: float = 60.0
    writers: int = 16
    readers: int = 32
    repos: int = 4  # writers share repos round-robin, so they race on the same heads
    pinned_bytes: int = 256 << 10
    seed: int = 0


@dataclass(frozen=True)
class Repo:
    id: str
    pinned_sha: str
    pinned: bytes


@dataclass
class Tally:
    """What the threads saw; every method is thread-safe."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (repo_id, commit oid, path, bytes) of every commit a writer was told succeeded
    successes: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)  # the first 20
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, kind: str, call: Callable, *args, **kwargs):
        """Run `call`, record its latency under `kind` (also when it raises), return its result."""
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.add(kind, start)

    def add(self, kind: str, start: float) -> None:
        """Record under `kind` the time elapsed since perf_counter() was `start`."""
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latencies[kind].append(elapsed)

    def error(self, where: str, problem: BaseException | str) -> None:
        if isinstance(problem, BaseException):
            problem = f"{type(problem).__name__}: {str(problem)[:300]}"
        with self.lock:
            self.errors += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{where}: {problem}")

    def success(self, repo_id: str, oid: str, path: str, data: bytes) -> None:
        with self.lock:
            self.successes.append((repo_id, oid, path, data))


# -- the server process ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(root: Path, log: Path) -> Iterator[str]:
    """Serve `root` with `python -m zoo.hub.server` (uvicorn, access log into `log`); yield URL."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-m", "zoo.hub.server", "--root", str(root), "--port", str(port)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ready(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx2.get(f"{url}/api/models?limit=1", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"the Hub server process did not start (exit code {proc.poll()})")


def server_statuses(log: Path, start: int = 0, end: int | None = None) -> Counter:
    """Count the HTTP statuses uvicorn's access log holds between byte offsets start and end."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read(None if end is None else end - start).decode("utf-8", "replace")
    return Counter(m.group(1) for m in _STATUS.finditer(text))


# -- setup, writers, readers -----------------------------------------------------------------


def _setup(api: HfApi, namespace: str, cfg: LoadConfig, rng: random.Random) -> list[Repo]:
    repos = []
    for i in range(cfg.repos):
        repo_id = f"{namespace}/load-{i}"
        api.create_repo(repo_id)
        pinned = rng.randbytes(cfg.pinned_bytes)
        sha = api.upload_file(path_or_fileobj=pinned, path_in_repo=PINNED, repo_id=repo_id).oid
        repos.append(Repo(repo_id, sha, pinned))
    return repos


def _writer(w: int, api: HfApi, repo: Repo, deadline: float, tally: Tally) -> None:
    path, n = f"writers/w{w:02d}.txt", 0
    while time.monotonic() < deadline:
        try:
            head = tally.timed("head", api.model_info, repo.id).sha
        except Exception as exc:  # noqa: BLE001 - every failure is counted, the loop goes on
            tally.error(f"writer {w} head", exc)
            continue
        data = f"writer {w} commit {n} {os.urandom(8).hex()}\n".encode()
        op = CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)
        start = time.perf_counter()
        try:
            info = api.create_commit(
                repo.id, operations=[op], commit_message=f"w{w} c{n}", parent_commit=head
            )
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            kind = "commit_412" if status == 412 else "commit_failed"
            tally.add(kind, start)
            if status != 412:
                tally.error(f"writer {w} commit", exc)
            continue
        except Exception as exc:  # noqa: BLE001
            tally.add("commit_failed", start)
            tally.error(f"writer {w} commit", exc)
            continue
        tally.add("commit_ok", start)
        tally.success(repo.id, info.oid, path, data)
        n += 1


def _reader(
    r: int, url: str, token: str, repos: list[Repo], deadline: float, tally: Tally, cache: Path
) -> None:
    api, rng = HfApi(endpoint=url, token=token), random.Random(r)
    with httpx2.Client(headers={"authorization": f"Bearer {token}"}, timeout=60) as http:
        while time.monotonic() < deadline:
            repo = rng.choice(repos)
            try:
                _read_once(api, http, url, token, repo, rng, tally, cache)
            except Exception as exc:  # noqa: BLE001
                tally.error(f"reader {r} {repo.id}", exc)


def _read_once(api, http, url, token, repo: Repo, rng, tally: Tally, cache: Path) -> None:
    tally.timed("model_info", api.model_info, repo.id)
    files = tally.timed("list_repo_files", api.list_repo_files, repo.id)
    if PINNED not in files:
        raise AssertionError(f"{PINNED} missing from {repo.id}: {files[:5]}")
    local = tally.timed(
        "download",
        hf_hub_download,
        repo.id,
        PINNED,
        revision=repo.pinned_sha,
        endpoint=url,
        token=token,
        cache_dir=cache,
        force_download=True,
    )
    if Path(local).read_bytes() != repo.pinned:
        raise AssertionError(f"{PINNED}@{repo.pinned_sha} downloaded differs from the upload")
    start = rng.randrange(len(repo.pinned))
    end = min(len(repo.pinned) - 1, start + rng.randrange(1, 64 << 10))
    target = f"{url}/{repo.id}/resolve/{repo.pinned_sha}/{PINNED}"
    resp = tally.timed("range", http.get, target, headers={"range": f"bytes={start}-{end}"})
    if resp.status_code != 206 or resp.content != repo.pinned[start : end + 1]:
        raise AssertionError(f"Range bytes={start}-{end}: {resp.status_code}, wrong bytes")


# -- verification and the summary ---------------------------------------------------------------


def verify(url: str, token: str, repos: list[Repo], tally: Tally) -> dict:
    """Every acknowledged commit is in its repo's history and reads back at its oid; nothing else.

    Returns {"lost_commits", "unexplained_commits", "checked"}: lost = acknowledged but missing from
    the history or reading back different bytes at its oid; unexplained = history entries that are
    neither one of the 2 setup commits nor an acknowledged commit (or acknowledged twice).
    """
    api, by_repo = HfApi(endpoint=url, token=token), defaultdict(set)
    for repo_id, oid, _, _ in tally.successes:
        by_repo[repo_id].add(oid)
    lost, unexplained = set(), 0
    for repo in repos:
        history = {c.commit_id for c in api.list_repo_commits(repo.id)}
        lost |= by_repo[repo.id] - history
        unexplained += len(history) - 2 - len(by_repo[repo.id] & history)
    unexplained += len(tally.successes) - sum(len(oids) for oids in by_repo.values())

    with httpx2.Client(headers={"authorization": f"Bearer {token}"}, timeout=60) as http:

        def reads_back(item: tuple[str, str, str, bytes]) -> bool:
            repo_id, oid, path, data = item
            resp = http.get(f"{url}/{repo_id}/resolve/{oid}/{path}")
            return resp.status_code == 200 and resp.content == data

        with ThreadPoolExecutor(8) as pool:
            ok = list(pool.map(reads_back, tally.successes))
    lost |= {oid for (_, oid, _, _), good in zip(tally.successes, ok) if not good}
    return {
        "lost_commits": len(lost),
        "unexplained_commits": unexplained,
        "checked": len(tally.successes),
    }


def _stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return {
        "count": len(values),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(p99 * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


READ_KINDS = ("head", "model_info", "list_repo_files", "download", "range")
COMMIT_KINDS = ("commit_ok", "commit_412", "commit_failed")


def summarize(
    cfg: LoadConfig, tally: Tally, checked: dict, statuses: Counter, all_5xx: int, wall: float
) -> dict:
    """The JSON-able result: counts, throughput, latency per kind, conflicts, lost commits, errors.

    `statuses` are the server's answers during the load window; `all_5xx` counts the whole run.
    """
    lat = tally.latencies
    operations = sum(len(v) for v in lat.values())
    http = sum(statuses.values())
    return {
        "config": asdict(cfg),
        "wall_s": round(wall, 2),
        "operations": operations,
        "http_requests": http,
        "server_statuses": dict(sorted(statuses.items())),
        "throughput": {
            "operations_per_s": round(operations / wall, 1),
            "http_requests_per_s": round(http / wall, 1),
            "commits_per_s": round(len(lat["commit_ok"]) / wall, 1),
        },
        "latency": {
            "read": _stats([x for k in READ_KINDS for x in lat[k]]),
            "commit": _stats([x for k in COMMIT_KINDS for x in lat[k]]),
            **{k: _stats(lat[k]) for k in (*READ_KINDS, *COMMIT_KINDS)},
        },
        "commits": len(lat["commit_ok"]),
        "conflicts": len(lat["commit_412"]),
        **checked,
        "other_errors": tally.errors,
        "error_samples": tally.error_samples,
        "server_5xx": all_5xx,
    }


def run_load(root: Path, cfg: LoadConfig) -> dict:
    """Serve a fresh `root`, run writers and readers for cfg.seconds, verify, and summarize."""
    constants.HF_HUB_DISABLE_XET = True  # this Hub speaks git-lfs, not Xet
    store = HubStore(root / "hub")
    writer_token, reader_token = store.add_token("loader", True), store.add_token("loader", False)
    log, tally = root / "access.log", Tally()
    with server_process(root / "hub", log) as url:
        api = HfApi(endpoint=url, token=writer_token)
        repos = _setup(api, "loader", cfg, random.Random(cfg.seed))
        mark, start = log.stat().st_size, time.monotonic()
        deadline = start + cfg.seconds
        threads = [
            threading.Thread(
                target=_writer,
                args=(
                    w,
                    HfApi(endpoint=url, token=writer_token),
                    repos[w % len(repos)],
                    deadline,
                    tally,
                ),
            )
            for w in range(cfg.writers)
        ] + [
            threading.Thread(
                target=_reader,
                args=(r, url, reader_token, repos, deadline, tally, root / f"cache-{r}"),
            )
            for r in range(cfg.readers)
        ]
        for t in threads:
            t.daemon = True
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, deadline + 120 - time.monotonic()))
        wall, end = time.monotonic() - start, log.stat().st_size
        for t in threads:
            if t.is_alive():
                tally.error(t.name, "still running 120 s after the deadline")
        checked = verify(url, writer_token, repos, tally)
    all_5xx = sum(n for s, n in server_statuses(log).items() if s.startswith("5"))
    return summarize(cfg, tally, checked, server_statuses(log, mark, end), all_5xx, wall)
