"""Multi-merges (mergekit-multi's multi-document recipes, or `merges:`): named merges run in
dependency order, the earlier outputs locked inputs of the later ones, one lock."""

from __future__ import annotations

import json

import pytest
import torch

from tests import tiny as tm
from zoo.cli import main
from zoo.errors import UserError
from zoo.hashing import sha256_file
from zoo.merge.engine import MergeInput, merge_folders
from zoo.recipe.lock import load_lock
from zoo.recipe.multi import dependency_order, load_multi
from zoo.recipe.schema import load_recipe

# a: linear of two fine-tunes; b: slerp of base and a third; final: ties of a and b over base
DOCS = """\
name: a
merge_method: linear
models:
  - model: {ft0}
    parameters: {{weight: 0.5}}
  - model: {ft1}
    parameters: {{weight: 0.5}}
---
name: b
merge_method: slerp
base_model: {base}
models:
  - model: {base}
  - model: {ft2}
parameters: {{t: 0.3}}
---
merge_method: ties
base_model: {base}
models:
  - model: a
    parameters: {{weight: 0.6, density: 0.5}}
  - model: b
    parameters: {{weight: 0.4, density: 0.5}}
"""


def _docs(family, text=DOCS):
    ft0, ft1, ft2 = family["variants"]
    return text.format(base=family["base"], ft0=ft0, ft1=ft1, ft2=ft2)


def _as_merges_list(text):
    """The same merges as one mapping `merges: [...]` (each document a list item)."""
    import yaml

    return yaml.safe_dump({"merges": list(yaml.safe_load_all(text))}, sort_keys=False)


@pytest.fixture()
def bert(families):
    return families("bert")


# --- ordering (pure) -------------------------------------------------------------------------


def test_order_puts_each_merge_after_what_it_uses():
    needs = {"c": ("b", "a"), "a": (), "b": ("a",), "f": ("c", "a")}
    assert dependency_order(needs, "f") == ["a", "b", "c", "f"]
    assert dependency_order({"x": (), "y": (), "f": ("y", "x")}, "f") == ["y", "x", "f"]
    assert dependency_order({"f": ()}, "f") == ["f"]


@pytest.mark.parametrize(
    "needs, final, message",
    [
        ({"a": ("b",), "b": ("a",), "f": ("a",)}, "f", "merge 'a' depends on itself ('a' -> 'b'"),
        ({"a": ("a",), "f": ("a",)}, "f", "merge 'a' depends on itself ('a' -> 'a')"),
        ({"a": (), "f": ()}, "f", "merge 'a' is not used by the final merge 'f'"),
        ({"f": (), "a": ("f",)}, "f", "merge 'a' uses 'f', the final merge"),
    ],
)
def test_order_errors_name_the_merge(needs, final, message):
    with pytest.raises(UserError) as err:
        dependency_order(needs, final)
    assert message in str(err.value) and "\n" not in str(err.value)


# --- loading -----------------------------------------------------------------------------------


def test_documents_and_merges_list_load_the_same(bert):
    text = _docs(bert)
    docs, listed = load_multi(text), load_multi(_as_merges_list(text))
    for loaded in (docs, listed):
        assert [s.name for s in loaded.steps] == ["a", "b"] and loaded.name is None
        assert [s.needs for s in loaded.steps] == [(), ()]
        assert loaded.final.method == "ties"
    assert [s.recipe.merge for s in docs.steps] == [s.recipe.merge for s in listed.steps]
    assert docs.final.merge == listed.final.merge and docs.final.text == text


def test_one_document_loads_as_load_recipe_does(bert):
    one = _docs(bert).split("---\n")[2]
    assert load_multi(one).final == load_recipe(one) and load_multi(one).steps == ()
    named = load_multi(_docs(bert).split("---\n")[1].replace("name: b\n", "name: only\n"))
    assert named.name == "only" and named.steps == ()


