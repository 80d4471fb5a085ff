"""Sliced merges at the 1.5B scale: `zoo merge` vs `mergekit-yaml` on the same recipe files.

Two random Qwen3-shaped decoders of 1.54B parameters (28 layers, bf16 on disk; the generator
of merge_bench.py) and two recipes as users write them:
  slerp        the LazyMergekit template: one slice of all 28 layers, t gradients per filter
               (self_attn / mlp), bfloat16
  passthrough  a frankenmerge: layers 0-20 of A then 8-28 of B (40 layers, 2.2B), bfloat16
Each arm runs in its own process (the CLI called in-process to time it) under /usr/bin/time for
its peak RSS; the arms are interleaved run by run and the medians reported, with the largest
difference between the two outputs. Needs ~20 GiB free under --work.

  .venv/bin/python benchmarks/slices_bench.py [--runs 3] [--shape qwen3-1.5b]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import merge_bench as mb  # noqa: E402  (the decoder generator and the measured runner)

LAZY_T = [
    {"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]},
    {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]},
    {"value": 0.5},
]


def causal_decoder(folder: Path, shape: tuple, seed: int) -> Path:
    """Write a random bf16 Qwen3ForCausalLM checkpoint (tied embeddings) tensor by tensor."""
    import torch
    from transformers import Qwen3ForCausalLM

    from zoo.merge.writer import Entry, StreamWriter

    if folder.exists():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    config = mb.qwen3_config(*shape)
    config.architectures = ["Qwen3ForCausalLM"]
    with torch.device("meta"):
        state = Qwen3ForCausalLM(config).state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if k != "lm_head.weight"}
    writer = StreamWriter(tmp, [Entry(k, torch.bfloat16, s) for k, s in shapes.items()])
    gen = torch.Generator().manual_seed(seed)
    for key, size in sorted(shapes.items()):
        scale, shift = (0.05, 1.0) if key.endswith("norm.weight") else (0.02, 0.0)
        writer.write(key, (shift + scale * torch.randn(size, generator=gen)).to(torch.bfloat16))
    writer.close()
    config.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def recipes(a: Path, b: Path, layers: int) -> dict[str, dict]:
    """The two recipes, on models a and b of `layers` layers."""
    cut = max(1, layers * 5 // 7)
    return {
        "slerp": {
            "slices": [
                {
                    "sources": [
                        {"model": str(a), "layer_range": [0, layers]},
                        {"model": str(b), "layer_range": [0, layers]},
                    ]
                }
            ],
            "merge_method": "slerp",
            "base_model": str(a),
            "parameters": {"t": LAZY_T},
            "dtype": "bfloat16",
        },
        "passthrough": {
            "slices": [
                {"sources": [{"model": str(a), "layer_range": [0, cut]}]},
                {"sources": [{"model": str(b), "layer_range": [layers - cut, layers]}]},
            ],
            "merge_method": "passthrough",
            "dtype": "bfloat16",
        },
    }


def child(spec: dict) -> None:
    """Run one arm's CLI in this process; print {"seconds": ...} as the last line."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    if spec["arm"] == "zoo":
        from zoo.cli import main

        code = main(["merge", spec["recipe"], "--out", spec["out"], "--quiet"])
        if code:
            raise SystemExit(code)
    else:
        from mergekit.scripts.run_yaml import main as mergekit_yaml

        argv = [spec["recipe"], spec["out"], "--no-copy-tokenizer", "--no-write-model-card"]
        mergekit_yaml([*argv, "--quiet"], standalone_mode=False)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def command(arm: str, recipe: Path, out: Path) -> list[str]:
    spec = {"arm": arm, "recipe": str(recipe), "out": str(out)}
    return [mb.PY, str(Path(__file__).resolve()), "--child", json.dumps(spec)]


def max_difference(ours: Path, theirs: Path) -> float:
    """The largest |difference| over every tensor of the two outputs (same names required)."""
    from safetensors import safe_open

    def tensors(folder: Path) -> dict:
        found = {}
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(file), "pt") as f:
                found |= {k: (file, k) for k in f.keys()}
        return found

    a, b = tensors(ours), tensors(theirs)
    if sorted(a) != sorted(b):
        raise RuntimeError(f"the outputs hold different tensors: {sorted(set(a) ^ set(b))[:4]}")
    worst = 0.0
    for key in a:
        with safe_open(str(a[key][0]), "pt") as fa, safe_open(str(b[key][0]), "pt") as fb:
            diff = (fa.get_tensor(key).float() - fb.get_tensor(key).float()).abs().max()
            worst = max(worst, float(diff))
    return worst


