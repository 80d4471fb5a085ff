"""The pull-request description of a proposed model: before/after table, deltas, at a glance."""

from zoo.cards.pull_request import pr_description, score_rows


def test_table_deltas_and_forgetting_and_gain():
    before = {"Old": 0.5, "Kept": 0.4, "Gone": 0.3}
    after = {"Old": 0.4825, "Kept": 0.4, "New": 0.61}
    text = pr_description("**zoo update**", "org/m", before, after)
    lines = text.splitlines()
    assert lines[0] == "**zoo update**"
    start = lines.index("| task | before | after | Δ |")
    assert lines[start + 2 : start + 7] == [
        "| Gone | 30.00 | — | — |",
        "| Kept | 40.00 | 40.00 | +0.00 |",
        "| New | — | 61.00 | — |",
        "| Old | 50.00 | 48.25 | -1.75 |",
        "| **mean of 2 shared** | 45.00 | 44.12 | -0.88 |",
    ]
    assert "**Forgetting** (largest drop): Old -1.75 · **gain** (largest rise): none" in text
    assert text.endswith("Merging this pull request publishes the model on main.\n")


def test_rows_and_the_cases_without_a_comparison():
    rows = score_rows({"A": 0.5}, {"A": 0.75, "B": 0.1})
    assert rows == [
        {"task": "A", "before": 0.5, "after": 0.75, "delta": 0.25},
        {"task": "B", "before": None, "after": 0.1, "delta": None},
    ]
    gain = pr_description("s", "o/m", {"A": 0.5}, {"A": 0.75})
    assert "(largest drop): none (no task lost) · **gain** (largest rise): A +25.00" in gain
    fresh = pr_description("s", "o/m", {}, {"A": 0.75})
    assert "| A | — | 75.00 | — |" in fresh and "no delta to show" in fresh
    assert "was not evaluated" in pr_description("s", "o/m", {"A": 0.5}, {})
