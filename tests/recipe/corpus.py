"""The community recipe corpus (recipes/community/) run through `zoo merge` and mergekit.

Each recipe names real Hub models; a front-matter comment says what to build instead:
`# corpus: arch=llama layers=8 [layers@NAME=12] [tokens@NAME=<a>,<b>] [expect=refuse:FIELD]`.
Every name becomes a tiny random model of that architecture: the recipe's base (its base_model,
else its first model) built from config, the other names the base perturbed with a seed taken
from the name (a name with its own depth, `layers@`, is built afresh; `tokens@` adds tokens to
the tokenizer and rows to the embeddings). `a+b` (model+lora) becomes the model a and a peft
adapter over it. The substituted recipe (dtype forced to float32) then runs through the zoo CLI
and mergekit's run_merge (mergekit-multi for multi-document recipes), both in this process, and
every output tensor is compared. Models are cached per root for the session.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from tests import tiny as tm

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "recipes" / "community"
RECIPES = sorted([*CORPUS.glob("*.yaml"), *CORPUS.glob("*.yml")])
STOCHASTIC = {"dare_ties", "dare_linear", "della", "della_linear"}
TOL = 1e-6
PASSING = {"equal", "stochastic", "refused-as-expected"}
_MODEL_KEYS = {"model", "base_model", "source", "tokenizer_source"}
_CACHE: dict[tuple, Path] = {}


@dataclass(frozen=True)
class Front:
    """A recipe's `# corpus:` line: what to build for its model names."""

    arch: str
    layers: int = 4
    depths: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, tuple[str, ...]] = field(default_factory=dict)
    expect: str | None = None  # "refuse:FIELD": an invalid recipe zoo must refuse
    # tensor-name prefixes where zoo differs from mergekit on purpose (the recipe says why)
    deliberate: tuple[str, ...] = ()


def front(path: Path) -> Front:
    """Parse the `# corpus:` comment of a recipe file (KeyError if it has none)."""
    line = next(ln for ln in path.read_text().splitlines() if ln.startswith("# corpus:"))
    pairs = [tok.split("=", 1) for tok in line.removeprefix("# corpus:").split()]
    opts = {k: v for k, v in pairs if "@" not in k}
    return Front(
        arch=opts["arch"],
        layers=int(opts.get("layers", 4)),
        depths={k[7:]: int(v) for k, v in pairs if k.startswith("layers@")},
        tokens={k[7:]: tuple(v.split(",")) for k, v in pairs if k.startswith("tokens@")},
        expect=opts.get("expect"),
        deliberate=tuple(filter(None, opts.get("deliberate", "").split(","))),
    )