def test_the_publishing_merge_is_final_and_may_come_first(bert):
    text = _docs(bert).replace("merge_method: ties", "name: top\nmerge_method: ties")
    first, *rest = text.split("---\n")
    moved = "---\n".join([rest[1] + "zoo: {publish: {repo_id: zoo/top}}\n", first, rest[0]])
    loaded = load_multi(moved)
    assert loaded.name == "top" and [s.name for s in loaded.steps] == ["a", "b"]


def _doc(name=None, models=("org/x",), method="linear", zoo=None):
    head = f"name: {name}\n" if name else ""
    listed = ", ".join(f"{{model: {m}}}" for m in models)
    return head + f"merge_method: {method}\nmodels: [{listed}]\n" + (f"zoo: {zoo}\n" if zoo else "")


def _multi(*docs):
    return "---\n".join(docs)


BAD = [
    ("dup", _multi(_doc("a"), _doc("a")), "merge 2: two merges are named 'a'"),
    ("two-unnamed", _multi(_doc(), _doc()), "merge 2: only one merge may be unnamed"),
    ("bad-name", _doc("a/b"), "merge 1: name: 'a/b' is not a merge name"),
    (
        "typo",
        _multi(_doc("alpha"), _doc(models=("alpah",))),
        "merge (the unnamed merge): models[0].model: unknown merge 'alpah' (did you mean 'alpha'?)",
    ),
    (
        "cycle",
        _multi(_doc("a", ("b",)), _doc("b", ("a",)), _doc(models=("a",))),
        "merge 'a' depends on itself ('a' -> 'b' -> 'a')",
    ),
    ("unused", _multi(_doc("a"), _doc()), "merge 'a' is not used by the final merge"),
    (
        "eval-early",
        _multi(_doc("a", zoo="{eval: {tasks: [t]}}"), _doc(models=("a",))),
        "merge 'a': zoo.eval belongs to the final merge",
    ),
    (
        "two-publish",
        _multi(
            _doc("a", zoo="{publish: {repo_id: o/a}}"),
            _doc("b", ("a",), zoo="{publish: {repo_id: o/b}}"),
        ),
        "merges 'a' and 'b' both have zoo.publish",
    ),
    (
        "publish-unnamed",
        _multi(_doc("a", zoo="{publish: {repo_id: o/a}}"), _doc(models=("a",))),
        "the unnamed merge would be lost",
    ),
    (
        "bad-step",
        _multi(_doc("a", method="lineer"), _doc(models=("a",))),
        "merge 'a': merge_method: unknown merge method 'lineer'",
    ),
    (
        "merges-extra",
        "merges: [{name: a, merge_method: linear, models: [{model: org/x}]}]\nzoo: {}\n",
        "zoo: a recipe with merges: holds only that list",
    ),
    ("merges-empty", "merges: []\n", "merges: expected a list"),
    ("not-mapping", _multi(_doc("a"), "- 1\n"), "merge 2: a merge is a YAML mapping"),
]


@pytest.mark.parametrize("case, text, needle", BAD, ids=[c[0] for c in BAD])
def test_bad_multi_recipes_are_one_line(tmp_path, capsys, case, text, needle):
    (tmp_path / "multi.yaml").write_text(text)
    with pytest.raises(UserError) as err:
        load_multi(tmp_path / "multi.yaml")
    assert needle in str(err.value), str(err.value)
    assert main(["merge", str(tmp_path / "multi.yaml"), "--out", str(tmp_path / "o")]) == 2
    out = capsys.readouterr()
    assert needle in out.err and out.err.count("\n") == 1 and not (tmp_path / "o").exists()


# --- `zoo merge` on a multi-merge ---------------------------------------------------------------


