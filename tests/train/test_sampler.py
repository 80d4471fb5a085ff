"""Batch-level shuffling plan: one dataset (and one group) per batch, proportions, determinism."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.train.sampler import Source, examples_in_batches, num_batches, plan_batches


def _owner(sources):
    """Global row index -> (dataset index, group id or None)."""
    owner = []
    for d, src in enumerate(sources):
        owner += [
            (d, None if src.groups is None else int(g))
            for g in (src.groups if src.groups is not None else [None] * src.num_rows)
        ]
    return owner


def _check_plan(sources, batch_size, plan):
    owner = _owner(sources)
    rows = np.concatenate(plan) if plan else np.array([], dtype=int)
    assert sorted(rows.tolist()) == list(range(len(owner)))  # every row exactly once
    assert all(1 <= len(b) <= batch_size for b in plan)
    assert all(len({owner[i] for i in b}) == 1 for b in plan)  # one dataset, one group
    assert len(plan) == num_batches(sources, batch_size)


MIXED = [Source(70), Source(25, np.array([3, 1, 1, 3, 2] * 5)), Source(0), Source(41)]


def test_every_batch_is_one_dataset_and_one_group_and_covers_all_rows():
    for epoch in range(3):
        _check_plan(MIXED, 8, plan_batches(MIXED, 8, seed=7, epoch=epoch))


def test_groups_split_into_own_batches_even_when_small():
    src = [Source(6, np.array([0, 1, 0, 1, 2, 0]))]
    plan = plan_batches(src, 32, seed=0, epoch=0)
    assert sorted(sorted(b.tolist()) for b in plan) == [[0, 2, 5], [1, 3], [4]]


def test_deterministic_given_seed_and_epoch_and_reshuffled_otherwise():
    same = [plan_batches(MIXED, 8, seed=1, epoch=0) for _ in range(2)]
    assert [b.tolist() for b in same[0]] == [b.tolist() for b in same[1]]
    other_epoch = plan_batches(MIXED, 8, seed=1, epoch=1)
    other_seed = plan_batches(MIXED, 8, seed=2, epoch=0)
    assert [b.tolist() for b in other_epoch] != [b.tolist() for b in same[0]]
    assert [b.tolist() for b in other_seed] != [b.tolist() for b in same[0]]


def test_batches_are_spread_in_proportion_to_dataset_size():
    sources = [Source(1000), Source(3000)]
    shares = []
    for seed in range(20):
        plan = plan_batches(sources, 10, seed=seed, epoch=0)  # 100 + 300 batches
        owner = [int(b[0] >= 1000) for b in plan]
        shares += [np.mean(owner[q * 100 : (q + 1) * 100]) for q in range(4)]  # per quarter
    assert np.mean(shares) == pytest.approx(0.75, abs=0.01)
    assert min(shares) > 0.6 and max(shares) < 0.9  # no quarter is one-sided


def test_one_dataset_does_not_change_another_datasets_batches():
    a = plan_batches([Source(50), Source(30)], 8, seed=3, epoch=0)
    b = plan_batches([Source(50), Source(99)], 8, seed=3, epoch=0)
    first = lambda plan: sorted(tuple(x.tolist()) for x in plan if x[0] < 50)  # noqa: E731
    assert first(a) == first(b)


def test_examples_in_batches_counts_across_epochs():
    per_epoch = num_batches(MIXED, 8)
    total = sum(s.num_rows for s in MIXED)
    assert examples_in_batches(MIXED, 8, seed=5, count=per_epoch) == total
    plan2 = plan_batches(MIXED, 8, seed=5, epoch=2)
    expected = 2 * total + sum(len(b) for b in plan2[:3])
    assert examples_in_batches(MIXED, 8, seed=5, count=2 * per_epoch + 3) == expected


def test_bad_sources_are_refused():
    with pytest.raises(ValueError, match="groups has 2 entries for 3 rows"):
        Source(3, np.array([0, 1]))
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches([Source(3)], 0, seed=0, epoch=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=5),
    st.integers(1, 12),
    st.integers(0, 2**31),
    st.integers(0, 5),
)
def test_plan_properties_hold_for_any_sources(spec, batch_size, seed, epoch):
    rng = np.random.default_rng(seed)
    sources = [Source(n, rng.integers(0, 4, n) if grouped else None) for n, grouped in spec]
    plan = plan_batches(sources, batch_size, seed=seed, epoch=epoch)
    _check_plan(sources, batch_size, plan)
    # only a unit's (dataset's or group's) last batch may be short
    short = sum(1 for b in plan if len(b) < batch_size)
    assert short <= sum(len(src.units) for src in sources)