def documents(path: Path) -> list[dict]:
    """The YAML documents of a recipe (one, or several for a mergekit-multi recipe)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _walk(node, visit):
    """Call visit(key, value) for every mapping entry under node; replace by what it returns."""
    if isinstance(node, dict):
        return {k: _walk(visit(k, v), visit) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, visit) for v in node]
    return node


def model_names(docs: list[dict]) -> list[str]:
    """Every model a recipe names, in order of first use (not the names of its own merges)."""
    own = {d.get("name") for d in docs}
    found: list[str] = []

    def visit(key, value):
        if key in _MODEL_KEYS and isinstance(value, str) and value not in ("base", "union"):
            found.extend(p for p in value.split("+") if p not in own)
        return value

    for doc in docs:
        _walk(doc, visit)
    return list(dict.fromkeys(found))


def features(docs: list[dict]) -> list[str]:
    """The recipe-language features a recipe uses, for the corpus table."""
    doc = docs[-1]
    text = yaml.safe_dump_all(docs)
    out = sorted({d["merge_method"] for d in docs})
    checks = {
        "slices": "slices" in doc,
        "modules": "modules" in doc,
        "multi-doc": len(docs) > 1,
        "model+lora": any("+" in n for n in _raw_refs(docs)),
        "gradient": _has_gradient(docs),
        "filter": "filter:" in text,
        f"tokenizer_source: {doc.get('tokenizer_source')}": "tokenizer_source" in doc,
        "tokenizer block": "tokenizer" in doc,
        "chat_template": "chat_template" in doc,
    }
    return out + [name for name, on in checks.items() if on]


def _has_gradient(docs: list[dict]) -> bool:
    """True if some parameter is a list of numbers (a gradient over the layers)."""
    found: list[bool] = []

    def visit(key, value):
        numbers = isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
        found.append(numbers and key not in ("layer_range",) and bool(value))
        return value

    for doc in docs:
        _walk(doc, visit)
    return any(found)


def _raw_refs(docs: list[dict]) -> list[str]:
    """Every `model:` string of the recipe, as written."""
    refs: list[str] = []

    def visit(key, value):
        if key == "model" and isinstance(value, str):
            refs.append(value)
        return value

    for doc in docs:
        _walk(doc, visit)
    return refs


def _base_name(docs: list[dict], names: list[str]) -> str:
    first = next((d["base_model"] for d in docs if isinstance(d.get("base_model"), str)), None)
    return first if first in names else names[0]


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) % 10_000


def _build(root: Path, arch: str, layers: int, seed: int) -> Path:
    key = (str(root), arch, layers, seed)
    if key not in _CACHE:
        folder = root / f"{arch}-{layers}l-s{seed}"
        if arch in tm.ENCODERS:
            tm.build_st(folder, arch, seed=seed, num_hidden_layers=layers)
        else:
            tm.build_decoder(folder, arch, layers=layers, seed=seed)
        _CACHE[key] = folder
    return _CACHE[key]


def _derived(key: tuple, make) -> Path:
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def tiny_model(root: Path, fr: Front, name: str, base: str) -> Path:
    """The tiny stand-in for one model name (cached per root)."""
    depth = fr.depths.get(name, fr.layers)
    if depth != fr.layers:
        return _build(root, fr.arch, depth, _seed(name))
    folder = _build(root, fr.arch, depth, 0)
    if name != base:
        seed = _seed(name)
        folder = _derived(
            (str(root), fr.arch, depth, "ft", seed),
            lambda: tm.perturb(folder, root / f"{fr.arch}-{depth}l-ft{seed}", seed=seed),
        )
    if name in fr.tokens:
        tokens = fr.tokens[name]
        folder = _derived(
            (str(folder), "tokens", tokens),
            lambda: with_tokens(folder, folder.with_name(folder.name + "-tok"), tokens),
        )
    return folder


def with_tokens(src: Path, dst: Path, tokens: tuple[str, ...]) -> Path:
    """Copy a CausalLM folder adding tokens to its tokenizer and seeded rows to its embeddings."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src))
    tok.add_tokens(list(tokens), special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(str(src))
    old = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    gen = torch.Generator().manual_seed(_seed(dst.name))
    with torch.no_grad():
        for emb in {id(e): e for e in (model.get_input_embeddings(), model.lm_head)}.values():
            emb.weight[old:] = 0.02 * torch.randn(emb.weight[old:].shape, generator=gen)
    model.save_pretrained(str(dst))
    tok.save_pretrained(str(dst))
    return dst


@dataclass
class Case:
    """One corpus recipe substituted with tiny models."""

    path: Path
    front: Front
    docs: list[dict]  # as substituted: local folders, float32
    recipe: Path  # the substituted recipe file
    folders: dict[str, Path]  # model name -> its stand-in
    base: str  # the name the others are variants of

    @property
    def multi(self) -> bool:
        return len(self.docs) > 1

    @property
    def encoder(self) -> bool:
        return self.front.arch in tm.ENCODERS

    @property
    def stochastic(self) -> bool:
        return any(d["merge_method"] in STOCHASTIC for d in self.docs)


def substitute(path: Path, models_root: Path, work: Path, dtype: str | None = "float32") -> Case:
    """Build every model the recipe names and write the recipe with their folders, in dtype
    (None: the dtypes as written)."""
    fr, docs = front(path), documents(path)
    names = model_names(docs)
    base = _base_name(docs, names)
    folders = {n: tiny_model(models_root, fr, n, base) for n in names if not _is_adapter(n, docs)}
    for adapter, over in _adapters(docs):
        folders[adapter] = _adapter(models_root, adapter, folders[over])

    def visit(key, value):
        if key in _MODEL_KEYS and isinstance(value, str):
            return "+".join(str(folders.get(p, p)) for p in value.split("+"))
        return dtype if key == "dtype" and dtype else value

    out = [
        _walk({k: v for k, v in d.items() if k != "out_dtype" or not dtype}, visit) for d in docs
    ]
    for d in out if dtype else ():
        d["dtype"] = dtype
        if d.get("merge_method") in STOCHASTIC and dtype == "float32":
            # mergekit's masks, drawn as `mergekit-yaml --random-seed 0` draws them (run_mergekit)
            d.setdefault("zoo", {})["random_seed"] = 0
    recipe = work / f"{path.stem}.yaml"
    recipe.write_text(yaml.safe_dump_all(out, sort_keys=False))
    return Case(path, fr, out, recipe, folders, base)


def _adapter(models_root: Path, name: str, base: Path) -> Path:
    """The peft LoRA adapter standing in for `name`, over base (cached)."""
    seed = _seed(name)
    return _derived(
        (str(models_root), "lora", name, str(base)),
        lambda: tm.causal_lora_adapter(base, models_root / f"lora-{seed}", seed=seed),
    )


def _adapters(docs: list[dict]) -> list[tuple[str, str]]:
    """(adapter name, model it applies to) for every `model+lora` reference."""
    pairs = [tuple(r.split("+")) for r in _raw_refs(docs) if "+" in r]
    return [(b, a) for a, b in pairs]


def _is_adapter(name: str, docs: list[dict]) -> bool:
    return any(name == a for a, _ in _adapters(docs))


def run_zoo(recipe: Path, out: Path | None, dry_run: bool = False) -> tuple[int, str, str]:
    """`zoo merge RECIPE --out OUT` (or --dry-run) in this process: (exit code, stdout, stderr)."""
    from zoo.cli import main

    argv = ["merge", str(recipe), "--quiet"]
    argv += ["--dry-run"] if dry_run else ["--out", str(out)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = main(argv)
    return rc, stdout.getvalue(), stderr.getvalue().strip()


def run_mergekit(case: Case, out: Path) -> str | None:
    """mergekit on the substituted recipe, in this process; its one-line error, or None."""
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    options = MergeOptions(
        quiet=True,
        random_seed=0,
        device="cpu",
        write_model_card=False,
        lora_merge_cache=str(out.parent / "lora-cache"),
    )
    try:
        if case.multi:
            from mergekit.scripts.multimerge import main

            args = [str(case.recipe), "--out-path", str(out), "-I", str(out.parent / "mk-multi")]
            flags = ["--random-seed", "0", "--quiet", "--device", "cpu", "--no-write-model-card"]
            main.main(args + flags, standalone_mode=False)
        else:
            run_merge(MergeConfiguration.model_validate(case.docs[0]), str(out), options=options)
    except Exception as exc:  # noqa: BLE001 - a mergekit failure is a result, reported in one line
        return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return None


def load_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of an output folder, module-folder tensors keyed 'module/name'."""
    from safetensors import safe_open

    out = {}
    for file in sorted(Path(folder).rglob("*.safetensors")):
        module = file.parent.relative_to(folder).as_posix()
        prefix = "" if module == "." else module + "/"
        with safe_open(str(file), "pt") as f:
            out.update({prefix + k: f.get_tensor(k).float() for k in f.keys()})
    return out


def max_diff(ours: dict, theirs: dict) -> tuple[float, str | None]:
    """The largest |difference| over mergekit's tensors, or (inf, why) if names or shapes differ."""
    root = {k for k in ours if "/" not in k}  # ST module folders are zoo's own; mergekit has none
    if root != set(theirs):
        missing, extra = sorted(set(theirs) - root)[:3], sorted(root - set(theirs))[:3]
        return float("inf"), f"tensor names differ (zoo lacks {missing}, has extra {extra})"
    worst = 0.0
    for key, ref in theirs.items():
        if ours[key].shape != ref.shape:
            return float("inf"), f"{key}: shape {tuple(ours[key].shape)} vs {tuple(ref.shape)}"
        worst = max(worst, (ours[key].double() - ref.double()).abs().max().item())
    return worst, None


def mask_stats(merged: dict, base: dict) -> tuple[float, float]:
    """(fraction of entries changed from the base, mean |change|) over the shared tensors."""
    kept = total = 0
    size = 0.0
    for key, t in merged.items():
        if key in base and base[key].shape == t.shape:
            delta = t.double() - base[key].double()
            kept += int((delta != 0).sum())
            size += float(delta.abs().sum())
            total += delta.numel()
    return kept / max(total, 1), size / max(total, 1)


def stochastic_check(case: Case, ours: dict, theirs: dict) -> tuple[bool, str]:
    """Random masks differ: compare kept density (within 0.02) and mean |delta| (within 10%)."""
    base = load_tensors(case.folders[case.base])
    (kz, mz), (km, mm) = mask_stats(ours, base), mask_stats(theirs, base)
    ok = abs(kz - km) <= 0.02 and abs(mz - mm) <= 0.1 * mm
    return ok, f"kept {kz:.3f} vs {km:.3f}, mean |delta| {mz:.2e} vs {mm:.2e}"


def loads(case: Case, out: Path) -> str | None:
    """Load the output as users do (AutoModelForCausalLM / SentenceTransformer); error or None."""
    try:
        if case.encoder:
            from sentence_transformers import SentenceTransformer

            emb = SentenceTransformer(str(out), device="cpu").encode(["a tiny sentence"])
            finite = bool(torch.isfinite(torch.as_tensor(emb)).all())
        else:
            from transformers import AutoModelForCausalLM

            model, info = AutoModelForCausalLM.from_pretrained(str(out), output_loading_info=True)
            if info["missing_keys"] or info["unexpected_keys"]:
                return (
                    f"missing {info['missing_keys'][:3]}, unexpected {info['unexpected_keys'][:3]}"
                )
            with torch.no_grad():
                finite = bool(torch.isfinite(model(torch.tensor([[3, 4, 5]])).logits).all())
    except Exception as exc:  # noqa: BLE001 - reported in one line
        return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return None if finite else "non-finite output"


def run_case(path: Path, models_root: Path, work: Path, dtype: str | None = "float32") -> dict:
    """Substitute, merge with both tools, compare, load; the corpus row of one recipe."""
    start = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    case = substitute(path, models_root, work, dtype)
    row = {"recipe": path.name, "features": features(documents(path)), "max_diff": None}
    rc, _, err = run_zoo(case.recipe, work / "zoo")
    err = err.replace(str(case.recipe), path.name)
    mk_error = None if case.front.expect else run_mergekit(case, work / "mk")
    row |= _classify(case, rc, err, mk_error, work)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def _classify(case: Case, rc: int, err: str, mk_error: str | None, work: Path) -> dict:
    if case.front.expect:
        wanted = case.front.expect.removeprefix("refuse:")
        if rc == 2 and wanted in err and "\n" not in err:
            return {"result": "refused-as-expected", "detail": err}
        return {"result": "accepted-invalid", "detail": err or f"zoo exit {rc}"}
    if rc != 0:
        return {"result": "zoo-refused", "detail": err, "mergekit": mk_error or "ran"}
    load_error = loads(case, work / "zoo")
    if load_error:
        return {"result": "load-failed", "detail": load_error}
    if mk_error:
        return _mergekit_failed(case, mk_error, work / "zoo")
    ours, theirs = load_tensors(work / "zoo"), load_tensors(work / "mk")
    for prefix in case.front.deliberate:
        ours = {k: v for k, v in ours.items() if not k.startswith(prefix)}
        theirs = {k: v for k, v in theirs.items() if not k.startswith(prefix)}
    worst, why = max_diff(ours, theirs)
    why = why or tokenizer_difference(work / "zoo", work / "mk")
    if worst <= TOL and why is None:
        return {"result": "equal", "detail": f"max |diff| {worst:.1e}", "max_diff": worst}
    if why is not None:
        return {"result": "differ", "detail": why, "max_diff": worst}
    if case.stochastic:
        ok, detail = stochastic_check(case, ours, theirs)
        return {"result": "stochastic" if ok else "differ", "detail": detail, "max_diff": worst}
    return {"result": "differ", "detail": f"max |diff| {worst:.2e}", "max_diff": worst}


def _mergekit_failed(case: Case, mk_error: str, out: Path) -> dict:
    """mergekit could not run it: check zoo against the layer map of a passthrough, if it is one."""
    ref = passthrough_reference(case)
    if ref is None:
        return {"result": "mergekit-failed", "detail": f"mergekit: {mk_error}; zoo output loads"}
    worst, why = max_diff(load_tensors(out), ref)
    if why or worst > 0:
        return {"result": "differ", "detail": why or f"layer map: max |diff| {worst:.2e}"}
    return {"result": "mergekit-failed", "detail": f"mergekit: {mk_error}; zoo = layer map"}


_LAYER = re.compile(r"^(.*?\.layers?\.)(\d+)\.(.*)$")


def passthrough_reference(case: Case) -> dict | None:
    """The expected output of a single-document passthrough over slices: the sources' layers
    renumbered in order, every other tensor from the base (else the first source); None if the
    recipe is not one. Pure bookkeeping, independent of both tools."""
    doc = case.docs[0]
    if case.multi or doc["merge_method"] != "passthrough" or "slices" not in doc:
        return None
    out: dict[str, torch.Tensor] = {}
    first = doc.get("base_model") or doc["slices"][0]["sources"][0]["model"]
    for key, t in load_tensors(Path(first)).items():
        if "/" not in key and not _LAYER.match(key):
            out[key] = t
    index = 0
    for sl in doc["slices"]:
        (src,) = sl["sources"]
        lo, hi = src["layer_range"]
        tensors = load_tensors(Path(src["model"]))
        for i in range(lo, hi):
            for key, t in tensors.items():
                m = _LAYER.match(key)
                if m and int(m[2]) == i:
                    out[f"{m[1]}{index}.{m[3]}"] = t
            index += 1
    return out


def tokenizer_difference(ours: Path, theirs: Path) -> str | None:
    """How the two outputs' tokenizers differ (vocabulary, chat template), or None."""
    from transformers import AutoTokenizer

    if not (theirs / "tokenizer_config.json").is_file():
        return None
    if not (ours / "tokenizer_config.json").is_file():
        return "zoo wrote no tokenizer (mergekit did)"
    a, b = (AutoTokenizer.from_pretrained(str(p)) for p in (ours, theirs))
    if a.get_vocab() != b.get_vocab():
        return f"tokenizer vocabularies differ ({len(a)} vs {len(b)} tokens)"
    if a.chat_template != b.chat_template:
        return "chat templates differ"
    return None