def depth_of(config: dict) -> int:
    return sum(
        sl["sources"][0]["layer_range"][1] - sl["sources"][0]["layer_range"][0]
        for sl in config["slices"]
    )


def for_mergekit(config: dict, work: Path) -> tuple[dict, str | None]:
    """Return the recipe mergekit-yaml can run, and why it differs from the one as written.

    mergekit 0.1.5 sets num_hidden_layers on the output config but keeps Qwen3's per-layer
    `layer_types`, so transformers refuses any change of depth. Its arm then runs on copies of
    the models (the same weight files, linked) whose config.json has the output's depth and no
    layer_types; zoo rebuilds the list instead.
    """
    depth = depth_of(config)
    paths = {s["model"] for sl in config["slices"] for s in sl["sources"]}
    first = json.loads((Path(sorted(paths)[0]) / "config.json").read_text())
    if depth == first["num_hidden_layers"] or "layer_types" not in first:
        return config, None
    text = json.dumps(config)
    for path in sorted(paths):
        copy = work / f"{Path(path).name}-for-mergekit-{depth}"
        if not copy.exists():
            copy.mkdir()
            for item in Path(path).iterdir():
                if item.name != "config.json":
                    (copy / item.name).symlink_to(item)
            settings = json.loads((Path(path) / "config.json").read_text())
            settings.pop("layer_types")
            settings["num_hidden_layers"] = depth
            (copy / "config.json").write_text(json.dumps(settings))
        text = text.replace(json.dumps(path), json.dumps(str(copy)))
    why = "mergekit-yaml refuses the recipe as written (layer_types); ran on config copies"
    return json.loads(text), why


def compare(name: str, config: dict, work: Path, runs: int) -> dict:
    recipe = work / f"{name}.yml"
    recipe.write_text(yaml.safe_dump(config, sort_keys=False))
    theirs, why = for_mergekit(config, work)
    their_recipe = work / f"{name}-mergekit.yml"
    their_recipe.write_text(yaml.safe_dump(theirs, sort_keys=False))
    rows: dict[str, list[dict]] = {"zoo": [], "mergekit": []}
    for i in range(runs):
        for arm in ("zoo", "mergekit") if i % 2 == 0 else ("mergekit", "zoo"):
            out = work / f"out-{name}-{arm}"
            shutil.rmtree(out, ignore_errors=True)
            path = recipe if arm == "zoo" else their_recipe
            rows[arm].append(mb.run_measured(command(arm, path, out)))
    result = {"recipe": name, "runs": runs, "out_bytes": mb.weight_bytes(work / f"out-{name}-zoo")}
    result["mergekit_note"] = why
    for arm, measured in rows.items():
        result[arm] = {
            "seconds": statistics.median(r["seconds"] for r in measured),
            "wall": statistics.median(r["wall"] for r in measured),
            "peak_rss": statistics.median(r["peak_rss"] for r in measured),
            "all_seconds": [round(r["seconds"], 2) for r in measured],
        }
    result["max_abs_diff"] = max_difference(work / f"out-{name}-zoo", work / f"out-{name}-mergekit")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shape", default="qwen3-1.5b", choices=sorted(mb.DECODERS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-slices-bench"))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "slices_bench.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    args.work.mkdir(parents=True, exist_ok=True)
    shape = mb.DECODERS[args.shape]
    a, b = (causal_decoder(args.work / args.shape / f"v{i}", shape, seed=i) for i in range(2))
    results = {
        "shape": args.shape,
        "params_per_model": mb.params_of(a),
        "machine": mb._machine(),
        "rows": [compare(n, c, args.work, args.runs) for n, c in recipes(a, b, shape[1]).items()],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    shutil.rmtree(args.work, ignore_errors=True)


def render(results: dict) -> str:
    head = "| recipe | output | zoo s | mergekit-yaml s | zoo peak | mergekit peak | max diff |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        z, m = r["zoo"], r["mergekit"]
        lines.append(
            f"| {r['recipe']} | {r['out_bytes'] / 2**30:.2f} GiB | {z['seconds']:.1f} | "
            f"{m['seconds']:.1f} | {z['peak_rss'] / 2**20:.0f} MiB | "
            f"{m['peak_rss'] / 2**20:.0f} MiB | {r['max_abs_diff']:.3g} |"
        )
    lines += [
        f"- {r['recipe']}: {r['mergekit_note']}" for r in results["rows"] if r["mergekit_note"]
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