def _by_hand(bert, tmp_path):
    """The three merges run one after the other with merge_folders."""
    base, (ft0, ft1, ft2) = bert["base"], bert["variants"]
    a, b = tmp_path / "hand-a", tmp_path / "hand-b"
    inputs = [MergeInput(ft0, {"weight": 0.5}), MergeInput(ft1, {"weight": 0.5})]
    merge_folders(inputs, None, "linear", {}, a, progress=False)
    merge_folders([MergeInput(base), MergeInput(ft2)], base, "slerp", {"t": 0.3}, b, progress=False)
    final = [
        MergeInput(a, {"weight": 0.6, "density": 0.5}),
        MergeInput(b, {"weight": 0.4, "density": 0.5}),
    ]
    merge_folders(final, base, "ties", {}, tmp_path / "hand", progress=False)
    return tm.load_all(tmp_path / "hand")


def test_zoo_merge_runs_the_merges_in_order_and_locks_them(bert, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    recipe = tmp_path / "multi.yaml"
    recipe.write_text(_docs(bert))
    assert main(["merge", str(recipe), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    ours, hand = tm.load_all(tmp_path / "out"), _by_hand(bert, tmp_path)
    assert sorted(ours) == sorted(hand) and all(torch.equal(ours[k], hand[k]) for k in hand)
    SentenceTransformer(str(tmp_path / "out"), device="cpu")
    lock = load_lock(tmp_path / "out" / "zoo.lock.json")
    assert [s.name for s in lock.steps] == ["a", "b"] and lock.recipe == recipe.read_text()
    assert [m.pinned for m in lock.steps[0].models] == [str(p) for p in bert["variants"][:2]]
    assert lock.models[0].pinned == "merge:a" and lock.models[0].requested == "a"
    assert lock.models[0].files == lock.steps[0].outputs
    by_hand = sha256_file(tmp_path / "hand-a" / "model.safetensors")  # a's output, same bytes
    assert lock.steps[0].outputs["model.safetensors"] == by_hand
    assert (tmp_path / "out" / "recipe.yaml").read_text() == recipe.read_text()
    assert not list(tmp_path.glob("out/merges*"))  # the earlier outputs are scratch


def test_lock_reproduces_the_bytes_and_checks_each_merge(bert, tmp_path, capsys):
    recipe = tmp_path / "multi.yaml"
    recipe.write_text(_as_merges_list(_docs(bert)))
    assert main(["merge", str(recipe), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    lock_file = tmp_path / "a" / "zoo.lock.json"
    assert main(["merge", "--lock", str(lock_file), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    for name in ("model.safetensors", "zoo.lock.json", "recipe.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    data = json.loads(lock_file.read_text())
    data["steps"][1]["params"]["t"] = 0.4  # the lock's merge 'b' now gives other bytes
    (tmp_path / "bad.json").write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["merge", "--lock", str(tmp_path / "bad.json"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "merge 'b': its output model.safetensors differs from the lock's" in err
    assert err.count("\n") == 1


def test_documents_and_merges_list_give_the_same_bytes(bert, tmp_path):
    for name, text in (("docs", _docs(bert)), ("list", _as_merges_list(_docs(bert)))):
        (tmp_path / f"{name}.yaml").write_text(text)
        argv = ["merge", str(tmp_path / f"{name}.yaml"), "--out", str(tmp_path / name)]
        assert main([*argv, "--quiet"]) == 0
    assert (tmp_path / "docs/model.safetensors").read_bytes() == (
        tmp_path / "list/model.safetensors"
    ).read_bytes()


def test_dry_run_prints_every_merge_in_order(bert, tmp_path, capsys):
    recipe = tmp_path / "multi.yaml"
    recipe.write_text(_docs(bert))
    assert main(["merge", str(recipe), "--dry-run"]) == 0
    out = capsys.readouterr().out
    heads = [out.index(h) for h in ("merge 'a':", "merge 'b':", "final merge:")]
    assert heads == sorted(heads)
    assert "method: linear" in out and "method: slerp" in out and "model: merge:a" in out
    assert out.count("tensors: 39 (39 merged)") == 3
    assert main(["merge", str(recipe), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in plan["merges"]] == ["a", "b"] and plan["method"] == "ties"
    assert not (tmp_path / "merged").exists() and not list(tmp_path.glob("*.lock.json"))


def test_an_earlier_merge_as_the_base_of_an_adapter(bert, tmp_path):
    """`a+ADAPTER`: the adapter folded into merge a's output (mergekit-multi patches the same)."""
    adapter = tm.lora_adapter(bert["base"], tmp_path / "adapter", seed=4, target_modules=["query"])
    text = (
        _docs(bert).split("---\n")[0]
        + f"---\nmerge_method: linear\nmodels:\n  - model: a+{adapter}\n"
        + "    parameters: {weight: 1.0}\n"
    )
    (tmp_path / "r.yaml").write_text(text)
    assert main(["merge", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    from peft import PeftModel
    from transformers import AutoModel

    a = tmp_path / "a-alone"
    inputs = [MergeInput(p, {"weight": 0.5}) for p in bert["variants"][:2]]
    merge_folders(inputs, None, "linear", {}, a, progress=False)
    folded = PeftModel.from_pretrained(AutoModel.from_pretrained(str(a)), str(adapter))
    want = folded.merge_and_unload().state_dict()
    ours = {k: v for k, v in tm.load_all(tmp_path / "out").items() if "/" not in k}
    assert sorted(ours) == sorted(want)
    assert all((ours[k] - want[k]).abs().max() <= 1e-6 for k in ours)
    lock = load_lock(tmp_path / "out" / "zoo.lock.json")
    assert lock.models[0].pinned == "merge:a" and lock.models[0].adapter.pinned == str(adapter)


def test_publish_names_every_hub_input_and_draws_the_merges(hub, published, tmp_path):
    """Hub bags merged in two steps, published: the lineage names the bags, the card's graph the
    earlier merge; a dry run reads only headers (skeletons) of Hub inputs and earlier merges."""
    from huggingface_hub import HfApi

    from zoo.hub.session import open_hub_if
    from zoo.pipelines.merging import MergeOptions, merge, prepare_merge

    bags = sorted(f"{r}@{s}" for r, s in published["bags"].items() if "exp-a" in r)
    text = (
        f"name: pair\nmerge_method: linear\nmodels:\n  - model: {bags[0]}\n"
        f"    parameters: {{weight: 1.0}}\n  - model: {bags[1]}\n    parameters: {{weight: 1.0}}\n"
        f"---\nname: top\nmerge_method: ties\nbase_model: {published['base']}\n"
        f"parameters: {{density: 0.5}}\nmodels:\n  - model: pair\n    parameters: {{weight: 0.5}}\n"
        f"  - model: {bags[2]}\n    parameters: {{weight: 0.5}}\n"
        "zoo: {publish: {repo_id: zoo/tiny-two-step}}\n"
    )
    (tmp_path / "multi.yaml").write_text(text)

    def run(**options):
        job = prepare_merge(tmp_path / "multi.yaml", None, MergeOptions(progress=False, **options))
        with open_hub_if(job.needs_hub, hub.url, hub.admin_token, create=job.writes_hub) as h:
            return merge(h, job)

    dry = run(dry_run=True)
    assert [m["name"] for m in dry.plan["merges"]] == ["pair"] and dry.plan["method"] == "ties"
    assert dry.plan["models"][0]["ref"] == "merge:pair"
    outcome = run(out=tmp_path / "out", publish=True)
    assert outcome.tag == "v1" and outcome.lock.name == "top"
    api = HfApi(endpoint=hub.url, token=hub.admin_token)
    meta = json.loads(open(api.hf_hub_download("zoo/tiny-two-step", "zoo.json")).read())
    assert meta["parents"] == bags  # in the order the merges use them: pair's two, then top's
    assert meta["base_model"] == published["base"]
    readme = open(api.hf_hub_download("zoo/tiny-two-step", "README.md")).read()
    graph = readme[readme.index("graph BT") :].split("```")[0]
    assert "merge:pair<br/>merged" in graph, graph
    edges = {line.strip() for line in graph.splitlines() if "-->" in line}
    # n0 the published model, n1 merge:pair, n2/n3 its bags, n4 the base, n5 the third bag
    assert {"n0 -->|merged from| n1", "n1 -->|merged from| n2", "n1 -->|merged from| n3"} <= edges
    assert {"n0 -->|base| n4", "n0 -->|merged from| n5", "n2 -->|base| n4"} <= edges
    assert "n0 -->|merged from| n2" not in edges  # the bag is drawn under the merge that used it
    lock = load_lock(api.hf_hub_download("zoo/tiny-two-step", "zoo.lock.json"))
    assert [s.name for s in lock.steps] == ["pair"] and lock.recipe == text


def _linear_then_slerp(q):
    return (
        f"name: a\nmerge_method: linear\ndtype: float32\nmodels:\n"
        f"  - model: {q[1]}\n    parameters: {{weight: 0.7}}\n"
        f"  - model: {q[2]}\n    parameters: {{weight: 0.3}}\n"
        f"---\nmerge_method: slerp\ndtype: float32\nbase_model: {q[0]}\n"
        f"models:\n  - model: {q[0]}\n  - model: a\nparameters: {{t: [0.1, 0.6, 0.9]}}\n"
    )


def _two_stacks_then_linear(q):
    """Two passthrough self-stacks (4 layers -> 6), then a linear merge of the 6-layer models."""
    stack = (
        "name: {name}\nmerge_method: passthrough\ndtype: float32\nslices:\n"
        "  - sources: [{{model: {m}, layer_range: [0, 4]}}]\n"
        "  - sources: [{{model: {m}, layer_range: [{lo}, {hi}]}}]\n---\n"
    )
    return (
        stack.format(name="s1", m=q[1], lo=2, hi=4)
        + stack.format(name="s2", m=q[2], lo=1, hi=3)
        + "merge_method: linear\ndtype: float32\nmodels:\n"
        + "  - model: s1\n    parameters: {weight: 0.5}\n"
        + "  - model: s2\n    parameters: {weight: 0.5}\n"
    )


@pytest.mark.parametrize("make", [_linear_then_slerp, _two_stacks_then_linear])
def test_equals_mergekit_multi_on_a_causal_lm(tmp_path, capsys, make):
    """The same multi-document file through mergekit-multi and zoo merge: the same tensors;
    the dry run plans the later merge on the earlier one's skeleton (6 layers after a stack)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    q = [tm.build_decoder(tmp_path / f"q{i}", "llama", seed=i) for i in range(3)]
    (tmp_path / "multi.yaml").write_text(make(q))
    tool = Path(sys.executable).with_name("mergekit-multi")
    argv = [str(tool), "multi.yaml", "--intermediate-dir", str(tmp_path / "mk-steps")]
    argv += ["--out-path", str(tmp_path / "mk"), "--no-lazy", "--no-copy-tokenizer"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert main(["merge", str(tmp_path / "multi.yaml"), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    argv = ["merge", str(tmp_path / "multi.yaml"), "--out", str(tmp_path / "zoo"), "--quiet"]
    assert main(argv) == 0
    ours, theirs = tm.load_all(tmp_path / "zoo"), tm.load_all(tmp_path / "mk")
    assert sorted(ours) == sorted(theirs) and "lm_head.weight" in ours
    assert max(float((ours[k] - theirs[k]).abs().max()) for k in ours) <= 1e-6
    assert sorted(t["name"] for t in plan["tensor_plan"]) == sorted(ours)
    layers = tm.read_json(tmp_path / "zoo" / "config.json")["num_hidden_layers"]
    assert layers == tm.read_json(tmp_path / "mk" / "config.json")["num_hidden_layers"]
