"""Linux manual pages already on the image: retrieval, section classification, SEE ALSO pairs.

Reads the gzipped roff pages installed by a fixed list of Debian packages (from their dpkg file
lists, so pages that other packages add later do not change the suite). Alias pages (`.so`) and
symlinks are skipped; gcloud's 16k templated pages are not in the list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from zoo.data.suite.common import (
    Caps,
    Task,
    balanced,
    cap,
    hash_order,
    is_test,
    retrieval_files,
    words,
)
from zoo.data.suite.requirements import SourceInfo, installed_debs
from zoo.data.suite.roff import read_sections

PACKAGES = (
    "manpages",
    "manpages-dev",
    "coreutils",
    "util-linux",
    "procps",
    "iproute2",
    "systemd",
    "openssh-client",
    "dpkg",
    "apt",
    "man-db",
    "gzip",
    "findutils",
    "grep",
    "sed",
    "tar",
    "bash",
    "diffutils",
    "login",
    "passwd",
    "mount",
    "e2fsprogs",
)
SOURCE = SourceInfo(
    name="manpages",
    title="Linux manual pages (Debian packages: " + ", ".join(PACKAGES) + ")",
    licence="free licences per page: Linux man-pages project (mostly 'Verbatim'/GPL-2.0+/BSD/MIT), "
    "GNU coreutils GPL-3.0+, systemd LGPL-2.1+, util-linux GPL-2.0+, others as in "
    "/usr/share/doc/PACKAGE/copyright",
    debs=("manpages", "manpages-dev"),
    base=True,
)
SECTIONS = {
    "1": "user commands",
    "2": "system calls",
    "3": "library functions",
    "4": "special files",
    "5": "file formats",
    "7": "overviews and conventions",
    "8": "administration commands",
}
_WANTED = frozenset({"NAME", "DESCRIPTION", "SEE ALSO"})
_REF = re.compile(r"([A-Za-z0-9_.:+-]+)\s*\((\d)\w*\)")


@dataclass(frozen=True)
class Page:
    key: str  # file name without section suffix: the split unit
    section: str
    name: str
    summary: str
    description: str
    see_also: tuple[tuple[str, str], ...]


def page_files() -> list[tuple[str, str, Path]]:
    """Return (key, section, path) of every regular page file of PACKAGES, sorted by path."""
    files = set()
    for pkg in installed_debs(PACKAGES):
        for listing in (
            Path(f"/var/lib/dpkg/info/{pkg}.list"),
            Path(f"/var/lib/dpkg/info/{pkg}:amd64.list"),
        ):
            if listing.exists():
                files.update(line.strip() for line in listing.read_text().splitlines())
    out = []
    for f in sorted(files):
        m = re.match(r"^/usr/share/man/man([1-8])/(.+?)\.\d\w*\.gz$", f)
        path = Path(f)
        if m and m.group(1) in SECTIONS and path.is_file() and not path.is_symlink():
            out.append((m.group(2), m.group(1), path))
    return out


def _parse(key: str, section: str, path: Path) -> Page | None:
    """Parse one page; None when it is an alias or lacks a usable NAME or DESCRIPTION."""
    sections = read_sections(path, _WANTED)
    if not sections:
        return None
    names, sep, summary = sections.get("NAME", "").partition(" - ")
    description = sections.get("DESCRIPTION", "")
    if not sep or len(summary.split()) < 3 or len(description.split()) < 20:
        return None
    refs = tuple(dict.fromkeys(_REF.findall(sections.get("SEE ALSO", ""))))
    name = names.split(",")[0].strip()
    return Page(key, section, name, summary.strip(), description, refs)


def _pages(files: list[tuple[str, str, Path]], budget: int | None) -> list[Page]:
    """Parse up to `budget` files (balanced over sections, in hash order) into pages."""
    chosen = balanced(files, lambda f: f[1], budget)
    return [p for f in chosen if (p := _parse(*f))]


def _budget(limit: int | None) -> int | None:
    """Files to parse for `limit` pages (some parse to nothing)."""
    return None if limit is None else 4 * limit


def build(caps: Caps) -> list[Task]:
    """Build ManPageRetrieval, ManSectionClassification and ManSeeAlsoPairs."""
    files = hash_order(page_files(), "manpages", lambda f: f"{f[1]}/{f[0]}")
    train = _pages([f for f in files if not is_test("manpages", f[0])], _budget(caps.train))
    test = _pages([f for f in files if is_test("manpages", f[0])], _budget(caps.test))
    return [
        _retrieval(train, test, caps),
        _classification(train, test, caps),
        _see_also(train, test, caps),
    ]


def _retrieval(train: list[Page], test: list[Page], caps: Caps) -> Task:
    def unit(p: Page):
        return p.summary, [words(p.description, 120)]

    files = retrieval_files([unit(p) for p in train], [unit(p) for p in test], [], caps, "man")
    return Task(
        name="ManPageRetrieval",
        type="retrieval",
        group="in-domain",
        source="manpages",
        description="Given the one-line summary of a manual page, find its DESCRIPTION section.",
        main_score="ndcg_at_10",
        files=files,
        train_type="retrieval",
        instruction="Given a one-line summary of a Unix command or function, "
        "retrieve its manual page",
    )


def _classification(train: list[Page], test: list[Page], caps: Caps) -> Task:
    def row(p: Page) -> dict:
        return {"text": words(p.description, 80), "label": SECTIONS[p.section]}

    def label(p: Page) -> str:
        return p.section

    return Task(
        name="ManSectionClassification",
        type="classification",
        group="in-domain",
        source="manpages",
        description="Classify a manual page's DESCRIPTION into its manual section.",
        main_score="accuracy",
        train_type="classification",
        files={
            "train.jsonl": [row(p) for p in balanced(train, label, caps.train)],
            "test.jsonl": [row(p) for p in balanced(test, label, caps.test)],
        },
        instruction="Classify the manual page text into its manual section",
    )


def _see_also(train: list[Page], test: list[Page], caps: Caps) -> Task:
    return Task(
        name="ManSeeAlsoPairs",
        type="pair_classification",
        group="in-domain",
        source="manpages",
        description="Decide whether the second manual page is in the first one's SEE ALSO list "
        "(negatives: a page of the same section that is not listed).",
        main_score="max_ap",
        train_type="pair",
        files={
            "train.jsonl": cap(_pairs(train), caps.train),
            "test.jsonl": cap(_pairs(test), caps.test),
        },
        instruction="Retrieve a related manual page",
    )


def _pairs(pages: list[Page]) -> list[dict]:
    """Positive (page, referenced page) pairs and one same-section unreferenced negative each."""
    by_ref = {(p.name, p.section): p for p in pages}
    by_section: dict[str, list[Page]] = {}
    for p in pages:
        by_section.setdefault(p.section, []).append(p)

    def text(p: Page) -> str:
        return f"{p.name} - {p.summary}"

    out = []
    for page in pages:
        for ref in page.see_also:
            other = by_ref.get(ref)
            if other is None or other is page:
                continue
            listed = set(page.see_also)
            pool = [
                q
                for q in by_section[other.section]
                if (q.name, q.section) not in listed and q is not page
            ]
            out.append({"s1": text(page), "s2": text(other), "label": 1})
            if pool:
                neg = pool[(len(out) * 7919) % len(pool)]  # a fixed, spread-out choice
                out.append({"s1": text(page), "s2": text(neg), "label": 0})
    return out
