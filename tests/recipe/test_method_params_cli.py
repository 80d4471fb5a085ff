"""`zoo merge` on local recipes: parameter values outside their meaning stop `--dry-run` with one
line (exit 2) before any weight is read; mergekit's per-model global parameters are accepted with
a warning; a stochastic method's lock reproduces it byte for byte."""

from __future__ import annotations

import subprocess
import sys

import pytest

from zoo.cli import main
from zoo.merge import params

RECIPE = """\
merge_method: {method}
base_model: {base}
parameters: {glob}
models:
  - model: {a}
    parameters: {pa}
  - model: {b}
    parameters: {pb}
zoo: {{seed: {seed}}}
"""

# (method, global params, model 1 params, model 2 params, the one line on stderr)
BAD = [
    ("ties", "{density: 1.5}", "{weight: 1}", "{weight: 1}", "parameters.density: 1.5 is not a"),
    (
        "ties",
        "{density: 0.5}",
        "{weight: 1, density: [0.5, 0]}",
        "{weight: 1}",
        "model 1 parameters.density: 0.0",
    ),
    ("slerp", "{t: 1.2}", "{}", "{}", "parameters.t: 1.2 is not an"),
    ("della", "{density: 0.9}", "{weight: 1}", "{weight: 1}", "density 0.9 +/- epsilon 0.15"),
    ("linear", "{}", "{weight: 0.5}", "{weight: -0.5}", "weight: the weights sum to 0"),
    ("breadcrumbs", "{gamma: 1.5}", "{weight: 1}", "{weight: 1}", "gamma: 1.5 is not a fraction"),
    ("sce", "{select_topk: 2}", "{}", "{}", "select_topk: 2.0 is not a"),
]


def _recipe(tmp_path, family, method, glob, pa, pb, seed=0, name="recipe.yaml"):
    a, b = family["variants"][:2]
    text = RECIPE.format(
        method=method, base=family["base"], glob=glob, a=a, b=b, pa=pa, pb=pb, seed=seed
    )
    if method == "linear":  # without a base (a base would join linear's inputs)
        text = text.replace(f"base_model: {family['base']}\n", "")
    if method == "slerp":  # slerp merges the base and one model
        text = text.replace(f"  - model: {b}\n    parameters: {pb}\n", "")
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("method, glob, pa, pb, needle", BAD, ids=[f"{c[0]}-{c[1]}" for c in BAD])
def test_dry_run_refuses_values_outside_their_meaning(
    families, tmp_path, capsys, method, glob, pa, pb, needle
):
    recipe = _recipe(tmp_path, families("bert"), method, glob, pa, pb)
    code = main(["merge", str(recipe), "--dry-run", "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"zoo: error: {method}: ") and needle in err, err
    assert not (tmp_path / "out").exists()


def test_per_model_lambda_in_della_is_accepted_with_one_warning(
    families, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(params, "_WARNED", set())
    glob, pa = "{density: 0.5, lambda: 0.9}", "{weight: 0.5, lambda: 2.0}"
    recipe = _recipe(tmp_path, families("bert"), "della", glob, pa, "{weight: 0.5}")
    assert main(["merge", str(recipe), "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "zoo: warning: della: model 1 parameters.lambda is a global parameter: ignored per model"
        " (as mergekit does); set it under parameters:"
    ]


def test_the_warning_is_one_line_from_the_console_script(families, tmp_path):
    glob, pa = "{density: 0.5, lambda: 0.9}", "{weight: 0.5, lambda: 2.0}"
    recipe = _recipe(tmp_path, families("bert"), "della", glob, pa, "{weight: 0.5}")
    run = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "merge", str(recipe), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert [line for line in run.stderr.splitlines() if "lambda" in line] == [
        "zoo: warning: della: model 1 parameters.lambda is a global parameter: ignored per model"
        " (as mergekit does); set it under parameters:"
    ]


@pytest.mark.parametrize("method", ["dare_ties", "della_linear"])
def test_a_seeded_stochastic_merge_is_reproduced_by_its_lock(families, tmp_path, method):
    family = families("bert")
    weights = "{weight: 0.5}"
    outs = {}
    for seed in (5, 6):
        recipe = _recipe(
            tmp_path, family, method, "{density: 0.5}", weights, weights, seed, f"r{seed}.yaml"
        )
        outs[seed] = tmp_path / f"seed{seed}"
        assert main(["merge", str(recipe), "--out", str(outs[seed]), "--quiet"]) == 0
    again = tmp_path / "again"
    lock = outs[5] / "zoo.lock.json"
    assert '"seed": 5' in lock.read_text()
    assert main(["merge", "--lock", str(lock), "--out", str(again), "--quiet"]) == 0
    first = (outs[5] / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == first
    assert (outs[6] / "model.safetensors").read_bytes() != first  # the seed decides the masks
