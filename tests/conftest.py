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
