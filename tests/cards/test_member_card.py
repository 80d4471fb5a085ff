"""The member card: front matter parsed back equals the expected dict; rendering is pure."""

import yaml
from huggingface_hub import ModelCard

from tests.test_metadata import SHA, bag
from zoo.cards.member import member_card
from zoo.hub.metadata import parse_metadata


def front(text):
    return yaml.safe_load(text.split("---", 2)[1])


def test_bag_card_front_matter_and_body():
    meta = parse_metadata(bag()).model_dump(mode="json")
    text = member_card("demo/bag-0.4", meta, {"license": "apache-2.0"})
    data = front(text)
    assert data == {
        "license": "apache-2.0",
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": [
            "zoo",
            "zoo-bag",
            "sentence-transformers",
            "feature-extraction",
            "zoo-experiment-demo",
        ],
        "base_model_relation": "finetune",
        "base_model": ["zoo/all-MiniLM-L6-v2"],
        "zoo": meta,
    }
    assert "| debpkg | suite/debpkg | r1 | 40 |" in text
    assert f"zoo/all-MiniLM-L6-v2@{SHA}" in text
    assert 'SentenceTransformer("demo/bag-0.4")' in text
    # huggingface_hub's own parser reads it
    card = ModelCard(text)
    assert card.data.base_model == ["zoo/all-MiniLM-L6-v2"]
    assert card.data.to_dict()["zoo"]["training"]["ratio"] == 0.4


def test_rendering_is_deterministic():
    meta = parse_metadata(bag()).model_dump(mode="json")
    assert member_card("a/b", meta) == member_card("a/b", meta)


def test_merged_and_lora_relations():
    merged = parse_metadata(
        {
            "kind": "merged",
            "base_model": f"zoo/base@{SHA}",
            "parents": [f"demo/bag-b@{SHA}", f"demo/bag-a@{SHA}"],
        }
    )
    data = front(member_card("demo/m", merged.model_dump(mode="json")))
    assert data["base_model"] == ["demo/bag-a", "demo/bag-b"]
    assert data["base_model_relation"] == "merge"
    lora = parse_metadata(bag(adapter={"type": "lora", "peft_config": {"r": 8}}))
    text = member_card("demo/l", lora.model_dump(mode="json"))
    assert front(text)["base_model_relation"] == "adapter"
    assert "LoRA adapter" in text
