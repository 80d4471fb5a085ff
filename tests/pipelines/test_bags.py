"""`zoo bag train` end to end on the tiny suite: bags trained, published, listed, pulled, loaded."""

import json

import pytest

from zoo.cli import main
from zoo.data.corpus import load_corpus
from zoo.data.sampler import BagManifest, DatasetDraw, indices_sha256, select_rows
from zoo.data.spec import load_corpus_spec


def hub_args(hub):
    return ["--hub", hub.url, "--token", hub.admin_token]


def bag_train(suite, out, hub, *extra, ratios="0.4,0.6,1.0", steps="3"):
    """`zoo bag train` arguments for the tiny suite, published to demo/bag-*."""
    return ["bag", "train", str(suite / "corpus.yaml"), "--base", "zoo/tiny-bert"] + [
        *("--ratios", ratios, "--steps", steps, "--batch-size", "8", "--push-to", "demo/bag"),
        *("--out", str(out), "--json", *extra, *hub_args(hub)),
    ]


@pytest.fixture(scope="module")
def trained(hub, tiny_suite, tiny_base, tmp_path_factory, capsys_module=None):
    out = tmp_path_factory.mktemp("bags")
    task = str(tiny_suite / "ood" / "LocaleBitextMining")
    argv = bag_train(tiny_suite, out, hub, "--eval-task-dir", task)
    assert main(argv) == 0
    return out


def test_bags_are_listed_with_their_manifests(hub, trained, tiny_base, capsys):
    capsys.readouterr()
    assert main(["ls", "--kind", "bag", "--json", *hub_args(hub)]) == 0
    rows = json.loads(capsys.readouterr().out)
    bags = {r["repo_id"]: r["meta"] for r in rows if r["repo_id"].startswith("demo/bag-")}
    assert sorted(bags) == ["demo/bag-0.4", "demo/bag-0.6", "demo/bag-1.0"]
    for repo, meta in bags.items():
        t = meta["training"]
        assert meta["base_model"] == tiny_base["ref"] and meta["adapter"]["type"] == "full"
        assert t["experiment"] == "bag" and f"{t['ratio']:.1f}" == repo.rsplit("-", 1)[1]
        assert t["examples_seen"] == 24 and len(t["datasets"]) == 5
        assert all(d["count"] <= d["size"] for d in t["datasets"])
        assert (
            set(meta["scores"]) == {"LocaleBitextMining"}
            and 0 <= meta["scores"]["LocaleBitextMining"] <= 1
        )


def test_a_second_run_reuses_published_bags(hub, trained, tiny_suite, capsys):
    before = {r: hub.api().model_info(r).sha for r in ("demo/bag-0.4", "demo/bag-1.0")}
    capsys.readouterr()
    argv = bag_train(tiny_suite, trained, hub)
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["reused"] for r in rows] == [True, True, True]
    assert {r: hub.api().model_info(r).sha for r in before} == before
    other = bag_train(tiny_suite, trained / "other", hub, ratios="0.4", steps="4")
    assert main(other) == 0  # other settings: retrained
    assert json.loads(capsys.readouterr().out)[0]["reused"] is False


def test_manifest_in_metadata_refinds_the_exact_rows(hub, trained, tiny_suite, capsys):
    capsys.readouterr()
    main(["show", "demo/bag-0.6", "--json", *hub_args(hub)])
    t = json.loads(capsys.readouterr().out)["meta"]["training"]
    manifest = BagManifest(
        ratio=t["ratio"],
        seed=t["seed"],
        bootstrap=t["bootstrap"],
        datasets=tuple(
            DatasetDraw(
                name=d["name"],
                source=d["source"],
                source_rev=d["revision"],
                fingerprint=d["fingerprint"],
                size=d["size"],
                count=d["count"],
                indices_sha256=d["indices_sha256"],
            )
            for d in t["datasets"]
        ),
        manifest_sha256=t["corpus_manifest_hash"],
    )
    corpus = load_corpus(load_corpus_spec(tiny_suite / "corpus.yaml"))
    rows = select_rows(corpus, manifest)
    assert {n: len(ds) for n, ds in rows.items()} == {d["name"]: d["count"] for d in t["datasets"]}


def test_pull_a_bag_and_load_it(hub, trained, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    capsys.readouterr()
    assert main(["pull", "demo/bag-0.4", "--to", str(tmp_path / "b"), *hub_args(hub)]) == 0
    model = SentenceTransformer(str(tmp_path / "b"), device="cpu")
    emb = model.encode(["list files in a directory", "open a socket"])
    assert emb.shape == (2, 32)
    assert abs(float((emb[0] ** 2).sum()) - 1.0) < 1e-5  # Normalize kept


BAD_SPECS = {
    "unknown task type": "datasets:\n- {name: x, type: regression, source: {path: d.jsonl}}\n",
    "missing column": "datasets:\n"
    "- {name: x, type: retrieval, source: {path: d.jsonl}, columns: {query: nope}}\n",
    "empty dataset": "datasets:\n- {name: x, type: retrieval, source: {path: empty.jsonl}}\n",
    "ratio outside (0, 1]": "ratios: [0.5, 1.5]\n"
    "datasets:\n- {name: x, type: retrieval, source: {path: d.jsonl}}\n",
    "unreachable dataset repo": "datasets:\n"
    "- {name: x, type: retrieval, source: {hub: zoo/no-such-data@main, path: d.jsonl}}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_bad_corpus_specs_exit_2(hub, tiny_base, tmp_path, capsys, case):
    (tmp_path / "d.jsonl").write_text('{"query": "q", "pos": "p"}\n')
    (tmp_path / "empty.jsonl").write_text("")
    spec = tmp_path / "corpus.yaml"
    spec.write_text(BAD_SPECS[case])
    capsys.readouterr()
    code = main(
        ["bag", "train", str(spec), "--base", "zoo/tiny-bert", "--steps", "1", *hub_args(hub)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("zoo: error:") and err.count("\n") == 1, err


def test_bad_ratio_flag_and_local_base_push(tiny_suite, tiny_base, capsys):
    assert (
        main(["bag", "train", str(tiny_suite / "corpus.yaml"), "--base", "x", "--ratios", "0,1"])
        == 2
    )
    assert "(0, 1]" in capsys.readouterr().err
    code = main(
        [
            "bag",
            "train",
            str(tiny_suite / "corpus.yaml"),
            "--base",
            str(tiny_base["path"]),
            "--push-to",
            "demo/x",
        ]
    )
    assert code == 2 and "Hub repo" in capsys.readouterr().err


def test_indices_hash_is_order_free():
    import numpy as np

    assert indices_sha256(np.array([3, 1, 2])) == indices_sha256(np.array([1, 2, 3]))
