"""Test-wide settings: no network, a private HF cache, one torch thread.

Environment variables are set at import time, before any test module imports huggingface_hub,
because the client freezes HF_ENDPOINT and HF_HOME when it is imported.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_HOME = tempfile.mkdtemp(prefix="zoo-test-hf-")
os.environ["HF_HOME"] = _HOME
# Most tests upload over git-lfs (the fault proxies and load drivers speak it); the Xet path is
# tested through the official client in tests/hub/test_xet.py (the runtime constant turned off,
# or subprocesses with no such variable), and by make demo, which runs with the user's defaults.
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
# Any call that forgets its endpoint goes to a closed port instead of huggingface.co.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("ZOO_HUB", None)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


@pytest.fixture(scope="session", autouse=True)
def _quiet_transformers():
    """No transformers progress bars or warnings in test output."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


# The tiny suite and the tiny models every test package shares: each built once per session, on
# first use, from the builders in tests/tiny.py. Tests treat them as read-only (copy to change).


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    """The tiny offline suite: 9 task folders in in-domain/, ood/, new-domain/ (no download).

    Built in a fresh interpreter, as `zoo data build` would: the suite reads the distributions
    the running interpreter sees, and what earlier tests imported must not change it (importing
    ray puts ray/thirdparty_files, with colorama's metadata, on sys.path).
    """
    out = tmp_path_factory.mktemp("suite") / "tiny"
    code = "import sys; from pathlib import Path; from zoo.data.suite import build_suite; "
    code += "build_suite('tiny', Path(sys.argv[1]))"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env)
    return out


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """The folder the session's tiny models are built in."""
    return tmp_path_factory.mktemp("tiny-models")


@pytest.fixture(scope="session")
def tiny_bert(tiny_root):
    """A random 2-layer, 32-wide BERT sentence-transformers folder (CLS pooling, normalised)."""
    from tests import tiny

    return tiny.build_st(tiny_root / "tiny-bert", "bert")


@pytest.fixture(scope="session")
def families(tiny_root):
    """families(arch) -> {"base", "variants"}: a base and 3 perturbed variants (on first use)."""
    from tests import tiny

    cache: dict[str, dict] = {}

    def get(arch: str) -> dict:
        if arch not in cache:
            cache[arch] = tiny.family(tiny_root / "families", arch, n=3)
        return cache[arch]

    return get
