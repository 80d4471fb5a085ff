"""A fine-tune saved by sentence-transformers 6 merges with a base saved in the old Pooling form."""

import json

from zoo.merge.planning import module_config

LEGACY = {
    "word_embedding_dimension": 384,
    "pooling_mode_cls_token": False,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}
MODERN = {"embedding_dimension": 384, "pooling_mode": "mean", "include_prompt": True}


def test_legacy_and_modern_pooling_configs_agree(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(LEGACY))
    (tmp_path / "b.json").write_text(json.dumps(MODERN))
    assert module_config(tmp_path / "a.json") == module_config(tmp_path / "b.json") == MODERN


def test_different_pooling_still_differs(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps({**LEGACY, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True})
    )
    (tmp_path / "b.json").write_text(json.dumps(MODERN))
    assert module_config(tmp_path / "a.json") != module_config(tmp_path / "b.json")
