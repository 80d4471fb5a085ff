"""Push and pull of a large safetensors file through zoo vs the server alone vs a local copy.

Interleaved in one run (cp, curl GET, zoo push, zoo pull, cp, ...), each arm timed as a whole
process; medians reported with MB/s and the ratio to cp. Usage:

    .venv/bin/python benchmarks/hub_transfer.py --gib 1 --rounds 3 [--json OUT]

The server is `zoo hub serve` in its own process on a fresh root; every pull uses a fresh HF cache,
every push a fresh repo (so nothing is deduplicated away).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ZOO = [sys.executable, "-m", "zoo.cli"]


def make_file(path: Path, gib: float) -> int:
    """Write a safetensors file of about gib GiB of random float32 data, in 64 MiB tensors."""
    rng = np.random.default_rng(0)
    n = max(1, int(gib * 16))
    save_file(
        {f"t{i}": rng.standard_normal(16 << 20, dtype=np.float32) for i in range(n)}, str(path)
    )
    return path.stat().st_size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [*ZOO, "hub", "serve", "--root", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            subprocess.run(
                ["curl", "-sf", f"{url}/api/models?limit=1"], check=True, stdout=subprocess.DEVNULL
            )
            return proc, url
        except subprocess.CalledProcessError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run(gib: float, rounds: int, work: Path) -> dict:
    src = work / "model"
    src.mkdir()
    size = make_file(src / "model.safetensors", gib)
    (src / "config.json").write_text('{"model_type": "bert"}')
    proc, url = start_server(work / "hub")
    try:
        token = (work / "hub" / "admin.token").read_text().strip()
        env = {**os.environ, "HF_TOKEN": token, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        hub = ["--hub", url]
        subprocess.run(
            [*ZOO, "push", str(src), "bench/seed", *hub],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        file_url = f"{url}/bench/seed/resolve/main/model.safetensors"
        times: dict[str, list[float]] = {
            k: [] for k in ("cp", "curl", "curl /dev/null", "zoo push", "zoo pull")
        }
        for r in range(rounds):
            dst = work / f"copy{r}"
            times["cp"].append(timed(["cp", str(src / "model.safetensors"), str(dst)]))
            times["curl"].append(timed(["curl", "-sf", "-o", str(work / f"curl{r}"), file_url]))
            times["curl /dev/null"].append(timed(["curl", "-sf", "-o", "/dev/null", file_url]))
            times["zoo push"].append(timed([*ZOO, "push", str(src), f"bench/push-{r}", *hub], env))
            cache = {**env, "HF_HOME": str(work / f"hf{r}")}
            times["zoo pull"].append(
                timed([*ZOO, "pull", "bench/seed", "--to", str(work / f"pull{r}"), *hub], cache)
            )
            for p in (dst, work / f"curl{r}", work / f"pull{r}", work / f"hf{r}"):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    finally:
        proc.terminate()
        proc.wait()
    return summarise(times, size)


def summarise(times: dict[str, list[float]], size: int) -> dict:
    cp = statistics.median(times["cp"])
    rows = {}
    for arm, ts in times.items():
        med = statistics.median(ts)
        rows[arm] = {
            "median_s": round(med, 3),
            "min_s": round(min(ts), 3),
            "max_s": round(max(ts), 3),
            "MB_per_s": round(size / med / 1e6, 1),
            "speed_vs_cp": round(cp / med, 3),
        }
    return {"bytes": size, "rounds": len(times["cp"]), "arms": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(
        prefix="zoo-bench-", dir=os.environ.get("ZOO_BENCH_DIR")
    ) as tmp:
        result = run(args.gib, args.rounds, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
