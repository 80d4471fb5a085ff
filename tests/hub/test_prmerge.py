"""Three-way merge of pull-request trees and their text diff (pure functions of prmerge)."""

from zoo.hub.server.prmerge import diff_text, merge_trees


def e(oid: str, lfs: bool = False) -> dict:
    return {"sha256": oid * 64, "size": 3, "lfs": lfs, "oid": oid * 40}


def test_merge_applies_the_pull_requests_changes_onto_a_moved_target():
    base = {"a": e("1"), "b": e("2"), "c": e("3")}
    main = {"a": e("1"), "b": e("9"), "c": e("3"), "m": e("4")}  # main changed b, added m
    pr = {"a": e("5"), "b": e("2"), "p": e("6")}  # the PR changed a, deleted c, added p
    tree, conflicts = merge_trees(base, main, pr)
    assert conflicts == []
    assert tree == {"a": e("5"), "b": e("9"), "m": e("4"), "p": e("6")}


def test_conflicts_are_files_both_sides_changed_differently_or_file_folder_clashes():
    base = {"a": e("1"), "b": e("2")}
    assert merge_trees(base, {**base, "a": e("3")}, {**base, "a": e("4")})[1] == ["a"]
    assert merge_trees(base, {**base, "a": e("3")}, {**base, "a": e("3")})[1] == []  # same change
    assert merge_trees(base, {"b": e("2")}, {"a": e("5"), "b": e("2")})[1] == ["a"]  # del vs edit
    clash = merge_trees(base, {**base, "x": e("7")}, {**base, "x/y": e("8")})[1]
    assert clash == ["x"]


def test_diff_shows_text_changes_lfs_pointers_and_binaries():
    files = {"1" * 64: b"one\ntwo\n", "2" * 64: b"one\nTWO\n", "3" * 64: b"\xff\xfe"}
    read = lambda entry: files.get(entry["sha256"])  # noqa: E731
    text = diff_text(
        {"t.txt": e("1"), "gone": e("1")},
        {"t.txt": e("2"), "w.bin": e("4", lfs=True), "raw": e("3")},
        read,
    )
    assert "diff --git a/t.txt b/t.txt\n--- a/t.txt\n+++ b/t.txt\n" in text
    assert "-two\n+TWO\n" in text
    assert "diff --git a/gone b/gone\ndeleted file mode 100644\n" in text
    assert "+oid sha256:" + "4" * 64 in text
    assert "Binary files /dev/null and b/raw differ" in text
