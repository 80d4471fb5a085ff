"""scripts/browser-deps.sh: a no-op where the browser is, apt-get where it is not, one line when
it cannot. apt-get, id and sudo are stand-ins on PATH here, recording what they were asked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.web.browser import CHROMIUM, ROOT

SCRIPT = ROOT / "scripts" / "browser-deps.sh"


@pytest.fixture
def machine(tmp_path):
    """A fake machine: run(uid=..., apt=...) runs the script with stand-in commands."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    browser = tmp_path / "usr-bin-chromium"

    def tool(name: str, body: str) -> None:
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> {calls}\n{body}\n')
        path.chmod(0o755)

    def run(uid: int = 0, apt: str = "ok", sudo: bool = False) -> subprocess.CompletedProcess:
        tool("id", f"echo {uid}")
        # `apt-get ... install` makes the browser appear (or not), as Debian's package does.
        installs = {
            "ok": f'printf "#!/bin/sh\\necho Chromium 156\\n" > {browser}; chmod +x {browser}',
            "nothing": "true",
            "fails": 'echo "E: Unable to locate package chromium" >&2; exit 100',
        }[apt]
        tool("apt-get", f'case " $* " in *" install "*) {installs};; esac')
        tool("sudo", 'shift; exec "$@"' if sudo else "exit 1")
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ZOO_CHROMIUM": str(browser)}
        return subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
        )

    run.browser, run.calls = browser, calls
    run.log = lambda: calls.read_text().splitlines() if calls.exists() else []
    return run


def _apt(machine) -> list[str]:
    return [c for c in machine.log() if not c.startswith("id")]


def test_a_no_op_where_the_browser_is(machine):
    machine.browser.write_text("#!/bin/sh\n")
    machine.browser.chmod(0o755)
    result = machine(uid=1000)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert _apt(machine) == []


def test_as_root_it_installs_chromium_and_its_driver(machine):
    result = machine()
    assert result.returncode == 0, result.stderr
    assert _apt(machine) == [
        "apt-get -qq update",
        "apt-get -qq install -y chromium chromium-driver",
    ]
    assert result.stdout.splitlines()[-1] == "browser-deps: Chromium 156"


def test_as_another_user_it_uses_sudo_without_a_password(machine):
    result = machine(uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert _apt(machine)[0] == "sudo -n true"
    assert "apt-get -qq install -y chromium chromium-driver" in _apt(machine)


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"uid": 1000}, "this user is not root (and sudo asks for a password)"),
        ({"apt": "fails"}, "apt-get failed (above)"),
        ({"apt": "nothing"}, "apt-get installed chromium chromium-driver without it"),
    ],
)
def test_when_it_cannot_it_says_why_in_one_line(machine, kwargs, why):
    result = machine(**kwargs)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last == (
        f"browser-deps: {machine.browser} is missing and {why}; install Debian's chromium "
        "chromium-driver as root (apt-get install chromium chromium-driver)"
    )
    if kwargs.get("apt") == "fails":
        assert "E: Unable to locate package chromium" in result.stderr


def test_the_real_browser_is_debians():
    """What make test leaves: /usr/bin/chromium from Debian's package, which Playwright drives."""
    assert CHROMIUM.exists()
    owner = subprocess.run(
        ["dpkg", "-S", os.path.realpath(CHROMIUM)], capture_output=True, text=True, check=True
    )
    assert owner.stdout.split(":")[0] in {"chromium", "chromium-common"}
    assert Path("/usr/bin/chromedriver").exists()
