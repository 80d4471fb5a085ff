"""TrainConfig validation and the normalisation of the training data (no model needed)."""

import json

import numpy as np
import pytest
from datasets import Dataset
from pydantic import ValidationError

from zoo.errors import UserError
from zoo.train import TrainConfig
from zoo.train import checkpoints as ck
from zoo.train.inputs import prepare, signature, train_sets


def test_config_is_strict_and_frozen():
    with pytest.raises(ValidationError, match="bogus"):
        TrainConfig(base="b", bogus=1)
    with pytest.raises(ValidationError, match="steps or epochs, not both"):
        TrainConfig(base="b", steps=3, epochs=1.0)
    with pytest.raises(ValidationError, match="need lora_r"):
        TrainConfig(base="b", lora_alpha=8)
    with pytest.raises(ValidationError):
        TrainConfig(base="b", loss="triplet")
    cfg = TrainConfig(base="b")
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]


def test_hyperparameters_are_plain_scalars_and_default_to_one_epoch():
    hp = TrainConfig(base="b", lora_r=8, lora_targets=("query", "value")).hyperparameters()
    assert hp["lora_targets"] == "query,value" and hp["epochs"] == 1.0 and hp["scale"] == 50.0
    assert all(isinstance(v, (str, int, float, bool, type(None))) for v in hp.values())
    assert "base" not in hp and "checkpoint_every" not in hp


def test_every_field_has_a_description_for_the_cli_help():
    assert all(f.description for f in TrainConfig.model_fields.values())


def _pairs(n, **extra):
    return Dataset.from_dict(
        {"anchor": [f"a{i}" for i in range(n)], "positive": [f"p{i}" for i in range(n)], **extra}
    )


def test_prepare_sorts_by_name_splits_groups_and_shapes_prompts():
    grouped = _pairs(4, group=["y", "x", "y", "z"], negative=["n"] * 4)
    data = prepare({"zeta": _pairs(3), "alpha": grouped}, {"alpha": "query: "})
    assert list(data.datasets) == ["alpha", "zeta"]
    assert data.datasets["alpha"].column_names == ["anchor", "positive", "negative"]
    assert data.sources[0].groups.tolist() == [1, 0, 1, 2] and data.sources[1].groups is None
    assert data.prompts == {"alpha": {"anchor": "query: "}}
    assert grouped.column_names == ["anchor", "positive", "group", "negative"]  # not mutated


def test_prepare_reports_every_problem_at_once():
    bad = Dataset.from_dict({"anchor": ["a"], "text": ["t"], "group": [None]})
    with pytest.raises(UserError) as err:
        prepare({"bad": bad}, {"ghost": "p"})
    msg = str(err.value)
    assert "lacks column 'positive'" in msg and "unexpected columns ['text']" in msg
    assert "without a 'group'" in msg and "unknown dataset 'ghost'" in msg


def test_prepare_loads_saved_datasets_and_refuses_other_things(tmp_path):
    _pairs(5).save_to_disk(str(tmp_path / "saved"))
    assert prepare({"s": str(tmp_path / "saved")}).rows == {"s": 5}
    with pytest.raises(UserError, match="no saved dataset"):
        prepare({"s": tmp_path / "missing"})
    with pytest.raises(UserError, match="expected a datasets.Dataset"):
        prepare({"s": [1, 2]})
    with pytest.raises(UserError, match="every dataset is empty"):
        prepare({"s": _pairs(0)})


def _rows(n_neg):
    return Dataset.from_dict(
        {
            "query": ["q1", "q2"],
            "pos": [["p1", "p1b"], ["p2"]],
            "neg": [[f"n1-{i}" for i in range(n_neg)], [f"n2-{i}" for i in range(n_neg + 1)]],
        }
    )


def test_train_sets_shape_rows_for_the_trainer():
    class Spec:
        def __init__(self, in_batch, instruction=None):
            self.in_batch_negatives, self.instruction = in_batch, instruction

    rows = {"retr": _rows(1), "clf": _rows(2), "none": _rows(0).select([])}
    specs = {"retr": Spec(True, "find: "), "clf": Spec(False), "none": Spec(True, "x")}
    got = train_sets(rows, specs)
    assert sorted(got.sets) == ["clf", "retr"]  # empty datasets are left out
    assert got.sets["retr"].to_dict() == {
        "anchor": ["q1", "q2"],
        "positive": ["p1", "p2"],
        "negative": ["n1-0", "n2-0"],
    }
    # own candidates: every hard negative, as many as the row with the fewest
    assert got.sets["clf"].column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert got.own_candidates == frozenset({"clf"}) and got.prompts == {"retr": "find: "}
    prepare(got.sets, got.prompts, got.own_candidates)  # what the loop accepts
    with pytest.raises(UserError, match="hard negatives on every row"):
        train_sets({"clf": _rows(0)}, {"clf": Spec(False)})


def test_signature_changes_with_content_not_with_insertion_order():
    a, b = _pairs(10), _pairs(7)
    assert signature(prepare({"a": a, "b": b})) == signature(prepare({"b": b, "a": a}))
    changed = Dataset.from_dict({"anchor": ["x"] * 10, "positive": ["p"] * 10})
    assert signature(prepare({"a": changed, "b": b})) != signature(prepare({"a": a, "b": b}))


def _fake_checkpoint(folder, step, complete=True):
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / ck.STATE_FILE).write_text("{}")
    return path


def test_resume_point_is_the_last_complete_checkpoint_and_cut_off_ones_are_removed(tmp_path):
    sig = ck.run_signature(TrainConfig(base="b"), {"d": 1})
    ck.prepare_folder(tmp_path, sig, resume=True)
    _fake_checkpoint(tmp_path, 5)
    last = _fake_checkpoint(tmp_path, 10)
    cut = _fake_checkpoint(tmp_path, 15, complete=False)
    assert ck.prepare_folder(tmp_path, sig, resume=True) == last
    assert not cut.exists() and (tmp_path / "checkpoint-5").exists()
    assert ck.prepare_folder(tmp_path, sig, resume=False) is None
    assert not last.exists() and json.loads((tmp_path / ck.RUN_FILE).read_text()) == sig


def test_resuming_another_runs_checkpoints_is_refused(tmp_path):
    sig = ck.run_signature(TrainConfig(base="b", learning_rate=1e-4), {"d": 1})
    ck.prepare_folder(tmp_path, sig, resume=True)
    _fake_checkpoint(tmp_path, 5)
    other = ck.run_signature(TrainConfig(base="b", learning_rate=2e-4), {"d": 1})
    with pytest.raises(UserError, match=r"different settings \['learning_rate'\]"):
        ck.prepare_folder(tmp_path, other, resume=True)
    same_math = TrainConfig(base="b", learning_rate=1e-4, checkpoint_every=7)
    bookkeeping = ck.run_signature(same_math, {"d": 1})
    assert ck.prepare_folder(tmp_path, bookkeeping, resume=True).name == "checkpoint-5"
    assert ck.run_id(sig) == ck.run_id(json.loads(json.dumps(sig))) != ck.run_id(other)
    assert np.all([(tmp_path / ck.RUN_FILE).is_file()])


def test_bf16_auto_follows_the_hardware(monkeypatch):
    import torch

    from zoo.train.model import resolve_bf16

    assert resolve_bf16(True) is True and resolve_bf16(False) is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    assert resolve_bf16("auto") is True
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert resolve_bf16("auto") is False
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_bf16("auto") is True
