"""The packages with lazy attributes (zoo.lazy): cheap to import, and every name still resolves."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAZY = ["zoo.pipelines", "zoo.train", "zoo.data.suite", "zoo.eval"]
HEAVY = ["torch", "mergekit", "mteb", "transformers", "sentence_transformers", "datasets", "peft"]


def test_importing_the_lazy_packages_imports_no_heavy_dependency(tmp_path):
    code = (
        "import json, sys\n"
        f"for name in {LAZY!r}: __import__(name)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("package", LAZY)
def test_every_exported_name_resolves_to_its_modules_object(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        home = importlib.import_module(value.__module__)
        assert getattr(home, name) is value, f"{package}.{name}"


def test_the_table_names_the_module_that_defines_each_name():
    import zoo.pipelines
    import zoo.pipelines.members

    assert zoo.pipelines.push is zoo.pipelines.members.push
    from zoo.data.suite import build_suite
    from zoo.data.suite.builder import build_suite as built

    assert build_suite is built


@pytest.mark.parametrize("package", LAZY)
def test_an_unknown_name_is_an_attribute_error(package):
    module = importlib.import_module(package)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'bogus'"):
        module.bogus  # noqa: B018
    assert not hasattr(module, "bogus")
