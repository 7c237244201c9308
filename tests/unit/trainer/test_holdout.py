"""The held-out split the trainer makes and the validator makes again from the seed.

Aspects: the two parts cover every row once, with the held-out size asked for; a
stratified split gives each class its rounded share, at least one row in each part;
the same seed gives the same split in a fresh process (the validator's pod), another
seed another split; neither part comes grouped by class.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_operator.trainer.holdout import held_out_positions

_SNIPPET = """
import json, sys
import numpy as np
from mlops_operator.trainer.holdout import held_out_positions
train, test = held_out_positions(np.array(json.loads(sys.argv[1])), 30, seed=7, stratified=True)
print(json.dumps([train.tolist(), test.tolist()]))
"""


def _iris_like() -> npt.NDArray[np.str_]:
    return np.repeat(np.array(["setosa", "versicolor", "virginica"]), 50)


@st.composite
def _targets(draw: st.DrawFn) -> tuple[npt.NDArray[np.str_], int]:
    """Class labels, at least two rows of each, and a held-out size that leaves every class
    a row in each part (what `split` checks before it calls)."""
    counts = draw(st.lists(st.integers(2, 40), min_size=2, max_size=6))
    labels = np.array([f"c{i}" for i, n in enumerate(counts) for _ in range(n)])
    order = draw(st.permutations(range(len(labels))))
    held_out = draw(st.integers(len(counts), len(labels) - len(counts)))
    return labels[list(order)], held_out


@settings(max_examples=200, deadline=None)
@given(_targets(), st.integers(0, 2**32 - 1))
def test_a_stratified_split_gives_each_class_its_share_and_a_row_in_each_part(
    target: tuple[npt.NDArray[np.str_], int], seed: int
) -> None:
    y, held_out = target
    train, test = held_out_positions(y, held_out, seed=seed, stratified=True)
    assert sorted([*train, *test]) == list(range(len(y)))
    assert len(test) == held_out
    classes, counts = np.unique(y, return_counts=True)
    shares = held_out * counts / len(y)
    # Largest remainder keeps each class within a row of its exact share, unless a class had
    # to keep (or give) a row for the other part and the difference went elsewhere.
    exact = bool(((shares > 1) & (shares < counts - 1)).all())
    for label, count, share in zip(classes, counts, shares, strict=True):
        given_out = int((y[test] == label).sum())
        assert 1 <= given_out <= count - 1
        assert abs(given_out - share) < 1 or not exact


@settings(max_examples=50, deadline=None)
@given(st.integers(4, 300), st.data())
def test_an_unstratified_split_holds_out_the_size_asked_for(rows: int, data: st.DataObject) -> None:
    held_out = data.draw(st.integers(2, rows - 2))
    train, test = held_out_positions(
        np.arange(rows, dtype=float), held_out, seed=3, stratified=False
    )
    assert sorted([*train, *test]) == list(range(rows))
    assert len(test) == held_out


def test_the_seed_alone_decides_the_split_even_in_another_process() -> None:
    y = _iris_like()
    train, test = held_out_positions(y, 30, seed=7, stratified=True)
    again = subprocess.run(
        [sys.executable, "-c", _SNIPPET, json.dumps(y.tolist())],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(again.stdout) == [train.tolist(), test.tolist()]
    _, other = held_out_positions(y, 30, seed=8, stratified=True)
    assert other.tolist() != test.tolist()


def test_exact_shares_are_kept_and_neither_part_comes_grouped_by_class() -> None:
    y = _iris_like()  # sorted by class, as iris ships
    train, test = held_out_positions(y, 30, seed=0, stratified=True)
    assert [int((y[test] == c).sum()) for c in np.unique(y)] == [10, 10, 10]
    assert int((y[train][1:] != y[train][:-1]).sum()) > 10, "training rows class by class"
    # The model card's parity sample is the first 20 held-out rows: every class in it.
    assert set(y[test][:20]) == set(y)


def test_a_row_left_over_after_rounding_goes_to_the_class_that_sorts_first_on_a_tie() -> None:
    # 9 of 15 rows: the exact shares are 1.2, 2.4 and 5.4, so one row is left over and "b"
    # and "c" tie for it (in floats, 5.4 - 5 comes out above 2.4 - 2).
    y = np.repeat(np.array(["a", "b", "c"]), [2, 4, 9])
    _, test = held_out_positions(y, 9, seed=5, stratified=True)
    assert [int((y[test] == c).sum()) for c in ("a", "b", "c")] == [1, 3, 5]
