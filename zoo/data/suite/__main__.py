"""`python -m zoo.data.suite --debs` prints the Debian packages of every suite source (one line,
for `apt-get install`); `--apt-lists` prints the private APT lists folder the Debian
package-description source reads. scripts/suite-deps.sh uses both.
"""

from __future__ import annotations

import sys

from zoo.data.suite.builder import SOURCES
from zoo.data.suite.requirements import apt_lists_dir


def main(argv: list[str]) -> int:
    """Print what argv asks for; return the exit status (2: usage)."""
    if argv == ["--debs"]:
        print(" ".join(sorted({d for s in SOURCES for d in s.debs})))
        return 0
    if argv == ["--apt-lists"]:
        print(apt_lists_dir())
        return 0
    print("usage: python -m zoo.data.suite --debs | --apt-lists", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
