"""Load on the embedded Hub: 16 writers racing on shared heads and 32 readers, for 60 s.

A real `python -m zoo.hub.server` process (uvicorn on 127.0.0.1, access log on) serves a fresh
root; the clients are threads using the official huggingface_hub client (HF_HUB_DISABLE_XET=1).
Writers commit one small file with parent_commit = the head they read and retry on 412; readers
loop over model_info, list_repo_files, hf_hub_download at a pinned sha and a Range request. At
the end every acknowledged commit must be in the history and read back at its oid. Usage:

    .venv/bin/python benchmarks/hub_load.py [--seconds 60] [--writers 16] [--readers 32]
        [--repos 4] [--json benchmarks/results/hub_load.json]

The driver lives in tests/hub/load_driver.py (tests/hub/test_server_load.py runs it for 5 s);
this script imports it, never the other way round.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
# Before huggingface_hub is imported: it freezes these when it loads.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from tests.hub.load_driver import LoadConfig, run_load  # noqa: E402


def render(result: dict) -> str:
    """A short plain-text report of a run_load result."""
    cfg, lat, rate = result["config"], result["latency"], result["throughput"]
    lines = [
        f"{cfg['writers']} writers, {cfg['readers']} readers, {cfg['repos']} repos, "
        f"{result['wall_s']} s on {os.cpu_count()} CPUs",
        f"operations {result['operations']} ({rate['operations_per_s']}/s), "
        f"HTTP requests {result['http_requests']} ({rate['http_requests_per_s']}/s)",
        f"server statuses {result['server_statuses']}",
        f"commits {result['commits']} ({rate['commits_per_s']}/s), "
        f"conflicts (412) {result['conflicts']}, lost commits {result['lost_commits']}, "
        f"unexplained commits {result['unexplained_commits']}, other errors "
        f"{result['other_errors']}, server 5xx {result['server_5xx']}",
        f"{'kind':16} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    for kind, s in lat.items():
        if s["count"]:
            row = f"{kind:16} {s['count']:7} {s['p50_ms']:8} {s['p99_ms']:8} {s['max_ms']:8}"
            lines.append(row)
    lines += [f"error: {e}" for e in result["error_samples"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = LoadConfig()
    parser.add_argument("--seconds", type=float, default=defaults.seconds)
    parser.add_argument("--writers", type=int, default=defaults.writers)
    parser.add_argument("--readers", type=int, default=defaults.readers)
    parser.add_argument("--repos", type=int, default=defaults.repos)
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "benchmarks/results/hub_load.json")
    args = parser.parse_args(argv)
    cfg = LoadConfig(args.seconds, args.writers, args.readers, args.repos)
    with tempfile.TemporaryDirectory(prefix="zoo-hub-load-") as tmp:
        result = run_load(Path(tmp), cfg)
    result["machine"] = {"cpus": os.cpu_count(), "loadavg_after": os.getloadavg()}
    print(render(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    ok = result["lost_commits"] == result["unexplained_commits"] == result["other_errors"] == 0
    return 0 if ok and result["server_5xx"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
