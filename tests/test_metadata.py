"""The zoo metadata schema: strict, versioned, pinned references, queries."""

import json

import pytest
from pydantic import ValidationError

from zoo.errors import UserError
from zoo.hub.metadata import ZooMetadata, matches, parse_metadata

SHA = "a" * 40


def bag(**over):
    data = {
        "kind": "bag",
        "base_model": f"zoo/all-MiniLM-L6-v2@{SHA}",
        "training": {
            "experiment": "demo",
            "corpus_manifest_hash": "c" * 64,
            "ratio": 0.4,
            "seed": 7,
            "datasets": [
                {
                    "name": "debpkg",
                    "source": "suite/debpkg",
                    "revision": "r1",
                    "fingerprint": "f" * 16,
                    "count": 40,
                    "indices_sha256": "d" * 64,
                }
            ],
            "hyperparameters": {"lr": 2e-5, "batch_size": 32},
            "examples_seen": 640,
            "wall_time_s": 3.5,
        },
    }
    data.update(over)
    return data


def test_round_trip_is_deterministic():
    meta = parse_metadata(bag())
    again = parse_metadata(meta.to_json())
    assert again == meta
    assert again.to_json() == meta.to_json()
    assert json.loads(meta.to_json())["schema_version"] == 1


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"bogus": 1}, "bogus"),
        ({"kind": "bagg"}, "kind"),
        ({"base_model": "zoo/all-MiniLM-L6-v2"}, "base_model"),
        ({"base_model": f"zoo/x@{'A' * 40}"}, "base_model"),
        ({"training": None}, "training"),
        ({"parents": ["zoo/x@main"]}, "parents"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_invalid_metadata_names_the_field(patch, field):
    with pytest.raises(UserError, match=field):
        parse_metadata(bag(**patch))


def test_ratio_out_of_range_is_refused():
    data = bag()
    data["training"]["ratio"] = 1.5
    with pytest.raises(UserError, match=r"training\.ratio"):
        parse_metadata(data)


def test_all_problems_reported_together():
    with pytest.raises(UserError) as err:
        parse_metadata(bag(bogus=1, kind="bagg"))
    assert "bogus" in str(err.value) and "kind" in str(err.value)


def test_kind_rules():
    assert parse_metadata({"kind": "base"}).base_model is None
    with pytest.raises(UserError, match="parents"):
        parse_metadata({"kind": "merged", "base_model": f"zoo/b@{SHA}"})
    with pytest.raises(UserError, match="peft_config"):
        parse_metadata({"kind": "base", "adapter": {"type": "lora"}})


def test_not_json():
    with pytest.raises(UserError, match="not valid JSON"):
        parse_metadata("{nope")


def test_queries_match_dotted_and_short_keys():
    meta = parse_metadata(bag(labels={"team": "search"}))
    assert matches(meta, {"experiment": "demo", "ratio": "0.40", "team": "search"})
    assert matches(meta, {"training.seed": "7", "kind": "bag"})
    assert not matches(meta, {"ratio": "0.6"})
    assert not matches(meta, {"experiment": "other"})
    assert not matches(meta, {"nosuchfield": "x"})


def test_metadata_is_frozen():
    meta = ZooMetadata(kind="base")
    with pytest.raises(ValidationError, match="frozen"):
        meta.kind = "bag"
