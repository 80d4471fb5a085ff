"""Print every installed distribution whose version differs from the lock (`make test-latest`).

Usage: python scripts/lock_drift.py requirements/lock.txt   (run with the environment's python)
Reads the lock's `name==version` pins and this interpreter's installed distributions; changes
nothing.
"""

import re
import sys
from importlib.metadata import distributions

from packaging.utils import canonicalize_name

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)


def main(lock_path: str) -> None:
    with open(lock_path, encoding="utf-8") as f:
        locked = {canonicalize_name(n): v for n, v in _PIN.findall(f.read())}
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    rows = [
        (n, locked.get(n, "-"), installed.get(n, "-"))
        for n in sorted((locked.keys() | installed.keys()) - {"boom-zoo", "pip"})
        if locked.get(n) != installed.get(n)
    ]
    print(f"{len(rows)} distributions differ from {lock_path} (name: locked -> fresh)")
    for name, old, new in rows:
        print(f"  {name}: {old} -> {new}")


if __name__ == "__main__":
    main(sys.argv[1])
