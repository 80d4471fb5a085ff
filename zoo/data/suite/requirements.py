"""What each suite source needs on the machine, and a check that names what is missing.

A leaf of the suite: every source module imports SourceInfo from here, so this module imports
none of them (`python -m zoo.data.suite` lists what they need).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UserError


@dataclass(frozen=True)
class SourceInfo:
    """A data source of the suite: what it is, its licence, and what must be installed."""

    name: str
    title: str
    licence: str
    debs: tuple[str, ...] = ()  # Debian packages that must be installed
    pip: tuple[str, ...] = ()  # Python modules that must be importable (from PyPI distributions)
    paths: tuple[str, ...] = ()  # glob patterns that must match a file ({apt_lists}: the lists dir)
    base: bool = False  # present after `pip install` on the project's image: usable by tiny


def apt_lists_dir() -> Path:
    """Return the private APT lists folder (Packages + Translation-en) that suite-deps.sh fills."""
    env = os.environ.get("ZOO_APT_LISTS")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "zoo" / "apt-lists"


def installed_debs(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Return {package: version} for the installed ones among `names` (dpkg-query; no network)."""
    if not names:
        return {}
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Status}\n", *names],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return {}
    out = {}
    for line in result.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == "installed":
            out[parts[0].split(":")[0]] = parts[1]
    return out


def missing(source: SourceInfo) -> list[str]:
    """Return what `source` lacks as 'deb NAME', 'pip NAME' or 'file PATH' (empty: usable)."""
    have = installed_debs(source.debs)
    gaps = [f"deb {d}" for d in source.debs if d not in have]
    gaps += [f"pip {m}" for m in source.pip if importlib.util.find_spec(m) is None]
    patterns = [p.format(apt_lists=apt_lists_dir()) for p in source.paths]
    gaps += [f"file {p}" for p in patterns if not glob.glob(p)]
    return gaps


def check_sources(sources: list[SourceInfo], size: str) -> None:
    """Raise one UserError naming every missing package or file of `sources`, with the fix."""
    lines = [f"{s.name}: {', '.join(gaps)}" for s in sources if (gaps := missing(s))]
    if not lines:
        return
    hint = (
        "install them with `make suite` (scripts/suite-deps.sh: apt packages and Debian's "
        "package descriptions) and `pip install -e .`"
    )
    raise UserError(f"suite --size {size}: missing sources; {hint}:\n  " + "\n  ".join(lines))
