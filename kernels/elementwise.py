"""Fused element-wise loops: bias + activation, the activation derivative,
column sums, scaled copies and row gathers.

Each loop is written once, as an ``inline="always"`` body, and compiled twice
(DESIGN rule 3: each variant its own ``def``, so cached code cannot mix them
up): serially and with ``parallel=True``, where its ``prange`` spreads rows over
Numba's threads.  The public function of each pair picks the variant by the
size of the work.  Rows are independent and column sums are serial, so results
do not depend on the thread count.
"""

import numpy as np
from numba import njit, prange

from fastnn import codes
from fastnn.kernels.config import COMPILED, MIN_PARALLEL_ELEMENTS
from fastnn.kernels.scalars import cast_like


@njit(inline="always")
def sigmoid(z):
    """Logistic function without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@njit(inline="always")
def _threaded(n_blocks, n_elements):
    return n_blocks > 1 and n_elements >= MIN_PARALLEL_ELEMENTS


# ------------------------------------------------------------ bias + activation

@njit(inline="always")
def _add_bias_activate(Z, b, code):
    n, d = Z.shape
    for i in prange(n):
        row = Z[i]
        if code == codes.RELU:
            for j in range(d):
                v = row[j] + b[j]
                row[j] = v if v > 0 else 0
        elif code == codes.SIGMOID:
            for j in range(d):
                row[j] = sigmoid(row[j] + b[j])
        elif code == codes.TANH:
            for j in range(d):
                row[j] = np.tanh(row[j] + b[j])
        elif code == codes.LEAKY_RELU:
            for j in range(d):
                v = row[j] + b[j]
                row[j] = v if v > 0 else codes.LEAKY_SLOPE * v
        else:
            for j in range(d):
                row[j] += b[j]


@njit(**COMPILED)
def _add_bias_activate_serial(Z, b, code):
    _add_bias_activate(Z, b, code)


@njit(**COMPILED, parallel=True)
def _add_bias_activate_parallel(Z, b, code):
    _add_bias_activate(Z, b, code)


@njit(inline="always")
def add_bias_activate(Z, b, code, n_blocks):
    """``Z ← g(Z + b)`` for activation ``code``; ``Z`` (n, d), ``b`` (d,)."""
    if _threaded(n_blocks, Z.size):
        _add_bias_activate_parallel(Z, b, code)
    else:
        _add_bias_activate_serial(Z, b, code)


# ------------------------------------------------------------ derivative

@njit(inline="always")
def _multiply_derivative(D, A, code):
    n, d = D.shape
    one = cast_like(D, 1.0)  # a literal 1 would make float32 arithmetic float64
    for i in prange(n):
        drow = D[i]
        arow = A[i]
        # selects, not conditional stores: LLVM vectorises a select (the
        # branch form ran at a fifth of the speed)
        if code == codes.RELU:
            for j in range(d):
                drow[j] = drow[j] if arow[j] > 0 else 0
        elif code == codes.SIGMOID:
            for j in range(d):
                drow[j] *= arow[j] * (one - arow[j])
        elif code == codes.TANH:
            for j in range(d):
                drow[j] *= one - arow[j] * arow[j]
        elif code == codes.LEAKY_RELU:
            for j in range(d):
                drow[j] = drow[j] if arow[j] > 0 else drow[j] * codes.LEAKY_SLOPE


@njit(**COMPILED)
def _multiply_derivative_serial(D, A, code):
    _multiply_derivative(D, A, code)


@njit(**COMPILED, parallel=True)
def _multiply_derivative_parallel(D, A, code):
    _multiply_derivative(D, A, code)


@njit(inline="always")
def multiply_derivative(D, A, code, n_blocks):
    """``D ← D ⊙ g'(Z)``, the derivative taken from the stored ``A = g(Z)``; both (n, d)."""
    if code == codes.IDENTITY:
        return
    if _threaded(n_blocks, D.size):
        _multiply_derivative_parallel(D, A, code)
    else:
        _multiply_derivative_serial(D, A, code)


# ------------------------------------------------------------ column sums

@njit(**COMPILED)
def column_sums(D, out):
    """``out[j] ← Σ_i D[i, j]``, the rows added in order; ``D`` (n, d), ``out`` (d,).

    Serial at every size: split over two threads by blocks of columns it ran
    slower up to 100,000 entries (3.7 against 1.4 µs at 100 x 200 float32)
    and no faster at a million (71 against 78 µs): a memory-bound pass that
    does not pay for waking the threads.
    """
    d = out.shape[0]
    for j in range(d):
        out[j] = 0
    for i in range(D.shape[0]):
        row = D[i]
        for j in range(d):
            out[j] += row[j]


# ------------------------------------------------------------ scaled copy

@njit(inline="always")
def _scaled_copy(src, scale, dst):
    n, d = src.shape
    for i in prange(n):
        for j in range(d):
            dst[i, j] = scale * src[i, j]


@njit(**COMPILED)
def _scaled_copy_serial(src, scale, dst):
    _scaled_copy(src, scale, dst)


@njit(**COMPILED, parallel=True)
def _scaled_copy_parallel(src, scale, dst):
    _scaled_copy(src, scale, dst)


@njit(inline="always")
def scaled_copy(src, scale, dst, n_blocks):
    """``dst ← scale · src`` over same-shaped (n, d) arrays."""
    if _threaded(n_blocks, src.size):
        _scaled_copy_parallel(src, scale, dst)
    else:
        _scaled_copy_serial(src, scale, dst)


# ------------------------------------------------------------ gather

@njit(inline="always")
def _gather_rows(src, order, start, dst):
    n, d = dst.shape
    for i in prange(n):
        row = src[order[start + i]]
        out = dst[i]
        for j in range(d):
            out[j] = row[j]


@njit(**COMPILED)
def _gather_rows_serial(src, order, start, dst):
    _gather_rows(src, order, start, dst)


@njit(**COMPILED, parallel=True)
def _gather_rows_parallel(src, order, start, dst):
    _gather_rows(src, order, start, dst)


@njit(inline="always")
def gather_rows(src, order, start, dst, n_blocks):
    """``dst[i] ← src[order[start + i]]`` for every row ``i`` of ``dst``."""
    if _threaded(n_blocks, dst.size):
        _gather_rows_parallel(src, order, start, dst)
    else:
        _gather_rows_serial(src, order, start, dst)


@njit(inline="always")
def gather_values(src, order, start, dst):
    """``dst[i] ← src[order[start + i]]`` for a 1-D ``dst``; returns ``Σ dst`` (float64).

    Serial: one value per row is too little work to share.
    """
    total = 0.0
    for i in range(dst.shape[0]):
        dst[i] = src[order[start + i]]
        total += dst[i]
    return total
