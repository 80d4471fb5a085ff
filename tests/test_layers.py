"""Dependency arrows point one way (STYLE.md): cli -> pipelines -> components -> types.

Components exchange plain data and do not import each other (recipe may ask merge which methods
exist); each heavy dependency is imported in one component only.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "zoo"
COMPONENTS = {"hub", "data", "train", "recipe", "merge", "eval", "cards"}
SHARED = {"types", "errors", "hashing", "safety", "lazy", "tasks", "schema", "suggest", "__init__"}
# recipe asks merge which methods exist; eval reads task folders with the data layer's validator.
ALLOWED_CROSS = {("recipe", "merge"), ("eval", "data")}
# Every heavy dependency, with the components that use it today (measured with grep). torch and
# datasets are the shared currency of the model and data layers; the rest stay in one or two.
HEAVY = {
    "torch": {"merge", "train", "eval"},
    "safetensors": {"merge"},
    "tokenizers": {"merge"},
    "mergekit": {"merge"},
    "transformers": {"train"},
    "sentence_transformers": {"train", "eval"},
    "peft": {"train"},
    "accelerate": {"train"},
    "ray": {"train"},
    "datasets": {"data", "train", "eval"},
    "mteb": {"eval"},
    "huggingface_hub": {"hub", "cards"},
    "httpx2": {"hub"},
    "starlette": {"hub"},
    "uvicorn": {"hub"},
}
# Known to break the rule, to be moved (issue 14: to_train_columns goes to zoo.train).
KNOWN_HEAVY = {("pipelines/bags.py", "datasets")}


def _layer(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _violations():
    for path in sorted(ROOT.rglob("*.py")):
        layer = _layer(path)
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "zoo":
                target = rest.split(".")[0]
                if (
                    layer in COMPONENTS
                    and target in COMPONENTS
                    and target != layer
                    and (layer, target) not in ALLOWED_CROSS
                ):
                    yield f"{path.relative_to(ROOT)} imports zoo.{target}"
                if layer in COMPONENTS | SHARED and target in {"pipelines", "cli"}:
                    yield f"{path.relative_to(ROOT)} imports zoo.{target} (arrow points up)"
                if layer in SHARED - {"__init__"} and target in COMPONENTS:
                    yield f"{path.relative_to(ROOT)} imports zoo.{target} (shared must stay leaf)"
            elif top in HEAVY and layer not in HEAVY[top]:
                if (path.relative_to(ROOT).as_posix(), top) in KNOWN_HEAVY:
                    continue
                yield f"{path.relative_to(ROOT)} imports {top} (belongs in {sorted(HEAVY[top])})"


def test_dependency_arrows_point_one_way():
    assert list(_violations()) == []


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    fake = tmp_path / "zoo"
    (fake / "cards").mkdir(parents=True)
    (fake / "cards" / "x.py").write_text("import mergekit\nfrom zoo.merge import engine\n")
    (fake / "cli.py").write_text("def main():\n    import torch\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", fake)
    assert sorted(_violations()) == [
        "cards/x.py imports mergekit (belongs in ['merge'])",
        "cards/x.py imports zoo.merge",
        "cli.py imports torch (belongs in ['eval', 'merge', 'train'])",
    ]
