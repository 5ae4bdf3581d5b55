"""Element-wise loops over a block of a matrix: bias + activation, the activation
derivative, a scaled copy; and the row gathers and column sums of a batch.

Each is a compiled function of its own, called by the layer steps (an inlined
body would be compiled again at every call site); LLVM inlines it there.  The block loops take
the whole matrix and the block's bounds, ``rows r0:r1`` and ``columns c0:c1``,
and run over each row's segment from 0 to its length
(:func:`fastnn.kernels.arrays.row_segment`): LLVM vectorises those loops, and
did not vectorise all of them over a 2-D slice or with the bounds in the loop.  They run
on whatever thread holds the block: :mod:`fastnn.kernels.matmul` calls them on
each thread's slab of a product right after that slab is computed, so the
element-wise work is shared among the threads without a parallel loop of its
own.
"""

import numpy as np
from numba import njit

from fastnn import codes
from fastnn.kernels.arrays import row_segment
from fastnn.kernels.scalars import cast_like


@njit(inline="always")
def sigmoid(z):
    """Logistic function without overflow for large ``|z|``."""
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@njit(inline="always")
def bias_activate(Z, b, code, r0, r1, c0, c1):
    """``Z ← g(Z + b)`` on the block, for activation ``code``; ``Z`` (n, d), ``b`` (d,).

    Leaky ReLU and the identity share a loop (``v`` when positive, else
    ``slope · v``; a slope of 1 gives ``v`` exactly): each loop is compile time.
    """
    # in the dtype, as the reference's NumPy arithmetic
    slope = cast_like(Z, codes.LEAKY_SLOPE if code == codes.LEAKY_RELU else 1.0)
    bias = b[c0:c1]
    for i in range(r0, r1):
        row = row_segment(Z, i, c0, c1)
        width = row.shape[0]
        if code == codes.RELU:
            for j in range(width):
                v = row[j] + bias[j]
                row[j] = v if v > 0 else 0
        elif code == codes.SIGMOID:
            for j in range(width):
                row[j] = sigmoid(row[j] + bias[j])
        elif code == codes.TANH:
            for j in range(width):
                row[j] = np.tanh(row[j] + bias[j])
        else:
            for j in range(width):
                v = row[j] + bias[j]
                row[j] = v if v > 0 else slope * v


@njit(inline="always")
def multiply_derivative(D, A, code, one, r0, r1, c0, c1):
    """``D ← D ⊙ g'(Z)`` on the block, the derivative taken from the stored
    ``A = g(Z)``; ``D`` and ``A`` (n, d); ``one`` is 1 in their dtype (a literal
    1 would make float32 arithmetic float64).

    Two loops serve the four activations: ReLU and leaky ReLU scale ``D`` by
    1 where ``A > 0``, else by their slope (0 or 0.01: ``D · 0``, as the
    reference's product with ``A > 0``); sigmoid's ``A(1 - A)`` and tanh's
    ``1 - A²`` are both ``p + A(q - A)``, with the same rounding.
    """
    if code == codes.IDENTITY:
        return
    zero = one - one
    if code == codes.RELU or code == codes.LEAKY_RELU:
        slope = cast_like(D, 0.0 if code == codes.RELU else codes.LEAKY_SLOPE)
        for i in range(r0, r1):
            drow = row_segment(D, i, c0, c1)
            arow = row_segment(A, i, c0, c1)
            # a select, not a conditional store: LLVM vectorises a select
            # (the branch form ran at a fifth of the speed)
            for j in range(drow.shape[0]):
                drow[j] = drow[j] if arow[j] > 0 else drow[j] * slope
    else:
        p = zero if code == codes.SIGMOID else one
        q = one if code == codes.SIGMOID else zero
        for i in range(r0, r1):
            drow = row_segment(D, i, c0, c1)
            arow = row_segment(A, i, c0, c1)
            for j in range(drow.shape[0]):
                drow[j] *= p + arow[j] * (q - arow[j])


@njit(inline="always")
def scaled_copy(src, scale, dst, r0, r1, c0, c1):
    """``dst ← scale · src`` on the block of two same-shaped (n, d) arrays."""
    for i in range(r0, r1):
        s = row_segment(src, i, c0, c1)
        d = row_segment(dst, i, c0, c1)
        for j in range(s.shape[0]):
            d[j] = scale * s[j]


@njit(inline="always")
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


@njit(inline="always")
def gather_rows(src, order, start, dst):
    """``dst[i] ← src[order[start + i]]`` for every row ``i`` of ``dst``.

    Serial: a batch's rows are copied at memory speed (100 rows of 784 float32
    in 32 µs on one thread, 24 µs on two: not worth a parallel loop's compile
    time, 1.4 % of a batch-100 step).
    """
    n, d = dst.shape
    for i in range(n):
        row = src[order[start + i]]
        out = dst[i]
        for j in range(d):
            out[j] = row[j]


@njit(inline="always")
def gather_values(src, order, start, dst):
    """``dst[i] ← src[order[start + i]]`` for a 1-D ``dst``; returns ``Σ dst`` (float64)."""
    total = 0.0
    for i in range(dst.shape[0]):
        dst[i] = src[order[start + i]]
        total += dst[i]
    return total


@njit(inline="always")
def gather_batch_weights(weights, order, start, wb, batch_stats, b):
    """Mini-batch ``b``'s row weights into ``wb`` (rows ``order[start:]``); returns
    ``Σ wb`` (float64).

    A batch whose weights are all zero has nothing to learn from: it takes no
    step, and its row of ``batch_stats`` records zeros.
    """
    total = gather_values(weights, order, start, wb)
    if total == 0:
        batch_stats[b, 0] = 0.0
        batch_stats[b, 1] = 0.0
        batch_stats[b, 2] = 0.0
    return total


@njit(inline="always")
def gather_batch(Y, weights, order, start, yb, wb, batch_stats, b):
    """:func:`gather_batch_weights`, and unless the weights are all zero the batch's
    targets into ``yb``; returns ``Σ wb`` (float64)."""
    total = gather_batch_weights(weights, order, start, wb, batch_stats, b)
    if total != 0:
        gather_rows(Y, order, start, yb)
    return total


@njit(inline="always")
def record_batch(batch_stats, b, loss, errors, total_weight):
    """Mini-batch ``b``'s row of ``batch_stats``: its mean loss and error (``Σ w_i L_i``
    and ``Σ w_i [row i wrong]`` over ``Σ w_i``) and its weight."""
    batch_stats[b, 0] = loss / total_weight
    batch_stats[b, 1] = errors / total_weight
    batch_stats[b, 2] = total_weight
