"""Run huggingface_hub's own test suite against `zoo hub serve` and class every failure.

    python scripts/hf_conformance.py [--no-xet] [--modules test_hf_api ...] [--out FILE]

Steps (everything lives under build/hf-conformance/, which this script may wipe):
1. `pip download --no-binary :all: --no-deps huggingface_hub==<installed version>` (the sdist from
   the configured index) and unpack it. The sdist's tests/ lacks conftest.py (its fixtures:
   repo_factory, xet_mode, patch_constants...), __init__.py and fixtures/, so the upstream files,
   vendored unchanged in scripts/hf_conformance_upstream/, are copied in where missing.
2. A fresh hub root with three users and write tokens (`zoo hub token add`), served by
   `zoo hub serve` on 127.0.0.1, a free port.
3. Only the constants of tests/testing_constants.py are changed: ENDPOINT_STAGING, USER, TOKEN,
   OTHER_USER, OTHER_TOKEN, ENTERPRISE_USER, ENTERPRISE_ORG, ENTERPRISE_TOKEN, FULL_NAME.
   HF_ENDPOINT points at the server too (upstream sets HUGGINGFACE_CO_STAGING=1 instead, which
   pins hub-ci.huggingface.co); production endpoints stay as they are (unreachable here).
4. Each module runs under pytest (the sdist's own pytest config; pytest-mock installed into
   build/hf-conformance/plugins from the configured index; pytest-timeout caps each test), Xet
   enabled unless --no-xet (which sets HF_HUB_DISABLE_XET=1 for the run).
5. The JUnit results are classed by hf_conformance_rules.RULES (first match wins; anything
   unmatched is a "zoo gap") and written as a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from hf_conformance_rules import DELIBERATE, RULES, ZOO_GAP, classify

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "hf-conformance"
UPSTREAM = Path(__file__).with_name("hf_conformance_upstream")
MODULES = [
    "test_hf_api",
    "test_commit_api",
    "test_file_download",
    "test_snapshot_download",
    "test_repocard",
    "test_hf_file_system",
    "test_cli",
    "test_cli_discussions",
    "test_hub_mixin",
    "test_upload_pipeline",
]
# Test dependencies the sdist's tests import that zoo's lock lacks (installed under build/ only).
PLUGINS = ["pytest-mock", "jedi", "parso"]
# The harness plugin (loaded with -p; it changes no test):
# - pytest-vcr (not on the local index) registers the `vcr` marker; under the sdist's
#   --strict-markers a module using it fails to collect without it;
# - each test's markers go to $HF_CONFORMANCE_MARKERS (JSON), so rules can match `production`;
# - requests to hosts other than the server (huggingface.co, hub-ci: unreachable here) are not
#   retried, so a test reading production fails in a second rather than after 23 s of backoff;
#   requests to the server keep the client's retry policy.
MARKER_PLUGIN = """
import os
from urllib.parse import urlsplit


def pytest_configure(config):
    config.addinivalue_line("markers", "vcr: replays recorded HTTP traffic (pytest-vcr)")
    from huggingface_hub.utils import _http

    server = urlsplit(os.environ["HF_ENDPOINT"]).netloc
    backoff = _http._http_backoff_base

    def no_retry_off_server(method, url, *args, **kwargs):
        if urlsplit(str(url)).netloc != server:
            kwargs["max_retries"] = 0
        return backoff(method, url, *args, **kwargs)

    _http._http_backoff_base = no_retry_off_server


MARKERS = {}


def pytest_runtest_setup(item):
    parts = item.nodeid.split("::")
    owner = parts[1] if len(parts) > 2 else parts[0].rsplit("/", 1)[-1].removesuffix(".py")
    MARKERS[f"{owner}::{parts[-1]}"] = sorted({m.name for m in item.iter_markers()})


def pytest_sessionfinish(session):
    import json

    with open(os.environ["HF_CONFORMANCE_MARKERS"], "w") as f:
        json.dump(MARKERS, f)
"""
USERS = {"USER": "hub-user", "OTHER_USER": "hub-other", "ENTERPRISE_USER": "hub-enterprise"}


@dataclass
class Case:
    """One test's outcome: passed, failed, error or skipped, with its failure text."""

    module: str
    name: str
    outcome: str
    text: str = ""
    klass: str = ""
    reason: str = ""
    markers: list[str] = field(default_factory=list)


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kw)


def fetch_sdist(version: str, sdist: Path | None, dest: Path) -> Path:
    """Fetch the sdist of huggingface_hub==version (or copy `sdist`), unpack it in `dest`."""
    dl = WORK / "sdist"
    dl.mkdir(parents=True, exist_ok=True)
    name = f"huggingface_hub-{version}.tar.gz"
    if sdist is not None:
        shutil.copy(sdist, dl / name)
    elif not (dl / name).exists():
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
        _run([*pip, "-d", dl, f"huggingface_hub=={version}"])
    src = dest / f"huggingface_hub-{version}"
    with tarfile.open(dl / name) as tar:
        tar.extractall(dest, filter="data")
    tests = src / "tests"
    _complete_tests(tests)
    return tests


