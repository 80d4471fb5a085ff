"""Did-you-mean: the closest known name to a misspelt one, for every "unknown name" message.

Pure, deterministic (difflib), no zoo imports: every layer may import this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

_CUTOFF = 0.6  # difflib's default: close enough that the suggestion is usually the intent


def closest(name: object, known: Iterable[str], *, fold_case: bool = False) -> str | None:
    """Return the known name closest to `name`, or None when none is close.

    With fold_case the comparison ignores case (for long catalogues of CamelCase names) and the
    known name is returned as spelled.
    """
    known = list(known)
    fold = str.lower if fold_case else str
    folded = {fold(k): k for k in known}
    hits = difflib.get_close_matches(fold(str(name)), list(folded), n=1, cutoff=_CUTOFF)
    return folded[hits[0]] if hits else None


def unknown_name(kind: str, name: object, known: Iterable[str]) -> str:
    """Return "unknown <kind> 'x' (did you mean 'y'?)", or list the known names if none is close."""
    known = list(known)
    close = closest(name, known)
    hint = f" (did you mean {close!r}?)" if close else f"; known: {', '.join(sorted(known))}"
    return f"unknown {kind} {name!r}{hint}"
