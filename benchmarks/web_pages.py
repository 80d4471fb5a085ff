"""Page times of the embedded Hub's web face: a model page of a 200-file repo, its file list, a
model tree and an experiment leaderboard, each loaded 100 times (interleaved) from a
`python -m zoo.hub.server` subprocess (what `zoo hub serve` runs).

The repo holds the merged card `make demo` publishes (benchmarks/data/merged_card.md: results
table, plot, mermaid lineage, recipe, lock), a plot and 198 small files. The model tree and the
leaderboard are those of tests/web/zoo_fixtures.py's family (base, 2 bags, merged v1, an update,
merged v2; scores in `.eval_results` and a model-index). Server time
is the page's own `Server-Timing` header (from the route's start to the rendered body); the round
trip adds the loopback HTTP client (one kept-alive connection).

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

from tests.hub.conftest import ServerProcess  # noqa: E402
from tests.web.zoo_fixtures import publish_family  # noqa: E402
from zoo.hub.server import HubStore  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CARD = ROOT / "benchmarks" / "data" / "merged_card.md"


def _big_repo(api: HfApi, repo_id: str) -> None:
    api.create_repo(repo_id, exist_ok=True)
    ops = [CommitOperationAdd("README.md", CARD.read_bytes())]
    ops += [CommitOperationAdd("scores.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20_000)]
    ops += [
        CommitOperationAdd(f"shards/part-{i:03d}.txt", f"shard {i}\n".encode()) for i in range(198)
    ]
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
        server = ServerProcess(root).start()  # `python -m zoo.hub.server`, as zoo hub serve runs it
        try:
            url = server.url
            api = HfApi(endpoint=url, token=store.admin_token())
            _big_repo(api, "bench/merged-200")
            family = publish_family(api, "bench")
            pages = {
                "model page (200 files, the demo's card)": "/bench/merged-200",
                "file list (200 files)": "/bench/merged-200/tree/main",
                "model tree (6 nodes)": f"/{family.repo('merged')}/tree-of-models",
                "leaderboard (5 models x 2 types x 3 tasks)": f"/zoo/experiments/{family.exp}",
            }
            times: dict[str, list[tuple[float, float]]] = {k: [] for k in pages}
            with httpx2.Client(base_url=url) as client:
                # The first load compiles the templates and renders the card (then cached).
                first = {name: _time(client, path)[0] for name, path in pages.items()}
                for _ in range(args.runs):
                    for name, path in pages.items():  # interleaved
                        times[name].append(_time(client, path))
        finally:
            server.stop()
    report = {
        name: {
            "server_ms_median": round(statistics.median(s for s, _ in t), 2),
            "server_ms_p95": round(sorted(s for s, _ in t)[int(0.95 * len(t)) - 1], 2),
            "round_trip_ms_median": round(statistics.median(w for _, w in t), 2),
            "first_load_server_ms": first[name],
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
