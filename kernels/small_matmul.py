"""Matrix products with very few rows (or a rank-1 update), without BLAS.

OpenBLAS repacks the whole weight matrix on every call: about 100 µs for a
200 x 784 float32 matrix here, against 11 µs for the arithmetic of one row, so
per-sample SGD (batch size 1) spent most of its time packing.  These loops
stream the weights once instead.  Measured (one core, float32, W 200 x 784):

    rows  sgemm A·Wᵀ   dot loop      rank-k update  sgemm   loop
    1     115 µs       11 µs         k = 1          19 µs   14 µs
    8     123 µs       77 µs         k = 2          22 µs   (2 passes)
    16    148 µs       147 µs

so :func:`fastnn.kernels.matmul.matmul` sends products with at most
``SMALL_ROWS`` rows, and weight updates of rank at most ``SMALL_RANK``, here.
The dot products are the only place with ``fastmath`` (``reassoc`` and
``contract`` only, docs/design.md rule 6): without reassociation LLVM cannot
vectorise a sum.  An inlined body is compiled with its caller's flags, so the
per-sample pipeline's is a function of its own and the forward step's caller
has the flags.
"""

from numba import njit

from fastnn.kernels.config import INTERNAL
from fastnn.kernels.scalars import cast_like

#: products with at most this many rows of the result use the loops below
SMALL_ROWS = 8
#: weight updates op(A)ᵀ·B of at most this rank use the loop below
SMALL_RANK = 2


@njit(inline="always")
def rows_times_transposed(alpha, A, B, beta, C):
    """``C ← alpha · A Bᵀ + beta · C``: ``A`` (m, k), ``B`` (n, k), ``C`` (m, n).

    One pass over the rows of ``B`` (the weights); each row meets every row of
    ``A`` while it is in L1.  Inlined: its one caller,
    :func:`fastnn.kernels.layer_steps.forward_step`, is compiled with
    ``reassoc`` and ``contract`` for it.
    """
    m, n = C.shape
    k = A.shape[1]
    for i in range(n):
        b = B[i]
        for q in range(m):
            a = A[q]
            total = cast_like(C, 0.0)  # not a[0] * 0: float32 times int is float64 in Numba
            for p in range(k):
                total += a[p] * b[p]
            if beta == 0:
                C[q, i] = alpha * total
            else:
                C[q, i] = alpha * total + beta * C[q, i]


@njit(inline="always")
def _scale_and_add_rows(c, beta, alpha, factors, B):
    # c ← beta·c + alpha·Σ_p factors[p]·B[p]: one row of the result, vectorised
    # along its length, read and written once
    n = c.shape[0]
    if beta != 1:
        # with beta == 0 the old c is not read (it may hold NaN)
        for j in range(n):
            c[j] = beta * c[j] if beta != 0 else 0
    for p in range(factors.shape[0]):
        factor = alpha * factors[p]
        b = B[p]
        for j in range(n):
            c[j] += factor * b[j]


@njit(inline="always")
def rows_times(alpha, A, B, beta, C):
    """``C ← alpha · A B + beta · C``: ``A`` (m, k), ``B`` (k, n), ``C`` (m, n).

    Row by row as a sum of scaled rows of ``B`` (vectorised along ``n``).
    """
    for q in range(C.shape[0]):
        _scale_and_add_rows(C[q], beta, alpha, A[q], B)


@njit(inline="always")
def low_rank_update(alpha, A, B, beta, C):
    """``C ← alpha · Aᵀ B + beta · C`` for a small inner size:
    ``A`` (k, m), ``B`` (k, n), ``C`` (m, n), ``k`` at most ``SMALL_RANK``.

    One pass over ``C`` (the weights): each row is scaled and gets its ``k``
    scaled rows of ``B`` while it is in L1.
    """
    for i in range(C.shape[0]):
        _scale_and_add_rows(C[i], beta, alpha, A[:, i], B)


@njit(**INTERNAL, fastmath={"reassoc", "contract"})
def rank1_update_then_dot(alpha, d, x, beta, W, x_next, z_next):
    """``W ← beta·W + alpha·dᵀx``, then ``z_next ← x_next·Wᵀ`` with the new ``W``,
    in one pass over ``W``.

    Per-sample SGD updates the first layer's weights and then reads them for
    the next sample's first product; doing both while each row is in L1
    streams the (L2-sized or larger) matrix once per sample instead of twice.

    Parameters
    ----------
    alpha, beta : scalars of the dtype
    d : ndarray, shape (1, m)
    x, x_next : ndarray, shape (1, n)
    W : ndarray, shape (m, n)
    z_next : ndarray, shape (1, m)
        Written: the next sample's ``x_next W^T`` (no bias).
    """
    m, n = W.shape
    for i in range(m):
        factor = alpha * d[0, i]
        row = W[i]
        total = cast_like(W, 0.0)
        for j in range(n):
            value = beta * row[j] + factor * x[0, j]
            row[j] = value
            total += value * x_next[0, j]
        z_next[0, i] = total
