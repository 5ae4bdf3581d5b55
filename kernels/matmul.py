"""A matrix product shared out among threads, each on its own block of the result."""

from numba import njit, prange

from fastnn.kernels.blas import gemm
from fastnn.kernels.config import COMPILED, MIN_PARALLEL_INNER, MIN_PARALLEL_MULTIPLY_ADDS
from fastnn.kernels.scalars import cast_like
from fastnn.kernels.small_matmul import (
    SMALL_RANK,
    SMALL_ROWS,
    low_rank_update,
    rows_times,
    rows_times_transposed,
)


@njit(**COMPILED, parallel=True)
def _gemm_split(transa, transb, alpha, A, B, beta, C, n_blocks):
    # Split the wider side of C: columns of C are rows of op(B), so a thread
    # then reads only its share of the weights.
    m, n = C.shape
    if n >= m:
        for t in prange(n_blocks):
            lo = t * n // n_blocks
            hi = (t + 1) * n // n_blocks
            if transb:
                gemm(transa, transb, alpha, A, B[lo:hi], beta, C[:, lo:hi])
            else:
                gemm(transa, transb, alpha, A, B[:, lo:hi], beta, C[:, lo:hi])
    else:
        for t in prange(n_blocks):
            lo = t * m // n_blocks
            hi = (t + 1) * m // n_blocks
            if transa:
                gemm(transa, transb, alpha, A[:, lo:hi], B, beta, C[lo:hi])
            else:
                gemm(transa, transb, alpha, A[lo:hi], B, beta, C[lo:hi])


@njit(inline="always")
def matmul(transa, transb, alpha, A, B, beta, C, n_blocks):
    """``C ← alpha · op(A) · op(B) + beta · C``, split into ``n_blocks`` slabs of ``C``.

    Each slab is a single-threaded BLAS call on its own thread (DESIGN rule 1:
    Numba owns the threads, so the caller caps BLAS at one).  Small products,
    products with a short inner size, or ``n_blocks == 1``, are one BLAS call
    on the calling thread (thresholds in :mod:`fastnn.kernels.config`); products
    with a handful of rows, and rank-1/2 weight updates, skip BLAS (see
    :mod:`fastnn.kernels.small_matmul`).

    Parameters
    ----------
    transa, transb : bool
    alpha, beta : float
    A, B, C : ndarray
        As for :func:`fastnn.kernels.blas.gemm`.
    n_blocks : int
    """
    m, n = C.shape
    k = A.shape[0] if transa else A.shape[1]
    # alpha and beta in the dtype: the loops then compute in it, as BLAS does
    alpha = cast_like(C, alpha)
    beta = cast_like(C, beta)
    if transa and k <= SMALL_RANK:
        low_rank_update(alpha, A, B, beta, C)
    elif not transa and m <= SMALL_ROWS:
        if transb:
            rows_times_transposed(alpha, A, B, beta, C)
        else:
            rows_times(alpha, A, B, beta, C)
    elif (n_blocks > 1 and m * n * k >= MIN_PARALLEL_MULTIPLY_ADDS and k >= MIN_PARALLEL_INNER
          and max(m, n) >= n_blocks):
        # bool() drops the literal type: one compiled split serves every flag pair
        _gemm_split(bool(transa), bool(transb), alpha, A, B, beta, C, n_blocks)
    else:
        gemm(transa, transb, alpha, A, B, beta, C)
