"""pyproject.toml and requirements/lock.txt agree: `make lock` was run after the last change.

The lock pins every transitive dependency (pip-compile, with hashes); its direct dependencies are
the entries pip-compile annotates `via boom-zoo (pyproject.toml)`. A dependency added to, removed
from, or re-bounded in pyproject.toml without re-locking fails here, naming the package.
"""

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("test",)  # what `make test` installs besides the core dependencies
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_DIRECT = "boom-zoo (pyproject.toml)"


def _declared(pyproject: str) -> dict[str, list[Requirement]]:
    """Every requirement of the core dependencies and the locked extras, by canonical name."""
    project = tomllib.loads(pyproject)["project"]
    lines = list(project["dependencies"])
    for extra in LOCKED_EXTRAS:
        lines += project["optional-dependencies"][extra]
    out: dict[str, list[Requirement]] = {}
    for line in lines:
        req = Requirement(line)
        out.setdefault(canonicalize_name(req.name), []).append(req)
    return out


def _locked(lock: str) -> tuple[dict[str, Version], set[str]]:
    """(every pin, the names pip-compile marks as coming from pyproject.toml)."""
    pins: dict[str, Version] = {}
    direct: set[str] = set()
    current = None
    for line in lock.splitlines():
        if m := _PIN.match(line):
            current = canonicalize_name(m.group(1))
            pins[current] = Version(m.group(2))
        elif current and line.lstrip("# ").removeprefix("via ").strip() == _DIRECT:
            direct.add(current)
    return pins, direct


def _disagreements(pyproject: str, lock: str) -> list[str]:
    declared = _declared(pyproject)
    pins, direct = _locked(lock)
    problems = [
        f"{n}: in pyproject.toml, not locked as a direct dependency"
        for n in sorted(declared.keys() - direct)
    ]
    problems += [
        f"{n}: locked as a direct dependency, not in pyproject.toml"
        for n in sorted(direct - declared.keys())
    ]
    for name in sorted(declared.keys() & pins.keys()):
        for req in declared[name]:
            if not req.specifier.contains(pins[name], prereleases=True):
                problems.append(f"{name}: locked {pins[name]} is outside pyproject's {req}")
    return problems


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def test_the_lock_matches_pyproject():
    problems = _disagreements(_read("pyproject.toml"), _read("requirements/lock.txt"))
    assert problems == [], "run `make lock`:\n" + "\n".join(problems)


def test_every_pin_carries_a_hash():
    blocks = re.split(r"\n(?=[A-Za-z0-9])", _read("requirements/lock.txt"))
    unhashed = [b.split()[0] for b in blocks if _PIN.match(b) and "--hash=sha256:" not in b]
    assert unhashed == []


def test_torch_is_locked_to_the_cpu_build():
    pins, _ = _locked(_read("requirements/lock.txt"))
    assert pins["torch"] == Version("2.13.0+cpu")
    assert not [n for n in pins if n.startswith("nvidia-")]


def test_a_dependency_added_without_relocking_is_named():
    pyproject = _read("pyproject.toml").replace(
        '"pyyaml>=6,<7",', '"pyyaml>=6,<7",\n    "rich>=13",'
    )
    assert _disagreements(pyproject, _read("requirements/lock.txt")) == [
        "rich: in pyproject.toml, not locked as a direct dependency"
    ]


def test_a_bound_the_lock_breaks_is_named():
    pyproject = re.sub(r'"peft[^"]*"', '"peft>=0.99"', _read("pyproject.toml"))
    [problem] = _disagreements(pyproject, _read("requirements/lock.txt"))
    assert problem.startswith("peft: locked ") and problem.endswith(
        "outside pyproject's peft>=0.99"
    )


def test_a_dependency_dropped_from_pyproject_is_named():
    pyproject = re.sub(r'\n\s*"psutil[^"]*",', "", _read("pyproject.toml"))
    assert _disagreements(pyproject, _read("requirements/lock.txt")) == [
        "psutil: locked as a direct dependency, not in pyproject.toml"
    ]
