"""Bad inputs: each is a one-line UserError and leaves nothing at `out` (not even a temp folder)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from safetensors.torch import load_file, save_file

from tests import tiny as tm
from zoo.errors import UserError
from zoo.merge.engine import MergeInput, merge_folders, plan

W = [0.5, 0.3, 0.2]
CASES: dict = {}


def case(name: str, match: str):
    """Register a bad-input case: fn(family, tmp, out) must raise a UserError matching `match`."""

    def register(fn):
        CASES[name] = (fn, match)
        return fn

    return register


def _inputs(family, n=3):
    return [MergeInput(p, {"weight": w}) for p, w in zip(family["variants"][:n], W)]


def _pair(first, second, out, method="linear", **kw):
    return merge_folders([first, second], None, method, {"weight": 1.0}, out, progress=False, **kw)


def _edit_root(src, dst, edit):
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return dst


@case("unknown method", "did you mean 'multislerp'")
def _(f, tmp, out):
    merge_folders(_inputs(f), None, "multislerpp", {}, out, progress=False)


@case("misspelt parameter", "did you mean 'normalize'")
def _(f, tmp, out):
    merge_folders(_inputs(f), None, "linear", {"normalise": False}, out, progress=False)


@case("missing required parameter", "missing required parameter 'weight'")
def _(f, tmp, out):
    merge_folders(list(f["variants"]), None, "linear", {}, out, progress=False)


@case("wrong parameter type", "not a valid")
def _(f, tmp, out):
    merge_folders(
        [MergeInput(f["variants"][0], {"weight": "heavy"})], None, "linear", {}, out, progress=False
    )


@case("method needs a base", "needs a base model")
def _(f, tmp, out):
    merge_folders(_inputs(f), None, "ties", {}, out, progress=False)


@case("wrong number of models", "exactly 2 models")
def _(f, tmp, out):
    merge_folders(list(f["variants"][:2]), f["base"], "slerp", {"t": 0.5}, out, progress=False)


@case("shape mismatch", "shape mismatch for 'pooler.dense.bias'")
def _(f, tmp, out):
    bad = _edit_root(
        f["variants"][0],
        tmp / "shape",
        lambda t: t.__setitem__("pooler.dense.bias", t["pooler.dense.bias"][:16].clone()),
    )
    _pair(bad, f["variants"][1], out)


@case("architecture mismatch", "architecture mismatch: .* 'roberta'")
def _(f, tmp, out):
    roberta = tm.build_st(tmp / "roberta", "roberta", dense=True)
    _pair(f["variants"][0], roberta, out)


@case("config mismatch", "config 'hidden_act'")
def _(f, tmp, out):
    _pair(f["variants"][0], tm.build_st(tmp / "relu", "bert", dense=True, hidden_act="relu"), out)


@case("module structure differs", "has modules")
def _(f, tmp, out):
    _pair(f["variants"][0], tm.build_st(tmp / "no-dense", "bert"), out)


@case("missing tensor", "missing tensor: .* 'pooler.dense.weight'")
def _(f, tmp, out):
    bad = _edit_root(f["variants"][0], tmp / "missing", lambda t: t.pop("pooler.dense.weight"))
    _pair(f["variants"][1], bad, out)


@case("pickle-only checkpoint", "allow_pickle")
def _(f, tmp, out):
    _pair(tm.rewrite_root(f["variants"][0], tmp / "pickled", pickle=True), f["variants"][1], out)


@case("corrupt safetensors header", "corrupt safetensors file")
def _(f, tmp, out):
    bad = shutil.copytree(f["variants"][0], tmp / "corrupt")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[:8] + b"{not json" + data[17:])
    _pair(bad, f["variants"][1], out)


@case("truncated safetensors data", "corrupt safetensors file|cannot read")
def _(f, tmp, out):
    bad = shutil.copytree(f["variants"][0], tmp / "truncated")
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[:-1000])
    _pair(bad, f["variants"][1], out)


@case("NaN in the result", "NaN or Inf in 'encoder.layer.1.output.dense.weight'")
def _(f, tmp, out):
    bad = _edit_root(
        f["variants"][0],
        tmp / "nan",
        lambda t: t["encoder.layer.1.output.dense.weight"].__setitem__((0, 0), float("nan")),
    )
    _pair(bad, f["variants"][1], out)


@case("overflow to Inf in out_dtype", "NaN or Inf")
def _(f, tmp, out):
    bad = _edit_root(
        f["variants"][0], tmp / "huge", lambda t: t["encoder.layer.0.output.dense.weight"].mul_(1e7)
    )
    _pair(bad, f["variants"][1], out, out_dtype="float16")


@case("multislerp on antipodal tensors", "multislerp failed on tensor 'pooler.dense.weight'")
def _(f, tmp, out):
    flip = _edit_root(
        f["variants"][0],
        tmp / "flip",
        lambda t: t.__setitem__("pooler.dense.weight", -t["pooler.dense.weight"]),
    )
    merge_folders(
        [flip, f["variants"][0], tmp / "flip", f["variants"][0]],
        None,
        "multislerp",
        {"weight": 1.0},
        out,
        progress=False,
    )


@case("output folder not empty", "not empty")
def _(f, tmp, out):
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("mine")
    try:
        merge_folders(_inputs(f), None, "linear", {}, out, progress=False)
    finally:  # the user's folder is untouched; remove it so the no-output check applies
        assert (out / "keep.txt").read_text() == "mine"
        shutil.rmtree(out)


@case("input folder does not exist", "no such folder")
def _(f, tmp, out):
    _pair(tmp / "nowhere", f["variants"][1], out)


@case("folder without weights", "no weights")
def _(f, tmp, out):
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    _pair(empty, f["variants"][1], out)


@case("bad tokenizer_source", "tokenizer_source: 'first' is not a model of this merge")
def _(f, tmp, out):
    other = tm.build_st(tmp / "v300", "bert", dense=True, vocab_size=300)
    _pair(f["variants"][0], other, out, tokenizer_source="first")


@case("bad dtype", "dtype must be one of")
def _(f, tmp, out):
    merge_folders(_inputs(f), None, "linear", {}, out, dtype="float8", progress=False)


@case("bad device", "invalid device")
def _(f, tmp, out):
    merge_folders(_inputs(f), None, "linear", {}, out, device="tpu:9", progress=False)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_user_error_without_output(bert_family, tmp_path, name):
    fn, match = CASES[name]
    parent = tmp_path / "out"
    out = parent / "merged"
    with pytest.raises(UserError) as err:
        fn(bert_family, tmp_path, out)
    message = str(err.value)
    assert "\n" not in message and re.search(match, message), message
    assert not out.exists()
    assert not parent.exists() or list(parent.iterdir()) == []  # no temp folder left behind


def test_there_are_at_least_twelve_cases():
    assert len(CASES) >= 12


def test_plan_raises_the_same_errors_without_writing(bert_family, tmp_path):
    with pytest.raises(UserError, match="needs a base"):
        plan(_inputs(bert_family), None, "ties", {})
    assert list(tmp_path.iterdir()) == []
