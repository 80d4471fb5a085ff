"""Test-wide settings: no network, a private HF cache, one torch thread.

Environment variables are set at import time, before any test module imports huggingface_hub,
because the client freezes HF_ENDPOINT and HF_HOME when it is imported.
"""

import os
import tempfile

import pytest

_HOME = tempfile.mkdtemp(prefix="zoo-test-hf-")
os.environ["HF_HOME"] = _HOME
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
