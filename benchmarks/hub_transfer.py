"""Push and pull of a large safetensors file through zoo (git-lfs, Xet) vs the server vs cp.

Interleaved in one run (cp, curl GET, zoo push over git-lfs, zoo push over Xet, zoo pull of each,
cp, ...), each arm timed as a whole process; medians reported with MB/s, the ratio to cp, and the
CPU seconds the server spent on the arm (the server is the bottleneck only if that nears the wall
time). Usage:

    .venv/bin/python benchmarks/hub_transfer.py --gib 1 --rounds 3 [--json OUT]

The server is `zoo hub serve` in its own process on a fresh root; every pull uses a fresh HF cache,
every push a fresh repo and, over Xet, a fresh HF_HOME (so nothing is deduplicated away).
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
import psutil
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


def cpu_s(server: psutil.Process) -> float:
    t = server.cpu_times()
    return t.user + t.system


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
        base = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_XET"}
        base |= {"HF_TOKEN": token, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        modes = {"lfs": {**base, "HF_HUB_DISABLE_XET": "1"}, "xet": base}
        hub, server = ["--hub", url], psutil.Process(proc.pid)
        for mode, env in modes.items():  # one seed per transport: only Xet uploads pull over Xet
            seed = [*ZOO, "push", str(src), f"bench/seed-{mode}", *hub]
            subprocess.run(seed, check=True, env=env, stdout=subprocess.DEVNULL)
        file_url = f"{url}/bench/seed-lfs/resolve/main/model.safetensors"
        arms = ["cp", "curl", "curl /dev/null"]
        arms += [f"zoo {op} ({m})" for op in ("push", "pull") for m in modes]
        times: dict[str, list[float]] = {k: [] for k in arms}
        server_cpu: dict[str, list[float]] = {k: [] for k in arms}

        def arm(name: str, cmd: list[str], env: dict | None = None) -> None:
            before = cpu_s(server)
            times[name].append(timed(cmd, env))
            server_cpu[name].append(cpu_s(server) - before)

        for r in range(rounds):
            dst = work / f"copy{r}"
            arm("cp", ["cp", str(src / "model.safetensors"), str(dst)])
            arm("curl", ["curl", "-sf", "-o", str(work / f"curl{r}"), file_url])
            arm("curl /dev/null", ["curl", "-sf", "-o", "/dev/null", file_url])
            for mode, env in modes.items():
                push_env = {**env, "HF_HOME": str(work / f"hf-push-{mode}{r}")}
                arm(
                    f"zoo push ({mode})",
                    [*ZOO, "push", str(src), f"bench/{mode}-{r}", *hub],
                    push_env,
                )
            for mode, env in modes.items():
                to, cache = (
                    work / f"pull-{mode}{r}",
                    {**env, "HF_HOME": str(work / f"hf-{mode}{r}")},
                )
                arm(
                    f"zoo pull ({mode})",
                    [*ZOO, "pull", f"bench/seed-{mode}", "--to", str(to), *hub],
                    cache,
                )
            for p in work.iterdir():
                if p.name.startswith(("copy", "curl", "pull-", "hf-")):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(
                        missing_ok=True
                    )
    finally:
        proc.terminate()
        proc.wait()
    return summarise(times, server_cpu, size)


def summarise(times: dict[str, list[float]], server_cpu: dict[str, list[float]], size: int) -> dict:
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
            "server_cpu_s": round(statistics.median(server_cpu[arm]), 3),
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
