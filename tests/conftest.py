"""Fixtures shared by the test suite; the problem factories are in helpers.py."""

import pytest

from fastnn.threads import available_threads, thread_scope


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request):
    """Run under 1 and 2 threads: the serial and the parallel kernels."""
    if request.param > available_threads():
        pytest.skip(f"needs {request.param} threads, Numba has {available_threads()}")
    return request.param


@pytest.fixture
def scoped():
    """``scoped(backend, n_threads)``: the thread scope the Network would use."""
    return thread_scope


def pytest_generate_tests(metafunc):
    """scikit-learn's ``global_random_seed`` fixture, for its copied test_mlp.py: 42, as
    scikit-learn's conftest gives it by default (``SKLEARN_TESTS_GLOBAL_RANDOM_SEED``
    unset)."""
    if "global_random_seed" in metafunc.fixturenames:
        metafunc.parametrize("global_random_seed", [42])
