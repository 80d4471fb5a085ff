"""Run the community recipe corpus (recipes/community/) through `zoo merge` and mergekit.

Every recipe runs on tiny random models of its architecture (tests/recipe/corpus.py builds and
substitutes them), in float32, through the zoo CLI and mergekit's run_merge (mergekit-multi for
multi-document recipes), both in this process. Each output tensor is compared, the zoo output is
loaded with AutoModelForCausalLM / SentenceTransformer, and each recipe is classified: equal
(max |diff| <= 1e-6), stochastic (DARE/DELLA: kept density and mean |delta| agree), zoo-refused
(zoo's one-line error), mergekit-failed (its error), differ, load-failed, and for the invalid
recipes refused-as-expected / accepted-invalid.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/recipe_corpus.py [--only NAME ...]

Writes benchmarks/results/recipe_corpus.json and .md (the table for BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.recipe import corpus  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def table(rows: list[dict]) -> str:
    """The Markdown corpus table: recipe, features, result, detail."""
    lines = ["| recipe | features | result | detail |", "| --- | --- | --- | --- |"]
    for r in rows:
        detail = str(r.get("detail", "")).replace("|", "\\|")
        if "mergekit" in r:  # zoo refused: did mergekit run it?
            detail += f" (mergekit: {r['mergekit']})"
        lines.append(f"| {r['recipe']} | {', '.join(r['features'])} | {r['result']} | {detail} |")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    return "\n".join(lines) + f"\n\n{len(rows)} recipes: {summary}.\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="recipe file names to run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument(
        "--as-written",
        action="store_true",
        help="keep each recipe's dtype (fp16/bf16) instead of forcing float32; results get an "
        "'-as-written' suffix",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    recipes = [p for p in corpus.RECIPES if not args.only or p.name in args.only]
    start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="zoo-corpus-") as tmp:
        for path in recipes:
            dtype = None if args.as_written else "float32"
            row = corpus.run_case(path, Path(tmp) / "models", Path(tmp) / path.stem, dtype)
            print(f"{row['result']:>20}  {path.name}: {row.get('detail', '')}", flush=True)
            rows.append(row)
    elapsed = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "recipe_corpus" + ("-as-written" if args.as_written else "")
    (args.out / f"{stem}.json").write_text(
        json.dumps({"seconds": elapsed, "rows": rows}, indent=2) + "\n"
    )
    (args.out / f"{stem}.md").write_text(table(rows))
    print(f"{len(rows)} recipes in {elapsed} s -> {args.out / f'{stem}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
