"""Fixtures for end-to-end pipeline tests: the tiny BERT published on the embedded Hub.

The tiny suite and the tiny BERT themselves are tests/conftest.py's (`tiny_suite`, `tiny_bert`).
"""

import pytest

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from zoo.hub.session import open_hub
from zoo.pipelines import push


@pytest.fixture(scope="session")
def tiny_base(hub, tiny_bert):  # noqa: F811
    """The tiny BERT sentence-transformers model published as zoo/tiny-bert (kind=base)."""
    with open_hub(hub.url, hub.admin_token) as h:
        sha, _ = push(h, tiny_bert, "zoo/tiny-bert", kind="base")
    return {"path": tiny_bert, "ref": f"zoo/tiny-bert@{sha}"}