def _complete_tests(tests: Path) -> None:
    """Add the upstream test files the sdist lacks (never replacing one it ships)."""
    wanted = {"__init__.py": None, "conftest.py": UPSTREAM / "conftest.py.txt"}
    for path in (UPSTREAM / "fixtures").rglob("*"):
        if path.is_file():
            wanted[str(path.relative_to(UPSTREAM))] = path
    for rel, source in wanted.items():
        dest = tests / rel
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(source.read_bytes() if source else b"")


def install_plugins() -> Path:
    """pytest plugins the upstream tests need, installed into a throwaway folder (not the lock)."""
    target = WORK / "plugins"
    stamp = target / ".installed"
    if not stamp.exists() or stamp.read_text() != " ".join(PLUGINS):
        shutil.rmtree(target, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", target]
        _run([*pip, *PLUGINS])
        stamp.write_text(" ".join(PLUGINS))
    (target / "hf_conformance_markers.py").write_text(MARKER_PLUGIN)
    return target


def make_users(hub_root: Path) -> dict[str, str]:
    """Create the hub root and one write token per test user; return {constant: value}."""
    zoo = [sys.executable, "-m", "zoo.cli"]
    values = dict(USERS)
    for const, user in USERS.items():
        token_const = const.replace("USER", "TOKEN")
        out = _run([*zoo, "hub", "token", "add", user, "--write", "--root", hub_root])
        values[token_const] = out.stdout.strip().splitlines()[-1]
    values["ENTERPRISE_ORG"] = "hub-enterprise-org"
    values["FULL_NAME"] = USERS["USER"]
    return values


def patch_constants(tests: Path, values: dict[str, str]) -> None:
    """Rewrite only the `NAME = "..."` assignments of testing_constants.py named in `values`."""
    path = tests / "testing_constants.py"
    text = path.read_text()
    for name, value in values.items():
        text, n = re.subn(rf'^{name} = ".*"$', f"{name} = {value!r}", text, flags=re.M)
        if n != 1:
            raise SystemExit(f"testing_constants.py has no single {name} = '...' line")
    path.write_text(text)


def start_server(hub_root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """Start `zoo hub serve` on a free 127.0.0.1 port; return the process and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "zoo.cli", "hub", "serve", "--root", hub_root]
    cmd += ["--host", "127.0.0.1", "--port", port]
    proc = subprocess.Popen([str(c) for c in cmd], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx2.get(f"{url}/api/models", timeout=1)
            return proc, url
        except httpx2.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"zoo hub serve did not start; see {log}")


def run_module(tests: Path, module: str, env: dict, timeout: int, runs: Path) -> Path:
    """Run one upstream test module; return its JUnit XML path (its log lies beside it)."""
    xml = runs / f"{module}.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", f"tests/{module}.py", f"--junitxml={xml}"]
    cmd += [
        "-p",
        "no:cacheprovider",
        "-p",
        "hf_conformance_markers",
        f"--timeout={timeout}",
        "-q",
        "-o",
        "log_cli=false",
    ]
    env = {**env, "HF_CONFORMANCE_MARKERS": str(runs / f"{module}.markers.json")}
    with (runs / f"{module}.log").open("w") as log:
        subprocess.run(cmd, cwd=tests.parent, env=env, stdout=log, stderr=subprocess.STDOUT)
    return xml


def read_cases(module: str, xml: Path) -> list[Case]:
    """The outcomes of one JUnit XML file (a missing file counts as one error), with markers."""
    if not xml.exists():
        return [Case(module, "<pytest run>", "error", "pytest wrote no results")]
    marks = xml.with_name(f"{module}.markers.json")
    markers = json.loads(marks.read_text()) if marks.exists() else {}
    cases = []
    for tc in ET.parse(xml).iter("testcase"):
        name = f"{tc.get('classname', '').rsplit('.', 1)[-1]}::{tc.get('name')}"
        outcome, text = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = tc.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                text = f"{node.get('message', '')}\n{node.text or ''}"
                break
        cases.append(Case(module, name, outcome, text, markers=markers.get(name, [])))
    return cases


def test_env(url: str, plugins: Path, no_xet: bool) -> dict:
    """The environment of the pytest runs: the server as HF_ENDPOINT, no ambient token."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=url, HF_TOKEN="", PYTHONPATH=str(plugins), OMP_NUM_THREADS="1")
    env["DISABLE_SYMLINKS_IN_WINDOWS_TESTS"] = "1"
    if no_xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    return env


def one_line(text: str) -> str:
    """The last raised error of a failure in one line, for the table (request ids dropped)."""
    groups: list[list[str]] = [[]]
    for line in text.splitlines()[1:]:
        if line.startswith("E "):
            groups[-1].append(line[1:])
        elif groups[-1]:
            groups.append([])
    raised = [g for g in groups if g][-1:] or [text.splitlines()[:1]]
    lines = [re.sub(r"\(Request ID: [^)]*\)", "", line).strip() for line in raised[0]]
    lines = [line for line in lines if line] or [""]
    line = " ".join(lines[:3]) if lines[0].endswith(":") else lines[0]
    return line.replace("|", "\\|")[:200]


def summary_rows(cases: list[Case], modules: list[str]) -> list[str]:
    """Per module: passed / failed / errors / skipped, and the failures by class."""
    rows = [
        "| module | passed | failed | errors | skipped | zoo gap | out of scope | prod data "
        "| deliberate |"
    ]
    rows.append("|---|---|---|---|---|---|---|---|---|")
    total: Counter = Counter()
    for module in [*modules, "total"]:
        mine = [c for c in cases if c.module == module or module == "total"]
        n = Counter(c.outcome for c in mine)
        k = Counter(c.klass.split(":")[0] for c in mine if c.outcome in ("failed", "error"))
        total.update(n)
        cols = [n["passed"], n["failed"], n["error"], n["skipped"]]
        cols += [k[ZOO_GAP], k["out of scope"], k["reads fixed production data"], k[DELIBERATE]]
        rows.append(f"| {module} | " + " | ".join(str(c) for c in cols) + " |")
    return rows


def report(cases: list[Case], modules: list[str], meta: dict) -> str:
    """The markdown report: the summary table, then every failure with its class and reason."""
    lines = [f"# huggingface_hub {meta['version']} tests against zoo hub serve", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    lines += summary_rows(cases, modules) + [""]
    scope = Counter(c.klass for c in cases if c.klass.startswith("out of scope"))
    lines += ["## Out of scope, by Hub product", ""]
    lines += [f"- {k.split(': ', 1)[1]}: {v}" for k, v in sorted(scope.items())] + [""]
    for klass in (ZOO_GAP, "out of scope", "reads fixed production data", DELIBERATE):
        bad = [c for c in cases if c.klass.startswith(klass)]
        lines += [f"## {klass} ({len(bad)})", "", "| test | outcome | class | reason / error |"]
        lines.append("|---|---|---|---|")
        for c in bad:
            why = c.reason if klass != ZOO_GAP else one_line(c.text)
            lines.append(f"| {c.module}::{c.name} | {c.outcome} | {c.klass} | {why} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every module against a fresh server, write the report."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--no-xet", action="store_true", help="run with HF_HUB_DISABLE_XET=1")
    p.add_argument("--modules", nargs="+", default=MODULES, help="upstream test modules to run")
    p.add_argument("--sdist", type=Path, default=None, help="a local sdist instead of pip download")
    p.add_argument("--timeout", type=int, default=120, help="per-test timeout in seconds")
    p.add_argument("--out", type=Path, default=None, help="report path (default under build/)")
    p.add_argument("--report-only", action="store_true", help="class the last run's results again")
    args = p.parse_args(argv)
    version = importlib.metadata.version("huggingface_hub")
    runs = WORK / ("noxet" if args.no_xet else "xet")
    if args.report_only:
        cases = [c for m in args.modules for c in read_cases(m, runs / f"{m}.xml")]
        return _write_report(cases, args, argv, version, runs)
    shutil.rmtree(runs, ignore_errors=True)
    tests = fetch_sdist(version, args.sdist, runs)
    plugins = install_plugins()
    values = make_users(runs / "hub")
    proc, url = start_server(runs / "hub", runs / "server.log")
    try:
        patch_constants(tests, {**values, "ENDPOINT_STAGING": url})
        cases = _run_all(tests, args, test_env(url, plugins, args.no_xet), runs)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return _write_report(cases, args, argv, version, runs)


def _write_report(cases: list[Case], args, argv, version: str, runs: Path) -> int:
    """Class the failures, write the markdown report, print the summary table."""
    for c in cases:
        if c.outcome in ("failed", "error"):
            c.klass, c.reason = classify(c.name, c.text, c.markers)
    xet = "disabled (HF_HUB_DISABLE_XET=1)" if args.no_xet else _xet_state()
    meta = {
        "version": version,
        "xet": xet,
        "command": " ".join(["scripts/hf_conformance.py", *(argv or sys.argv[1:])]),
    }
    meta["rules"] = f"{len(RULES)} (scripts/hf_conformance_rules.py); unmatched = {ZOO_GAP}"
    out = args.out or runs / "report.md"
    out.write_text(report(cases, args.modules, meta))
    print("\n".join(summary_rows(cases, args.modules)))
    print(f"report: {out}")
    return 0


def _run_all(tests: Path, args: argparse.Namespace, env: dict, runs: Path) -> list[Case]:
    cases: list[Case] = []
    for module in args.modules:
        cases += read_cases(module, run_module(tests, module, env, args.timeout, runs))
        n = Counter(c.outcome for c in cases if c.module == module)
        print(f"{module}: {dict(n)}", flush=True)
    return cases


def _xet_state() -> str:
    try:
        return f"enabled (hf-xet {importlib.metadata.version('hf_xet')})"
    except importlib.metadata.PackageNotFoundError:
        return "hf-xet not installed: uploads use LFS"


if __name__ == "__main__":
    sys.exit(main())
