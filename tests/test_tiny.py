"""The tiny models' tokenizers are the same in every process (so are the models built on them)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PRINT = "from tests.tiny import _tokenizer_json as t; print(t({kind!r}, 400, 'docstrings'))"


def _built_in_a_fresh_process(kind: str) -> str:
    code = _PRINT.format(kind=kind)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_wordpiece_and_bpe_vocabularies_do_not_depend_on_the_process():
    for kind in ("wordpiece", "bpe"):
        assert _built_in_a_fresh_process(kind) == _built_in_a_fresh_process(kind), kind
