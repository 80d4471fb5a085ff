"""A private mount namespace for a child process: a test can give it a small real disk (tmpfs)."""

from __future__ import annotations

import functools
import subprocess

_PREFIXES = (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"])
_PROBE = 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"'


@functools.cache
def private_mount() -> tuple[str, ...]:
    """The `unshare` prefix under which a child may mount a tmpfs that only it sees."""
    for prefix in _PREFIXES:
        probe = subprocess.run([*prefix, "sh", "-c", _PROBE], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return tuple(prefix)
    raise AssertionError(
        "cannot mount a private tmpfs: `unshare --mount` needs root, "
        "`unshare --user --mount` needs user namespaces"
    )
