"""Fixtures for recipe tests: the shared tiny BERT family's bags published on the embedded Hub."""

import json

import pytest

from tests.hub.conftest import hub  # noqa: F401  (the session Hub server)
from zoo.hub.session import open_hub
from zoo.pipelines import push


def bag_meta(base_ref: str, experiment: str, ratio: float) -> dict:
    return {
        "kind": "bag",
        "base_model": base_ref,
        "training": {
            "experiment": experiment,
            "corpus_manifest_hash": "0" * 64,
            "ratio": ratio,
            "seed": 0,
            "examples_seen": 10,
            "wall_time_s": 1.0,
            "datasets": [
                {
                    "name": "d",
                    "source": "local",
                    "fingerprint": "f",
                    "count": 10,
                    "indices_sha256": "1" * 64,
                }
            ],
        },
    }


@pytest.fixture(scope="session")
def published(hub, families):  # noqa: F811
    """tiny base as zoo/tiny-base; 3 bags of experiment 'exp-a' and 1 of 'exp-b'."""
    tiny_family = families("bert")
    with open_hub(hub.url, hub.admin_token) as h:
        base_sha, _ = push(h, tiny_family["base"], "zoo/tiny-base", kind="base")
        base_ref = f"zoo/tiny-base@{base_sha}"
        bags = {}
        for i, (variant, exp, ratio) in enumerate(
            zip(
                tiny_family["variants"] + [tiny_family["variants"][0]],
                ["exp-a"] * 3 + ["exp-b"],
                [0.4, 0.6, 0.8, 1.0],
            )
        ):
            (variant / "zoo.json").write_text(json.dumps(bag_meta(base_ref, exp, ratio)))
            sha, _ = push(h, variant, f"zoo/{exp}-bag-{i}")
            (variant / "zoo.json").unlink()
            bags[f"zoo/{exp}-bag-{i}"] = sha
    return {"base": base_ref, "bags": bags}
