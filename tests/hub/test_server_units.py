"""Pure parts of the embedded Hub: path rules, Range parsing, card tags, .gitignore, commit ids."""

from __future__ import annotations

import pytest

from zoo.hub.server import commits as C
from zoo.hub.server.cards import CardError, card_tags, parse_front_matter
from zoo.hub.server.download import parse_range
from zoo.hub.server.errors import HubError
from zoo.hub.server.paths import path_problem, valid_ref_name


@pytest.mark.parametrize(
    "path", ["a.txt", "dir/sub/file.bin", ".gitattributes", "a..b", ".hidden/x", "é/ü.txt"]
)
def test_good_paths(path):
    assert path_problem(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/a",
        "a/",
        "a//b",
        "./a",
        "a/..",
        "..",
        ".git",
        "x/.GIT/y",
        "a\\b",
        "a\x00b",
        "a\nb",
        "x" * 256,
        None,
    ],
)
def test_bad_paths(path):
    assert path_problem(path)


def test_ref_names():
    assert valid_ref_name("v1.0", "tag") == "v1.0"
    assert valid_ref_name("feature/x", "branch") == "feature/x"
    for bad in ("0" * 40, "refs/heads/x", "-x", "a..b", "x.lock", "a b", "HEAD"):
        with pytest.raises(HubError):
            valid_ref_name(bad, "branch")


def test_parse_range():
    assert parse_range(None, 10) is None
    assert parse_range("bytes=2-4", 10) == (2, 4)
    assert parse_range("bytes=2-", 10) == (2, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    assert parse_range("bytes=-30", 10) == (0, 9)
    assert parse_range("bytes=5-100", 10) == (5, 9)
    assert parse_range("bytes=0-1,3-4", 10) is None  # multi-range: send everything
    assert parse_range("items=0-1", 10) is None
    for bad in ("bytes=10-", "bytes=10-12", "bytes=-0"):
        with pytest.raises(HubError) as err:
            parse_range(bad, 10)
        assert err.value.status == 416 and err.value.headers["Content-Range"] == "bytes */10"


def test_front_matter_and_tags():
    card = parse_front_matter(
        "---\nlicense: mit\ntags: [a, b]\ndatasets: x/y\nlanguage: [en, fr]\nbase_model: o/m\n"
        "---\nbody"
    )
    assert card["license"] == "mit"
    assert card_tags(card, "model", ["model.safetensors"]) == [
        "a",
        "b",
        "safetensors",
        "license:mit",
        "dataset:x/y",
        "base_model:o/m",
        "en",
        "fr",
    ]
    assert card_tags(card, "dataset", []) == [
        "a",
        "b",
        "license:mit",
        "dataset:x/y",
        "base_model:o/m",
        "language:en",
        "language:fr",
    ]
    assert parse_front_matter("no front matter") == {}
    assert parse_front_matter("---\n---\nbody") == {}
    with pytest.raises(CardError):
        parse_front_matter("---\n- a list\n---\n")
    with pytest.raises(CardError):
        parse_front_matter("---\nkey: [unclosed\n---\n")


def test_gitignore():
    rules = "*.log\n!keep.log\nbuild/\n/top.txt\n# comment\n"
    assert C.gitignored("x/a.log", rules) and not C.gitignored("keep.log", rules)
    assert C.gitignored("build/o.bin", rules) and not C.gitignored("build", rules)
    assert C.gitignored("top.txt", rules) and not C.gitignored("sub/top.txt", rules)
    assert not C.gitignored("a.log", None)


def test_upload_mode():
    assert C.upload_mode("config.json", 100, b"{}") == "regular"
    assert C.upload_mode("x.txt", 10 * 1024 * 1024, b"text") == "lfs"
    assert C.upload_mode("w.safetensors", 10, b"x") == "lfs"
    assert C.upload_mode("data.txt", 10, b"a\x00b") == "lfs"


def test_tree_edits_and_commit_ids():
    tree = {"a/b.txt": C.regular_entry("0" * 64, b"x")}
    new = C.apply_operations(
        tree, [("add", "c.txt", C.regular_entry("1" * 64, b"y")), ("delete_folder", "a", None)]
    )
    assert list(new) == ["c.txt"] and list(tree) == ["a/b.txt"]  # the input is not mutated
    with pytest.raises(HubError) as err:
        C.apply_operations(tree, [("delete", "nope", None)])
    assert (
        err.value.code == "EntryNotFound"
        and "A file with this name doesn't exist" in err.value.message
    )
    with pytest.raises(HubError):
        C.apply_operations(tree, [("add", "a", C.regular_entry("1" * 64, b"y"))])  # file vs folder
    one = C.make_commit("uid", [], tree, "t", "", "me")
    two = C.make_commit("uid", [one["id"]], tree, "t", "", "me")
    assert len(one["id"]) == 40 and one["id"] != two["id"]
    assert C.regular_entry("0" * 64, b"hello")["oid"] == "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0"
