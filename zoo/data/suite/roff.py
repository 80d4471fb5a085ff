"""A small roff/man/mdoc reader: the text of a manual page's sections, without markup.

Good enough for embedding data, not a typesetter: macros are dropped and their arguments kept,
font and character escapes are removed or replaced, tables and conditionals are not interpreted.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

# fmt: off
_CHARS = {
    "em": "—", "en": "-", "hy": "-", "aq": "'", "dq": '"', "lq": '"', "rq": '"', "oq": "'",
    "cq": "'", "bu": "•", "co": "©", "rg": "®", "tm": "™", "mu": "x", "<=": "<=", ">=": ">=",
    "->": "->", "<-": "<-", "ti": "~", "ha": "^", "rs": "\\", "dg": "†", "de": "°", "pl": "+",
    "mi": "-", "eq": "=", "ga": "`", "aa": "'", "sl": "/", "ba": "|", "at": "@", "sh": "#",
}
# fmt: on
_ESCAPES = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?(\d|\[[^\]]*\]|\(\d\d)"), ""),  # size changes
    (re.compile(r"\\\*(\[[^\]]*\]|\(..|.)"), ""),  # strings
    (re.compile(r"\\[nwhvlLDXZkoCb]'[^']*'"), ""),  # quoted-argument escapes
    (re.compile(r"\\n(\[[^\]]*\]|\(..|.)"), ""),  # number registers
    (re.compile(r"\\\((..)"), lambda m: _CHARS.get(m.group(1), "")),
    (re.compile(r"\\\[([^\]]*)\]"), lambda m: _CHARS.get(m.group(1), "")),
    (re.compile(r"\\[-\u2013]"), "-"),  # \- and an escaped en dash
    (re.compile(r"\\e"), "\\\\"),
    (re.compile(r"\\[ ~0]"), " "),
    (re.compile(r"\\[&|^,/c%:)!]"), ""),
    (re.compile(r"\\(.)"), r"\1"),
]
# fmt: off
_ALTERNATING = {"BR", "BI", "IB", "IR", "RB", "RI"}
_MDOC_INLINE = {
    "Ns", "Ar", "Cm", "Pa", "Op", "Oc", "Oo", "Ql", "Dq", "Sq", "Pq", "Ic", "Em", "Sy", "Li", "Va",
    "Ev", "Xo", "Xc", "Ec", "Eo", "No", "Qo", "Qc", "Fa", "Fn", "Dv", "Er", "Ad", "Aq", "Bq", "Brq",
    "Ux", "At", "Bx", "St", "Lk", "Mt", "Fl",
}
_BREAKS = {
    "PP", "LP", "P", "TP", "IP", "HP", "Pp", "Lp", "sp", "br", "TQ", "Bl", "El", "It", "Dl", "Bd",
    "Ed",
}
_SKIP = {
    "TH", "Dd", "Dt", "Os", "so", "nh", "hy", "ad", "na", "ne", "ft", "ps", "vs", "ll", "in", "ti",
    "ta", "de", "ds", "nr", "rm", "ie", "el", "if", "tr", "cs", "ig", "PD", "UC", "RS", "RE", "nf",
    "fi", "EX", "EE", "UE", "ME", "YS", "SY", "TS", "TE", "T{", "T}", "Ns", "Ek", "Bk",
}
# fmt: on


def clean_inline(text: str) -> str:
    """Remove roff escapes from one line of text."""
    if "\\" not in text:
        return text
    for pattern, repl in _ESCAPES:
        text = pattern.sub(repl, text)
    return text


def _macro_args(rest: str) -> str:
    """Return a macro line's arguments as text (quotes and inline mdoc macro names removed)."""
    args = re.findall(r'"[^"]*"|\S+', rest)
    return " ".join(a.strip('"') for a in args if a not in _MDOC_INLINE)


def _macro_text(macro: str, rest: str) -> str:
    """Return the text a macro line contributes (its arguments, a few macros special-cased)."""
    if macro in ("IP", "HP"):  # the tag only; the indent number is layout
        args = re.findall(r'"[^"]*"|\S+', rest)
        return args[0].strip('"') if args and args[0].strip('"') not in ("\\(bu", "-", "*") else ""
    if macro in _ALTERNATING:  # alternate fonts: arguments are written without spaces
        return "".join(a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest))
    text = _macro_args(rest)
    if macro == "Nd":
        return "- " + text
    if macro == "Fl":
        return "-" + text
    if macro == "Xr":
        parts = text.split()
        return f"{parts[0]}({parts[1]}) " + " ".join(parts[2:]) if len(parts) >= 2 else text
    return text


def read_sections(path: Path, wanted: frozenset[str] | None = None) -> dict[str, str] | None:
    """Return {SECTION NAME: plain text} of a man page, or None for an alias (`.so`) page.

    With `wanted`, only those sections are collected (the others are skipped, which is faster).
    """
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(('.\\"', "'\\\"", '.\\"', '\\"')) or line.strip() in (".", "'"):
            continue
        if line.startswith((".", "'")):
            macro, _, rest = line[1:].strip().partition(" ")
            if macro == "so":
                return None
            if macro in ("SH", "Sh"):
                name = _macro_args(rest).upper()
                current = (
                    sections.setdefault(name, []) if wanted is None or name in wanted else None
                )
                continue
            if current is None or macro in _SKIP:
                continue
            if macro in _BREAKS:
                current.append("\n")
            text = _macro_text(macro, rest)
            if text:
                current.append(clean_inline(text))
            continue
        if current is not None:
            current.append(clean_inline(line))
    return {name: _join(parts) for name, parts in sections.items()}


def _join(parts: list[str]) -> str:
    """Join collected pieces into paragraphs separated by blank lines, whitespace normalised."""
    text = " ".join(parts)
    paragraphs = [" ".join(p.split()) for p in text.split("\n")]
    return "\n".join(p for p in paragraphs if p)
