"""The vendored browser assets: complete, relative, locked, and in the wheel."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from tests.test_wheel import _wheel
from tests.web.browser import ROOT

VENDOR = ROOT / "zoo" / "hub" / "server" / "web" / "static" / "vendor"
MERMAID = VENDOR / "mermaid"
# Static imports (`import x from"..."`, `import"..."`, `export ... from"..."`) and dynamic ones.
_IMPORT = re.compile(r"""(?:\bimport|\bfrom)\s*\(?\s*["']([^"']+\.m?js)["']""")


def _present() -> list[Path]:
    assert (MERMAID / "mermaid.esm.min.mjs").is_file(), (
        f"{MERMAID} is missing: run scripts/web-assets.sh (make test does)"
    )
    return sorted(p for p in VENDOR.rglob("*") if p.is_file())


def test_every_import_is_relative_and_resolves():
    modules = [p for p in _present() if p.suffix == ".mjs"]
    assert len(modules) > 50
    unresolved, imported = [], set()
    for module in modules:
        for spec in _IMPORT.findall(module.read_text(encoding="utf-8")):
            target = (module.parent / spec).resolve()
            if not spec.startswith("./") or not target.is_file():
                unresolved.append(f"{module.relative_to(MERMAID)}: {spec}")
            imported.add(target)
    assert unresolved == []
    entry = (MERMAID / "mermaid.esm.min.mjs").resolve()
    # Every chunk is reachable from the entry or another chunk: nothing copied for nothing.
    assert {p.resolve() for p in modules} - imported == {entry}


def test_only_the_esm_build_and_its_licence_are_copied():
    names = {p.relative_to(MERMAID).as_posix() for p in _present()}
    assert "LICENSE" in names and "mermaid.esm.min.mjs" in names
    assert {n.rsplit("/", 1)[0] for n in names if "/" in n} == {"chunks/mermaid.esm.min"}
    assert not [n for n in names if n.endswith(".map") or "sourceMappingURL" in n]
    assert "MIT" in (MERMAID / "LICENSE").read_text()


def test_the_npm_lock_pins_mermaid_and_names_no_download_address():
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text())
    mermaid = lock["packages"]["node_modules/mermaid"]
    assert mermaid["version"] == "12.3.0"
    assert all(
        p.get("integrity", "").startswith("sha512-") for k, p in lock["packages"].items() if k
    )
    assert not [k for k, p in lock["packages"].items() if "resolved" in p]


def test_the_wheel_carries_the_vendored_assets(tmp_path):
    wanted = {p.relative_to(ROOT).as_posix() for p in _present()}
    with zipfile.ZipFile(_wheel(tmp_path)) as wheel:
        names = set(wheel.namelist())
    assert wanted - names == set()
