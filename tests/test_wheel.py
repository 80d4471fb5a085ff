"""The built wheel carries what an installed zoo needs: the card templates are package data."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.test_metadata import bag
from zoo.cards.member import member_card
from zoo.hub.metadata import parse_metadata

ROOT = Path(__file__).resolve().parents[1]
RENDER = """
import json, sys
import zoo
from zoo.cards.member import member_card
meta = json.loads(open(sys.argv[1]).read())
print(json.dumps({"file": zoo.__file__, "card": member_card("demo/bag-0.4", meta)}))
"""


def _pip(*args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], cwd=cwd, check=True)


def _wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ or egg-info)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "zoo", src / "zoo", ignore=shutil.ignore_patterns("__pycache__"))
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), ".", cwd=src)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    return wheel


def test_a_card_renders_from_the_installed_wheel(tmp_path):
    site = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(site), str(_wheel(tmp_path)), cwd=tmp_path)
    meta = parse_metadata(bag()).model_dump(mode="json")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", RENDER, str(tmp_path / "meta.json")],
        cwd=elsewhere,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert Path(out["file"]).is_relative_to(site)
    assert out["card"] == member_card("demo/bag-0.4", meta)
    shipped = sorted(p.name for p in (site / "zoo" / "cards" / "templates").iterdir())
    source = sorted(p.name for p in (ROOT / "zoo" / "cards" / "templates").glob("*.md.j2"))
    assert shipped == source and {"member.md.j2", "merged.md.j2", "_results.md.j2"} <= set(shipped)
