"""The matrix product the kernels use, against NumPy, on every path it can take:
small-row loops, low-rank updates, one BLAS call (small, or a large product
with a short inner size), BLAS split among threads."""

import numpy as np
import pytest
from numba import njit

from fastnn.kernels.config import MIN_PARALLEL_INNER
from fastnn.kernels.matmul import matmul
from fastnn.kernels.small_matmul import SMALL_RANK, SMALL_ROWS
from fastnn.threads import thread_scope


@njit
def _matmul(transa, transb, alpha, A, B, beta, C, n_blocks):
    matmul(transa, transb, alpha, A, B, beta, C, n_blocks)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("transa,transb", [(False, True), (False, False), (True, False)],
                         ids=["A.Bt", "A.B", "At.B"])
@pytest.mark.parametrize("m,k", [(1, 300), (SMALL_ROWS, 40), (SMALL_ROWS + 1, 40), (150, 1),
                                 (150, SMALL_RANK), (150, SMALL_RANK + 1), (120, 90),
                                 (400, MIN_PARALLEL_INNER - 1)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.3, 1.0), (0.5, 0.9)],
                         ids=["plain", "accumulate", "scaled"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_matmul_matches_numpy(dtype, transa, transb, m, k, alpha, beta, n_threads):
    rng = np.random.default_rng(m * 1000 + k)
    n = 70
    A = rng.standard_normal((k, m) if transa else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if transb else (k, n)).astype(dtype)
    C = rng.standard_normal((m, n)).astype(dtype)
    if beta == 0:
        C[0, 0] = np.nan  # beta = 0 must not read C
    expected = alpha * ((A.T if transa else A) @ (B.T if transb else B)) + (
        0 if beta == 0 else beta * C.astype(np.float64))
    with thread_scope(n_threads, "numba"):
        _matmul(transa, transb, alpha, A, B, beta, C, n_threads)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol * np.abs(expected).max())


def test_strided_column_block_of_the_result():
    """The threaded split hands each thread a column slice of C (row stride > width)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 20))
    B = rng.standard_normal((50, 20))
    C = np.zeros((3, 50))
    _matmul(False, True, 1.0, A, B[10:30], 0.0, C[:, 10:30], 1)
    np.testing.assert_allclose(C[:, 10:30], A @ B[10:30].T, rtol=1e-12)
    assert not C[:, :10].any() and not C[:, 30:].any()
