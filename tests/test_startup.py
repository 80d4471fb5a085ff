"""The start-up path imports only what the command needs (issue 18), checked in a fresh process
through `sys.modules`: `zoo --help` and reading a recipe import no torch and no mergekit; a merge
with zoo's own (chunked) kernels imports none of mergekit's peft/transformers stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ["torch", "mergekit", "transformers", "peft", "accelerate", "mteb", "datasets"]
# A ties merge of a tensor within the chunk budget takes its top-k from mergekit's own
# sparsify (bit for bit with mergekit-yaml), which imports only torch behind it.
ONE_CHUNK_TIES = {"mergekit", "mergekit.sparsify"}


def _heavy_after(code: str, cwd: Path) -> list[str]:
    """Run code in a fresh interpreter; return the heavy modules (and submodules) it loaded."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


COMMANDS = ["hub", "push", "ls", "show", "pull", "merge", "extract-lora", "data", "bag", "boom"]
COMMANDS += ["update", "eval", "card"]


def test_zoo_help_imports_no_torch_mergekit_transformers_or_peft(tmp_path):
    code = "from zoo.cli import main\nassert main(['--help']) == 0"
    assert _heavy_after(code, tmp_path) == []


def test_every_commands_help_imports_none_either(tmp_path):
    code = f"from zoo.cli import main\nfor c in {COMMANDS!r}: assert main([c, '--help']) == 0"
    assert _heavy_after(code, tmp_path) == []


def test_the_probe_sees_a_heavy_import(tmp_path):
    assert "mergekit.sparsify" in _heavy_after("import mergekit.sparsify", tmp_path)


RECIPE = """\
merge_method: ties
base_model: org/base
parameters: {normalize: true}
models:
  - model: org/a
    parameters: {weight: 0.5, density: [{value: 0.7, filter: mlp}, {value: [0.2, 0.4]}]}
  - model: org/b
    parameters: {weight: [0.3, 0.7], density: 0.5}
"""


def test_reading_and_checking_a_recipe_imports_no_torch_or_mergekit(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    code = (
        "from zoo.recipe.schema import load_recipe\nfrom zoo.recipe.plan import merge_spec\n"
        "spec = merge_spec(load_recipe('r.yaml'))\nassert spec.method == 'ties'\n"
        "from zoo.merge.registry import list_methods, get_method\n"
        "assert all(get_method(n).reference_url for n in list_methods())"
    )
    assert _heavy_after(code, tmp_path) == []


@pytest.mark.parametrize(
    "method, params, allowed",
    [
        ("linear", {"weight": 0.5}, set()),
        ("multislerp", {"weight": 0.5}, set()),
        ("ties", {"weight": 0.5, "density": 0.5}, ONE_CHUNK_TIES),
    ],
)
def test_a_merge_with_zoos_kernels_imports_no_mergekit_stack(
    families, tmp_path, method, params, allowed
):
    bert = families("bert")
    base, variants = bert["base"], bert["variants"][:2]
    code = (
        "from pathlib import Path\nfrom zoo.merge.engine import MergeInput, merge_folders\n"
        f"inputs = [MergeInput(Path(p)) for p in {[str(v) for v in variants]!r}]\n"
        f"merge_folders(inputs, Path({str(base)!r}), {method!r}, {params!r}, Path('out'), "
        "progress=False)\n"
        "assert any(Path('out').rglob('*.safetensors'))"
    )
    loaded = set(_heavy_after(code, tmp_path))
    assert "torch" in loaded
    assert {m for m in loaded if m.split(".")[0] != "torch"} <= allowed


def test_importing_the_engine_imports_no_mergekit_at_all(tmp_path):
    loaded = _heavy_after("import zoo.merge.engine", tmp_path)
    assert [m for m in loaded if m.split(".")[0] != "torch"] == []


def _dry_run_imports(tmp_path: Path, recipe: str) -> list[str]:
    """The heavy modules a fresh `zoo merge r.yaml --dry-run` of recipe loads (it must pass)."""
    (tmp_path / "r.yaml").write_text(recipe)
    code = "from zoo.cli import main\nassert main(['merge', 'r.yaml', '--dry-run']) == 0"
    return _heavy_after(code, tmp_path)


def test_a_dry_run_imports_no_torch_mergekit_transformers_or_peft(families, tmp_path):
    a, b = families("bert")["variants"][:2]
    recipe = (
        f"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 0.5}}\n"
        f"  - model: {b}\n    parameters: {{weight: 0.5}}\n"
    )
    assert _dry_run_imports(tmp_path, recipe) == []


def test_a_ties_dry_run_with_a_base_and_a_lora_adapter_imports_none_either(families, tmp_path):
    from tests import tiny

    bert = families("bert")
    base, other = bert["base"], bert["variants"][0]
    adapter = tiny.lora_adapter(base, tmp_path / "adapter", seed=3, target_modules=["query"])
    recipe = (
        f"merge_method: ties\nbase_model: {base}\nparameters: {{normalize: true}}\nmodels:\n"
        f"  - model: {other}\n    parameters: {{weight: 0.5, density: 0.5}}\n"
        f"  - model: {base}+{adapter}\n    parameters: {{weight: 0.5, density: 0.7}}\n"
    )
    assert _dry_run_imports(tmp_path, recipe) == []


MORE_DRY_RUNS = {
    # the last merge is planned against a skeleton of the first's output (zoo.merge.skeleton)
    "multi-merge": (
        "name: pair\nmerge_method: linear\nmodels:\n  - model: {a}\n"
        "    parameters: {{weight: 0.5}}\n  - model: {b}\n    parameters: {{weight: 0.5}}\n"
        "---\nmerge_method: ties\n"
        "base_model: {base}\nparameters: {{density: 0.5}}\nmodels:\n  - model: pair\n"
        "    parameters: {{weight: 0.5}}\n  - model: {b}\n    parameters: {{weight: 0.5}}\n"
    ),
    # output slices, and a vocabulary planned row by row (zoo.merge.vocab)
    "slices with a union vocabulary": (
        "merge_method: slerp\nbase_model: {a}\nparameters: {{t: 0.3}}\ntokenizer_source: union\n"
        "slices:\n  - sources:\n      - model: {a}\n        layer_range: [0, 2]\n"
        "      - model: {b}\n        layer_range: [0, 2]\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(MORE_DRY_RUNS))
def test_other_dry_runs_import_none_either(families, tmp_path, kind):
    bert = families("bert")
    a, b = bert["variants"][:2]
    recipe = MORE_DRY_RUNS[kind].format(a=a, b=b, base=bert["base"])
    assert _dry_run_imports(tmp_path, recipe) == []
