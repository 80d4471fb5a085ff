"""Translated user-interface messages (.mo catalogues on the image): English-German bitext mining.

Reads the compiled gettext catalogues of a fixed list of Debian packages' domains under
/usr/share/locale/de/LC_MESSAGES with the stdlib `gettext` parser. Out-of-domain test only.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from zoo.data.suite.common import Caps, Task, cap, hash_order, norm
from zoo.data.suite.requirements import SourceInfo

DOMAINS = (
    "coreutils",
    "libc",
    "glib20",
    "gtk20",
    "apt",
    "dpkg",
    "bash",
    "findutils",
    "grep",
    "sed",
    "diffutils",
    "shadow",
    "procps-ng",
    "systemd",
    "Linux-PAM",
    "man-db",
    "tar",
)
LOCALE_DIR = Path("/usr/share/locale/de/LC_MESSAGES")
SOURCE = SourceInfo(
    name="locale_mo",
    title="German translations of program messages (gettext .mo files of the image's packages)",
    licence="the licence of each package (GPL-2.0+/GPL-3.0+/LGPL-2.1+ for these GNU/freedesktop "
    "domains); human volunteer translations",
    paths=(str(LOCALE_DIR / "coreutils.mo"),),
    base=True,
)
_FORMAT = re.compile(r"%[-+ #0-9.*lhzjt]*[a-zA-Z%]|\{[^}]*\}|\\[nt]")


def pairs() -> list[tuple[str, str]]:
    """Return unique (English, German) message pairs of 4-30 words, sorted by English text."""
    out: dict[str, str] = {}
    for domain in DOMAINS:
        path = LOCALE_DIR / f"{domain}.mo"
        if not path.exists():
            continue
        with path.open("rb") as handle:
            catalog = gettext.GNUTranslations(handle)._catalog
        for key, de in catalog.items():
            if not isinstance(key, str) or not key or not isinstance(de, str):
                continue
            en = key.split("\x04")[-1]  # drop a message context
            en, de = (" ".join(_FORMAT.sub(" ", t).split()) for t in (en, de))
            if 4 <= len(en.split()) <= 30 and de and norm(en) != norm(de) and norm(en) not in out:
                out[norm(en)] = (en, de)
    return [out[k] for k in sorted(out)]


def build(caps: Caps) -> list[Task]:
    """Build LocaleBitextMining (test only)."""
    rows = hash_order(pairs(), "locale_mo", lambda p: p[0])
    return [
        Task(
            name="LocaleBitextMining",
            type="bitext_mining",
            group="ood",
            source="locale_mo",
            description="Match English program messages with their German translations.",
            main_score="f1",
            files={"test.jsonl": [{"s1": en, "s2": de} for en, de in cap(rows, caps.test)]},
        )
    ]
