"""`python -m zoo.data.suite` prints what scripts/suite-deps.sh installs (as a user runs it)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo.data.suite", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_debs_lists_every_sources_packages_on_one_line():
    from zoo.data.suite.builder import SOURCES

    result = _run("--debs")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == sorted({d for s in SOURCES for d in s.debs})
    assert {"wordnet-base", "fortunes", "sword-dict-naves"} <= set(result.stdout.split())


def test_apt_lists_prints_the_private_lists_folder(tmp_path):
    result = _run("--apt-lists", ZOO_APT_LISTS=str(tmp_path / "lists"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path / 'lists'}\n"


def test_anything_else_is_a_usage_error():
    result = _run("--bogus")
    assert result.returncode == 2
    assert "usage: python -m zoo.data.suite --debs | --apt-lists" in result.stderr
