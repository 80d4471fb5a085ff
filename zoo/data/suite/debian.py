"""Debian package descriptions: short -> long description retrieval, section classification.

Reads the release's main `Packages` and `Translation-en` files from a private APT lists folder
(requirements.apt_lists_dir(), filled by scripts/suite-deps.sh with a private APT_CONFIG, because
the image's apt configuration drops the long descriptions). Long descriptions are joined to
packages on Description-md5. One row per *source* package (its first binary package by name);
the source package is the split unit.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo.data.suite.common import Caps, Task, balanced, hash_order, is_test, retrieval_files, words
from zoo.data.suite.requirements import SourceInfo, apt_lists_dir

SOURCE = SourceInfo(
    name="debian",
    title="Debian 12 package descriptions (main: Packages + Translation-en)",
    licence="Debian archive metadata: control data of DFSG-free packages (no single licence; "
    "each description belongs to its package)",
    paths=("{apt_lists}/*_main_binary-*_Packages", "{apt_lists}/*_main_i18n_Translation-en"),
)
TOP_SECTIONS = 20
_FIELD = re.compile(
    r"^(Package|Source|Section|Description-md5|Description|Description-en): ?(.*)$", re.MULTILINE
)


def _release_file(pattern: str) -> Path:
    """Return the release's (not -updates/-security) list file matching `pattern`."""
    files = sorted(
        p
        for p in apt_lists_dir().glob(pattern)
        if "-updates" not in p.name and "-security" not in p.name
    )
    return files[0]


def provenance() -> dict[str, str]:
    """Return {list file name: sha256} of the two files read (they change with point releases)."""
    from zoo.hashing import sha256_file

    files = [_release_file("*_main_binary-*_Packages"), _release_file("*_main_i18n_Translation-en")]
    return {p.name: sha256_file(p) for p in files}


def _stanzas(path: Path):
    """Yield each stanza of a deb822 file as {field: value} (continuation lines kept)."""
    for block in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = {}
        for m in _FIELD.finditer(block):
            fields.setdefault(m.group(1), m.group(2))
        if m_en := re.search(r"^Description-en: .*\n((?: .*\n?)*)", block, re.MULTILINE):
            fields["long"] = m_en.group(1)
        yield fields


def _long_text(raw: str) -> str:
    """Turn a deb822 long description (' .' paragraph marks) into plain text."""
    lines = [line[1:] for line in raw.splitlines()]
    return " ".join(" ".join("\n" if line.strip() == "." else line for line in lines).split())


def packages() -> list[tuple[str, str, str, str]]:
    """Return (source package, section, short, long description), one per source, sorted."""
    longs = {
        f["Description-md5"]: _long_text(f.get("long", ""))
        for f in _stanzas(_release_file("*_main_i18n_Translation-en"))
        if "Description-md5" in f
    }
    out: dict[str, tuple[str, str, str, str]] = {}
    for f in sorted(
        _stanzas(_release_file("*_main_binary-*_Packages")), key=lambda f: f.get("Package", "")
    ):
        long = longs.get(f.get("Description-md5", ""), "")
        source = f.get("Source", f.get("Package", "")).split()[0] if f.get("Package") else ""
        if source and len(long.split()) >= 15 and len(f.get("Description", "").split()) >= 3:
            section = f.get("Section", "").split("/")[-1]
            out.setdefault(source, (source, section, f["Description"].strip(), words(long, 120)))
    return [out[k] for k in sorted(out)]


def build(caps: Caps) -> list[Task]:
    """Build DebPkgRetrieval and DebSectionClassification."""
    rows = hash_order(packages(), "debian", lambda r: r[0])
    train = [r for r in rows if not is_test("debian", r[0])]
    test = [r for r in rows if is_test("debian", r[0])]

    def unit(r):
        return r[2], [r[3]]

    retrieval = Task(
        name="DebPkgRetrieval",
        type="retrieval",
        group="in-domain",
        source="debian",
        description="Given a Debian package's short description, find its long description.",
        main_score="ndcg_at_10",
        train_type="retrieval",
        files=retrieval_files([unit(r) for r in train], [unit(r) for r in test], [], caps, "deb"),
        instruction="Given a one-line software package summary, retrieve its full description",
    )
    return [retrieval, _sections(rows, train, test, caps)]


def _sections(rows, train, test, caps: Caps) -> Task:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[1]] = counts.get(r[1], 0) + 1
    top = set(sorted(counts, key=lambda s: (-counts[s], s))[:TOP_SECTIONS])

    def pick(side, limit):
        return balanced([r for r in side if r[1] in top], lambda r: r[1], limit)

    def row(r):
        return {"text": r[3], "label": r[1]}

    return Task(
        name="DebSectionClassification",
        type="classification",
        group="in-domain",
        source="debian",
        description=f"Classify a Debian package's long description into its archive section "
        f"(the {TOP_SECTIONS} largest sections).",
        main_score="accuracy",
        train_type="classification",
        instruction="Classify the software package description into its Debian archive section",
        files={
            "train.jsonl": [row(r) for r in pick(train, caps.train)],
            "test.jsonl": [row(r) for r in pick(test, caps.test)],
        },
    )
