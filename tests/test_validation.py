"""The shared vocabulary of fastnn.validation: held-out rows, class weights, intervals."""

import numpy as np
import pytest

from fastnn import Network
from fastnn.validation import (
    class_counts,
    class_weight_factors,
    class_weight_table,
    held_out_count,
    hold_out,
    interval_text,
)


def test_hold_out_last_is_the_final_rows_as_slices():
    train, held = hold_out(10, 3, "last")
    assert (train, held) == (slice(0, 7), slice(7, 10))
    X = np.arange(20.0).reshape(10, 2)
    assert np.shares_memory(X[train], X) and X[held][0, 0] == 14.0


def test_hold_out_random_is_seeded_sorted_and_disjoint():
    train, held = hold_out(50, 12, "random", seed=4)
    again = hold_out(50, 12, "random", seed=4)
    np.testing.assert_array_equal(held, again[1])
    assert held.shape == (12,) and train.shape == (38,)
    assert np.all(np.diff(held) > 0) and np.all(np.diff(train) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, held])), np.arange(50))
    assert not np.array_equal(held, hold_out(50, 12, "random", seed=5)[1])
    assert not np.array_equal(held, np.arange(38, 50)), "random rows, not the last ones"


def test_hold_out_stratified_keeps_each_class_share():
    labels = np.repeat([0, 1, 2], [60, 30, 10])  # sorted: the last rows are one class
    train, held = hold_out(100, 20, "stratified", seed=0, labels=labels)
    assert np.bincount(labels[held]).tolist() == [12, 6, 2]
    assert np.bincount(labels[train]).tolist() == [48, 24, 8]
    # shares that do not divide evenly (1.5, 0.9, 0.6 rows): each class gets its whole
    # rows (1, 0, 0), then the largest remainders the rows still owed (classes 1 and 2)
    labels = np.repeat([0, 1, 2], [5, 3, 2])
    held = hold_out(10, 3, "stratified", seed=1, labels=labels)[1]
    assert held.shape == (3,) and np.bincount(labels[held], minlength=3).tolist() == [1, 1, 1]


def test_hold_out_refuses_an_empty_side_and_unknown_choices():
    with pytest.raises(ValueError, match="cannot hold out 5 of 5 rows"):
        hold_out(5, 5, "last")
    with pytest.raises(ValueError, match=r"unknown how 'first'; expected one of \['last'"):
        hold_out(5, 1, "first")
    with pytest.raises(ValueError, match="validation_split=0.01 of 20 rows leaves 20 for "
                                         "training and 0 for validation"):
        held_out_count(20, 0.01)
    assert held_out_count(20, 0.25) == 5


def test_balanced_class_weights_from_counts_equal_those_from_the_targets():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    labels[labels == 1] = 0  # one class absent: it keeps weight 1
    Y = np.eye(3)[labels]
    counts = class_counts("softmax", Y)
    table = class_weight_table("balanced", "softmax", 3, counts)
    assert table[1] == 1.0
    np.testing.assert_array_equal(class_weight_factors("balanced", "softmax", Y),
                                  table[labels])
    # the same numbers from counts summed block by block (streaming) or over ranks (MPI)
    halves = class_counts("softmax", Y[:17]) + class_counts("softmax", Y[17:])
    np.testing.assert_array_equal(class_weight_table("balanced", "softmax", 3, halves), table)
    with pytest.raises(ValueError, match="single-label classification"):
        class_weight_table("balanced", "identity", 1)
    with pytest.raises(ValueError, match="names class 3, but the classes are 0..2"):
        class_weight_table({3: 2.0}, "softmax", 3)


def test_interval_notation_writes_bounds_as_given():
    assert interval_text(0.0, None, False) == "(0.0, inf)"
    assert interval_text(0, 1, True, False) == "[0, 1)"
    assert interval_text(None, 5) == "(-inf, 5]"


def test_negative_sample_weight_names_the_row():
    X = np.zeros((6, 2))
    weights = np.ones(6)
    weights[4] = -2.0
    with pytest.raises(ValueError, match=r"sample_weight must be >= 0; got 1 negative "
                                         r"weight\(s\), the first at row 4: -2.0"):
        Network([2, 2]).fit(X, np.zeros(6, dtype=int), epochs=1, sample_weight=weights)
