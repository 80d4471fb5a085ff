"""Page times of the embedded Hub's web face: a model page of a 200-file repo, its file list,
and an experiment leaderboard, each loaded 100 times (interleaved) from a live `zoo hub serve`.

The repo holds the merged card `make demo` publishes (benchmarks/data/merged_card.md: results
table, plot, mermaid lineage, recipe, lock), a plot, a safetensors file and 197 small files. The
experiment has a base, 4 bags and a merged model, each with 6 `.eval_results` scores. Server time
is the page's own `Server-Timing` header (from the route's start to the rendered body); the round
trip adds the loopback HTTP client.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/web_pages.py [--runs 100]

Writes benchmarks/results/web_pages.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from huggingface_hub import CommitOperationAdd, HfApi  # noqa: E402

from tests.web.fixtures import publish_experiment  # noqa: E402
from zoo.hub.server import HubStore, serve_in_thread  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CARD = ROOT / "benchmarks" / "data" / "merged_card.md"


def _big_repo(api: HfApi, repo_id: str) -> None:
    api.create_repo(repo_id, exist_ok=True)
    ops = [CommitOperationAdd("README.md", CARD.read_bytes())]
    ops += [CommitOperationAdd("scores.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20_000)]
    ops += [CommitOperationAdd(f"shards/part-{i:03d}.txt", f"shard {i}\n".encode()) for i in range(198)]
    api.create_commit(repo_id, ops, commit_message="200 files and the demo's merged card")


def _time(client: httpx2.Client, path: str) -> tuple[float, float]:
    start = time.perf_counter()
    r = client.get(path)
    wall = (time.perf_counter() - start) * 1e3
    assert r.status_code == 200, (path, r.status_code)
    server = float(r.headers["server-timing"].split("dur=")[1])
    return server, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub"
        store = HubStore(root)
        with serve_in_thread(root) as url:
            api = HfApi(endpoint=url, token=store.admin_token())
            _big_repo(api, "bench/merged-200")
            experiment = publish_experiment(api, "bench", "exp")
            pages = {
                "model page (200 files)": "/bench/merged-200",
                "file list (200 files)": "/bench/merged-200/tree/main",
                "leaderboard (6 members x 6 tasks)": f"/zoo/experiments/{experiment}",
            }
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in pages}
            with httpx2.Client(base_url=url) as client:
                for path in pages.values():
                    _time(client, path)  # warm: templates compiled, card rendered once
                for _ in range(args.runs):
                    for name, path in pages.items():  # interleaved
                        times[name].append(_time(client, path))
    report = {
        name: {
            "server_ms_median": round(statistics.median(s for s, _ in t), 2),
            "server_ms_p95": round(sorted(s for s, _ in t)[int(0.95 * len(t)) - 1], 2),
            "round_trip_ms_median": round(statistics.median(w for _, w in t), 2),
            "runs": len(t),
        }
        for name, t in times.items()
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "web_pages.json").write_text(json.dumps(report, indent=2) + "\n")
    for name, r in report.items():
        print(f"{name:40s} server {r['server_ms_median']:6.2f} ms (p95 {r['server_ms_p95']:.2f}), "
              f"round trip {r['round_trip_ms_median']:6.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
