"""Fixtures for end-to-end pipeline tests: the tiny suite, a tiny base on the embedded Hub."""

import pytest

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from tests.merge.tiny_models import build_st
from zoo.data.suite import build_suite
from zoo.hub.session import open_hub
from zoo.pipelines import push


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    return build_suite("tiny", tmp_path_factory.mktemp("suite") / "tiny")


@pytest.fixture(scope="session")
def tiny_base(hub, tmp_path_factory):  # noqa: F811
    """A tiny BERT sentence-transformers model published as zoo/tiny-bert (kind=base)."""
    folder = build_st(tmp_path_factory.mktemp("base") / "tiny-bert", "bert")
    with open_hub(hub.url, hub.admin_token) as h:
        sha, _ = push(h, folder, "zoo/tiny-bert", kind="base")
    return {"path": folder, "ref": f"zoo/tiny-bert@{sha}"}
