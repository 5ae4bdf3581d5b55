"""The softmax's exponential (fastnn.kernels.exponential) against NumPy's ``np.exp``."""

import numpy as np
import pytest
from numba import njit

from fastnn.kernels.exponential import exp_nonpositive


@njit
def _exp_all(values):
    # as the softmax calls it: the kernel has no Python wrapper; float32 values
    # are raised to float64 and the result rounded once
    out = values.copy()
    for t in range(out.shape[0]):
        out[t] = exp_nonpositive(np.float64(out[t]))
    return out


def _ulps(a, b):
    """Distance in units in the last place between float64 arrays of finite values >= 0."""
    return np.abs(a.view(np.int64) - b.view(np.int64))


def test_within_one_ulp_of_numpy_on_its_range():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        -np.linspace(0.0, 708.0, 400_001),           # evenly, across the whole range
        -rng.exponential(1.0, 200_000),              # most of a softmax's shifts
        -np.geomspace(1e-300, 1e-3, 10_000),         # near 0, where exp(x) is 1 - tiny
        -np.arange(1, 1022) * np.log(2.0),           # the ends of the reduction's intervals
        -(np.arange(1, 1022) + 0.5) * np.log(2.0),
    ])
    x = x[x >= -708.0]
    got = _exp_all(x)
    assert _ulps(got, np.exp(x)).max() <= 1


@pytest.mark.parametrize("x,expected", [
    (0.0, 1.0), (-0.0, 1.0), (-708.0, np.exp(-708.0)),
    (-708.5, 0.0), (-745.2, 0.0), (-1e10, 0.0), (-np.inf, 0.0),
])
def test_ends_of_the_range(x, expected):
    got = _exp_all(np.array([x]))[0]
    assert got == expected or _ulps(np.array([got]), np.array([expected]))[0] <= 1


def test_nan_stays_nan():
    got = _exp_all(np.array([-1.0, np.nan, -2.0]))
    assert np.isnan(got[1])
    assert _ulps(got[[0, 2]], np.exp([-1.0, -2.0])).max() <= 1  # its neighbours untouched


def test_float32_is_the_float64_result_rounded_once():
    x = -np.random.default_rng(1).exponential(3.0, 10_000).astype(np.float32)
    got = _exp_all(x)
    assert got.dtype == np.float32
    # exact float64 exponential of the float32 value, rounded to float32 once
    expected = np.exp(x.astype(np.float64)).astype(np.float32)
    assert np.abs(got.view(np.int32) - expected.view(np.int32)).max() <= 1
