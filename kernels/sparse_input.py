"""The first layer on a CSR ``X``: its product, its weight gradient, its fused SGD step.

A CSR row lists its stored entries ``(column j_k, value v_k)``.  Its first-layer
product is a sum of rows of ``W_1^T``, ``z = Σ_k v_k W_1^T[j_k, :]``, and its
share of the weight gradient adds ``v_k δ`` into the same rows, so both only
touch the columns of ``W_1`` (rows of ``W_1^T``) that the batch uses.  Both are
loops over contiguous rows of ``W_1^T`` of length ``d_1``, which LLVM
vectorises; over the rows of ``W_1`` as the parameters store them they would be
strided reads, one cache line per multiply-add.  So the compiled code reads the
first layer transposed:

- a training epoch (:func:`sparse_train_epoch`) transposes ``W_1`` (and its
  optimizer state) in place at its start, with the gradient buffer as the
  scratch, and back at its end: ``2 d_0 d_1`` moves an epoch, where the
  dense product does ``2 n d_0 d_1`` multiply-adds;
- a forward pass alone (:func:`sparse_forward`) takes a transposed copy the
  caller made, a backward pass (:func:`sparse_backward`) makes the first
  weight gradient transposed in a scratch and transposes it into ``grad``.

Plain SGD updates only the rows of ``W_1^T`` the batch touches (exact: the
others' gradient is zero), after scaling all of it by ``keep = 1 - αλ`` when
there is weight decay.  Momentum, Adam and clipping compute the whole first
gradient (zero but for the touched rows, plus ``λW``) and step it densely, as
the dense path does: every weight moves at every step with momentum or Adam,
so a lazy update would have to replay the skipped steps of each row to be
exact.  The element-wise optimizer step does not care that the first layer's
weight, gradient and state blocks are transposed, as long as all are.

Duplicate column indices in a row add up (``v_1 w + v_2 w``, as scipy's
products sum them), stored zeros add nothing and the order of a row's entries
only changes the rounding.  A batch that repeats columns has its update
grouped by column first (:func:`first_layer_update`); the product (by the
batch's rows) and the grouped update (by the columns of ``X``) run on the
threads when big enough (:func:`parallel_first_layer`), with sums that do not
depend on the thread count.  The dense layers above the first take their
layer steps through the address table (:mod:`fastnn.kernels.layer_steps`),
threaded as in a dense fit; per-sample SGD has a loop of its own
(:func:`sparse_per_sample_epoch`).
"""

from functools import cache

import numpy as np
from numba import njit, prange

from fastnn import codes
from fastnn.kernels.arrays import matrix, row_segment
from fastnn.kernels.config import COMPILED, INTERNAL, MIN_PARALLEL_MULTIPLY_ADDS
from fastnn.kernels.elementwise import (
    bias_activate,
    column_sums,
    gather_batch,
    record_batch,
)
from fastnn.kernels.layer_steps import FORWARD, GRADIENT, SGD, STEP, UPDATE, run_step
from fastnn.kernels.native_calls import OUTPUT_LEAF, call_output
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.per_sample import bias_step, row_forward, row_output, upper_backward_sgd
from fastnn.kernels.plans import as_plan, backward_rows
from fastnn.kernels.prefetch import prefetch_csr_row
from fastnn.kernels.update_rules import clip_gradient, count_step, step_scalars
from fastnn.kernels.vectors import (
    half_vector_zeros,
    vector_add_product,
    vector_add_to,
    vector_lanes,
    vector_store,
    vector_zeros,
)
from fastnn.kernels.views import bias_view, weight_view, workspace_block

#: how a training epoch steps the layers (``mode`` of :func:`sparse_train_epoch`)
PLAIN_SGD = 0  #: the fused step: ``W ← keep · W - α δᵀA``, no gradient buffer
STEPPED = 1  #: momentum, Adam, AdamW: each layer's gradient stepped as it is made
CLIPPED = 2  #: the whole gradient, clipped, then every layer stepped

#: how many rows ahead of the one it works on the product prefetches a row of ``X``
#: (reading 50,000 shuffled MNIST rows: 32.6 ms without, 9.7 with 1 ahead, 9.0 with
#: 2, 8.1 with 8; AMD Zen 5)
PREFETCH_AHEAD = 2


@njit(inline="always")
def _row(order, start, i):
    # the batch's i-th row of X: X's own rows when there is no row order
    return start + i if order.shape[0] == 0 else order[start + i]


@njit(inline="always")
def add_row(target, a, row):
    """``target += a · row`` (1-D, the same length)."""
    for j in range(target.shape[0]):
        target[j] += a * row[j]


@njit(inline="always")
def _sum_rows(values, rows, k0, k1, M, d1, c, lanes, half):
    """``Σ_k values[k] M[rows[k], c:c + 4 lanes]`` over ``k0:k1``, as four vectors
    (:mod:`fastnn.kernels.vectors`): the running sums stay in registers.  ``half``
    is None, or a half vector of zeros for the columns after the four in the same
    pass; returns the four sums and ``half``'s."""
    a0 = vector_zeros(M)
    a1 = vector_zeros(M)
    a2 = vector_zeros(M)
    a3 = vector_zeros(M)
    h = half
    for k in range(np.uint64(k0), np.uint64(k1)):
        v = values[k]
        at = rows[k] * d1 + c
        a0 = vector_add_product(a0, v, M, at)
        a1 = vector_add_product(a1, v, M, at + lanes)
        a2 = vector_add_product(a2, v, M, at + 2 * lanes)
        a3 = vector_add_product(a3, v, M, at + 3 * lanes)
        if half is not None:  # a branch Numba drops when half is None
            h = vector_add_product(h, v, M, at + 4 * lanes)
    return a0, a1, a2, a3, h


@njit(inline="always")
def _sum_rows_one(values, rows, k0, k1, M, d1, c, a):
    # as _sum_rows, into one vector a (zeros: a whole vector, or a half for a row's
    # last columns)
    for k in range(np.uint64(k0), np.uint64(k1)):
        a = vector_add_product(a, values[k], M, rows[k] * d1 + c)
    return a


@njit(inline="always")
def _sum_rows_tail(values, rows, k0, k1, M, out, c):
    # out[q] += Σ_k values[k] M[rows[k], c + q]: the last, partial vector's columns
    for k in range(np.uint64(k0), np.uint64(k1)):
        add_row(out, values[k], row_segment(M, rows[k], c, c + out.shape[0]))


@njit(inline="always")
def _write(out, at, a, store):
    # out[at:] ← a (store) or += a
    if store:
        vector_store(out, at, a)
    else:
        vector_add_to(out, at, a)


@njit(inline="always")
def pass_width(c, d1, lanes):
    """The columns of :func:`add_columns`' strip at column ``c`` of ``d_1``: four vectors,
    and the half vector after them when it is the last strip (no whole vector after it)
    and a half fits (d_1 = 200 in float32: 64, 64, 72), since a pass of the half alone
    waits on its one running sum at every entry; where four vectors no longer fit, the
    rest of the row (added column by column, :func:`sum_of_rows`)."""
    if c + 4 * lanes > d1:
        return d1 - c
    if c + 4 * lanes + lanes // 2 <= d1 < c + 5 * lanes:
        return 4 * lanes + lanes // 2
    return 4 * lanes


# compiled on its own (not inlined): it has two callers, and each call site of an
# inlined function is compiled again (3 s more of a cold sparse fit)
@njit(**INTERNAL)
def sum_of_rows(values, rows, k0, k1, M, out, store, c):
    """``out[c:] ← Σ_k values[k] M[rows[k], c:]`` (``store``) or ``out[c:] += ...`` over
    ``k0:k1`` (``out`` a row of a C-contiguous matrix, ``M`` C-contiguous, both of
    width ``d_1``): a CSR row's product (``M`` = ``W_1^T``, ``c`` 0) and a column's
    share of the weight gradient (``M`` = ``δ_1``) after the strips of
    :func:`add_columns`.

    Block by block of four vectors along the row, every entry of the block
    added into sums held in registers, each written out once (entry by entry
    over the whole row, the sums were loaded and stored for every four entries:
    the product of 50,000 MNIST rows through d_1 = 208 took 49-65 ms on 2
    threads, 36 ms this way with ``W_1^T`` aligned, a standalone script on
    Sapphire Rapids; a whole CSR epoch of 784-200-10 at batch 100, 0.158-0.167
    against 0.171-0.178 s, 784-208-10 0.137-0.165 against 0.181-0.201).  The
    entries are summed in their order, one fused multiply-add each, whatever the
    split among threads.
    """
    d1 = M.shape[1]
    lanes = vector_lanes(M)
    while c + 4 * lanes <= d1:
        a0, a1, a2, a3, _ = _sum_rows(values, rows, k0, k1, M, d1, c, lanes, None)
        _write(out, c, a0, store)
        _write(out, c + lanes, a1, store)
        _write(out, c + 2 * lanes, a2, store)
        _write(out, c + 3 * lanes, a3, store)
        c += 4 * lanes
    while c + lanes <= d1:
        _write(out, c, _sum_rows_one(values, rows, k0, k1, M, d1, c, vector_zeros(M)), store)
        c += lanes
    if c + lanes // 2 <= d1:
        _write(out, c, _sum_rows_one(values, rows, k0, k1, M, d1, c, half_vector_zeros(M)),
               store)
        c += lanes // 2
    if c < d1:
        tail = out[c:]
        if store:
            for q in range(tail.shape[0]):
                tail[q] = 0
        _sum_rows_tail(values, rows, k0, k1, M, tail, c)


@njit(**INTERNAL)
def csr_times(data, indices, indptr, order, start, i0, i1, WT, Z):
    """``Z[i] ← Σ_k data[k] WT[indices[k]]`` over the entries of the batch's rows ``i0:i1``.

    Parameters
    ----------
    data : ndarray, shape (nnz,)
    indices, indptr : ndarray of int32 or int64
        The CSR arrays of ``X`` (offsets into ``data`` as they are: a slice of
        ``indptr`` selects rows without copying).
    order : ndarray of int64
        The rows of the batch are ``order[start:start + n]``; ``X``'s rows
        ``start:start + n`` when ``order`` is empty.
    start, i0, i1 : int
    WT : ndarray, shape (d_0, d_1)
        ``W_1^T``.
    Z : ndarray, shape (n, d_1)
        Its rows ``i0:i1`` are written.

    Each row by :func:`sum_of_rows`.  The row after next is prefetched
    (:mod:`fastnn.kernels.prefetch`): a shuffled batch's rows are scattered
    over ``X``.
    """
    for i in range(i0, i1):
        if i + PREFETCH_AHEAD < i1:
            prefetch_csr_row(data, indices, indptr, _row(order, start, i + PREFETCH_AHEAD))
        r = _row(order, start, i)
        sum_of_rows(data, indices, indptr[r], indptr[r + 1], WT, Z[i], True, 0)


@njit(**INTERNAL)
def csr_scatter(alpha, data, indices, indptr, order, start, n, D, GT):
    """``GT[indices[k]] += alpha · data[k] · D[i]`` over the entries of the batch's row ``i``:
    ``GT += alpha (δᵀ X_batch)ᵀ``, only in the rows of ``GT`` the batch uses.

    ``D`` is ``δ_1`` of the batch, shape (n, d_1); ``GT`` is (d_0, d_1); the
    other arguments are those of :func:`csr_times`.  Entry by entry, for a
    batch whose entries seldom share a column (see :func:`first_layer_update`).
    """
    for i in range(n):
        r = _row(order, start, i)
        delta = D[i]
        for k in range(np.uint64(indptr[r]), np.uint64(indptr[r + 1])):
            add_row(GT[np.uint64(indices[k])], alpha * data[k], delta)


@njit(inline="always")
def sort_by_column(alpha, data, indices, indptr, order, start, n, ends, entry_rows,
                   entry_values):
    """The entries of the batch's ``n`` rows sorted by column (a counting sort): batch row
    ``i`` to ``entry_rows`` and ``alpha · data[k]`` to ``entry_values``, column by
    column, in the batch's order within each column; after it, ``ends[j]`` (shape
    (d_0,)) is where column ``j``'s entries end.

    On one thread: shared between two, both threads wrote the cache lines of
    each column's span, and the sort took 67-69 ms of an MNIST epoch (50,000
    rows, batches of 100) against 40-51 ms on one (2-core AMD Zen 3, a
    standalone copy, medians of 9 alternating rounds).
    """
    for j in range(ends.shape[0]):
        ends[j] = 0
    for i in range(n):
        r = _row(order, start, i)
        for k in range(np.uint64(indptr[r]), np.uint64(indptr[r + 1])):
            ends[np.uint64(indices[k])] += 1
    position = 0
    for j in range(ends.shape[0]):
        c = ends[j]
        ends[j] = position
        position += c
    for i in range(n):
        r = _row(order, start, i)
        for k in range(np.uint64(indptr[r]), np.uint64(indptr[r + 1])):
            j = np.uint64(indices[k])
            p = ends[j]
            entry_rows[np.uint64(p)] = i
            entry_values[np.uint64(p)] = alpha * data[k]
            ends[j] = p + 1


# compiled on its own: inlined into the parallel loop, its passes took a cold sparse
# fit from 9.9 to 12.6 s (2-core Zen 4)
@njit(**INTERNAL)
def add_columns(D, GT, j0, j1, ends, entry_rows, entry_values):
    """``GT[j] += Σ entry_values[p] D[entry_rows[p]]`` over each column ``j`` of ``j0:j1``'s
    sorted entries: those from ``ends[j - 1]`` (0 for the first column) to ``ends[j]``
    (:func:`sort_by_column`).

    Strip by strip of ``D``'s columns: each pass of four vectors
    (:func:`pass_width`) goes over every column before the next, so that the
    strip of ``δ_1`` it reads (100 rows of 64 float32: 25.6 KB) stays in L1
    (column by column, each column's passes read 800-byte rows of ``δ_1`` from
    L2: the sort and add of 50,000 MNIST rows in batches of 100 took 69-75 ms
    against 64-68 this way, 2 threads, 2-core AMD Zen 4, a standalone copy; a
    CSR epoch in ``fit`` 0.87-0.95 of its time, docs/design.md).
    The columns after the last strip as one more strip, each column's through
    :func:`sum_of_rows`.
    Each row of ``GT`` is added to once per strip, its sum made in registers
    first; each column's entries are added in the batch's order, so the sums do
    not depend on how the rows and columns are shared among threads.
    """
    d1 = D.shape[1]
    lanes = vector_lanes(D)
    first = ends[j0 - 1] if j0 > 0 else 0
    c = np.int64(0)  # not a literal 0: sum_of_rows would be compiled for that type too
    while c < d1:
        width = pass_width(c, d1, lanes)
        p = first
        for j in range(j0, j1):
            end = ends[j]
            if p < end:
                if width < 4 * lanes:  # the columns after the last strip
                    sum_of_rows(entry_values, entry_rows, p, end, D, GT[j], False, c)
                    p = end
                    continue
                at = j * d1 + c
                if width > 4 * lanes:
                    a0, a1, a2, a3, h = _sum_rows(entry_values, entry_rows, p, end, D, d1, c,
                                                  lanes, half_vector_zeros(D))
                    vector_add_to(GT, at + 4 * lanes, h)
                else:
                    a0, a1, a2, a3, _ = _sum_rows(entry_values, entry_rows, p, end, D, d1, c,
                                                  lanes, None)
                vector_add_to(GT, at, a0)
                vector_add_to(GT, at + lanes, a1)
                vector_add_to(GT, at + 2 * lanes, a2)
                vector_add_to(GT, at + 3 * lanes, a3)
            p = end
        c += width


#: what :func:`parallel_first_layer` runs (an int64 argument, not a literal: one
#: specialisation for all)
PRODUCT = 0
ADD = 1


@njit(**INTERNAL, parallel=True)
def parallel_first_layer(kind, data, indices, indptr, order, start, n, M, WT, ends,
                         entry_rows, entry_values, n_blocks):
    """The first layer's product (``kind`` PRODUCT: :func:`csr_times` into ``M``, ``Z_1``,
    the batch's rows split) or its grouped update (ADD: :func:`add_columns` of the
    sorted entries, :func:`sort_by_column`, and ``M``, ``δ_1``, into ``WT``, the
    columns of ``X`` (rows of ``WT``) split) on ``n_blocks`` threads.  No result
    depends on the split.

    One parallel function, one loop, for both: each ``parallel=True`` function,
    and each parallel loop in one, compiles for seconds (the sparse SGD
    kernels: 1.37 times the compile time with a loop per phase, 1.03 with one
    loop).
    """
    d0 = WT.shape[0]
    for t in prange(n_blocks):
        if kind == PRODUCT:
            csr_times(data, indices, indptr, order, start, t * n // n_blocks,
                      (t + 1) * n // n_blocks, WT, M)
        else:
            add_columns(M, WT, t * d0 // n_blocks, (t + 1) * d0 // n_blocks, ends, entry_rows,
                        entry_values)


@njit(inline="always")
def _entries(indptr, order, start, n):
    # the stored entries of the batch's rows
    total = 0
    for i in range(n):
        r = _row(order, start, i)
        total += indptr[r + 1] - indptr[r]
    return total


# compiled on their own, not inlined (as are csr_times and csr_scatter): each has
# more than one call site, and each call site of an inlined function is compiled
# again
@njit(**INTERNAL)
def first_layer_product(data, indices, indptr, order, start, n, WT, Z, scratch, n_blocks):
    """``Z ← X_batch WT`` (n, d_1), on the threads when it is big enough to pay for them.

    ``scratch`` is ``(ends, entry_rows, entry_values)`` (see
    :func:`first_layer_update`).
    """
    work = _entries(indptr, order, start, n) * WT.shape[1]
    if n_blocks > 1 and n >= n_blocks and work >= MIN_PARALLEL_MULTIPLY_ADDS:
        ends, entry_rows, entry_values = scratch
        parallel_first_layer(np.int64(PRODUCT), data, indices, indptr, order, start, n, Z, WT,
                             ends, entry_rows, entry_values, n_blocks)
    else:
        # int64 bounds, as the parallel loop's: with a literal 0 Numba compiled csr_times
        # a second time (0.3 s)
        csr_times(data, indices, indptr, order, start, np.int64(0), n, WT, Z)


@njit(**INTERNAL)
def first_layer_update(alpha, data, indices, indptr, order, start, n, D, GT, scratch,
                       n_blocks):
    """``GT += alpha (δᵀ X_batch)ᵀ`` in the rows of ``GT`` the batch uses.

    ``scratch`` is ``(ends, entry_rows, entry_values)``: int64, shape (d_0,), int32
    and the dtype, shape (capacity,), ``capacity`` at least the batch's entries.
    A batch with at least as many entries as ``X`` has columns (MNIST: 15,000
    in batches of 100, 784 columns) repeats columns: its entries are sorted by
    column on this thread (:func:`sort_by_column`), then each touched row of
    ``GT`` gets its column's sum (ADD of :func:`parallel_first_layer`, threaded
    when big enough).  Otherwise (text: 6,400 in batches of 64, 50,000 columns)
    entry by entry on this thread.
    """
    ends, entry_rows, entry_values = scratch
    entries = _entries(indptr, order, start, n)
    d0, d1 = GT.shape
    if entries < d0:
        csr_scatter(alpha, data, indices, indptr, order, start, n, D, GT)
        return
    sort_by_column(alpha, data, indices, indptr, order, start, n, ends, entry_rows,
                   entry_values)
    # on one thread too through the parallel loop: ADD is compiled once, there
    parts = n_blocks if entries * d1 >= MIN_PARALLEL_MULTIPLY_ADDS else 1
    parallel_first_layer(np.int64(ADD), data, indices, indptr, order, start, n, D, GT, ends,
                         entry_rows, entry_values, parts)


@njit(inline="always")
def first_layer_code(hidden, table):
    """The first layer's activation code: its hidden activation, or the identity when it
    is the output layer (its block gets the logits)."""
    return hidden[0] if table.shape[0] > 1 else codes.IDENTITY


@njit(inline="always")
def scale_span(flat, start, stop, factor):
    """``flat[start:stop] *= factor``, unless ``factor`` is 1 (plain SGD's ``1 - αλ``
    without weight decay)."""
    if factor != 1:
        for e in range(start, stop):
            flat[e] *= factor


@njit(inline="always")
def transpose(src, dst):
    """``dst ← srcᵀ`` for ``src`` (m, p) and ``dst`` (p, m), in tiles of 32 x 32
    (a column walk of ``src`` a cache line at a time)."""
    m, p = src.shape
    for i0 in range(0, m, 32):
        i1 = min(i0 + 32, m)
        for j0 in range(0, p, 32):
            j1 = min(j0 + 32, p)
            for j in range(j0, j1):
                out = dst[j]
                for i in range(i0, i1):
                    out[i] = src[i, j]


@njit(**INTERNAL)
def _transpose_block(flat, scratch, start, rows, cols):
    # the (rows, cols) matrix at flat[start:] becomes its (cols, rows) transpose, in
    # place, through the same span of scratch
    size = rows * cols
    for e in range(size):
        scratch[start + e] = flat[start + e]
    transpose(matrix(scratch, start, rows, cols), matrix(flat, start, cols, rows))


@cache
def upper_plans(n_layers, mode):
    """The layer steps of a sparse training batch that are not the first layer's own,
    as three plans of ``(kind, layer)`` rows (:mod:`fastnn.kernels.plans`): the
    forward pass above the first layer; the backward pass down to the first
    layer's delta, stepping each layer above it (SGD fused, STEP, or GRADIENT
    when clipped); and the UPDATE steps after the first layer's gradient (its
    own when STEPPED, every layer's when CLIPPED, none for plain SGD)."""
    kind = SGD if mode == PLAIN_SGD else (STEP if mode == STEPPED else GRADIENT)
    up = [(FORWARD, l) for l in range(1, n_layers)]
    down = backward_rows(n_layers, kind)[:-1]  # the first layer's own step is not a plan's
    updates = {PLAIN_SGD: [], STEPPED: [(UPDATE, 0)],
               CLIPPED: [(UPDATE, l) for l in range(n_layers)]}[mode]
    return tuple(as_plan(rows) for rows in (up, down, updates))


@njit(**INTERNAL)
def upper_steps(leaves, plan, n, buffers, s, n_blocks):
    """Run the ``(kind, layer)`` rows of ``plan`` on a batch of ``n`` rows: the one call
    site of the layer steps (each inlined call site is compiled again)."""
    for i in range(plan.shape[0]):
        run_step(leaves, plan[i, 0], plan[i, 1], n, buffers, s, n_blocks)


@njit(**COMPILED)
def sparse_train_epoch(leaves, params, grad, state, table, hidden, output, data, indices,
                       indptr, Y, weights, order, batch_size, settings, step, mode, plans,
                       ybuf, wbuf, acts, deltas, batch_stats, n_blocks, stand_in, scratch):
    """One epoch of mini-batch training over the rows ``X[order]`` of a CSR ``X``.

    As :func:`fastnn.kernels.plans.run_plan` training (the arguments of
    :func:`fastnn.reference.train_epoch`), with ``X`` as its CSR arrays
    ``data``, ``indices``, ``indptr`` (see :func:`csr_times`) and ``mode``
    (:data:`PLAIN_SGD`, :data:`STEPPED` or :data:`CLIPPED`), whose layer steps
    above the first layer are ``plans`` (:func:`upper_plans`).  ``stand_in`` is
    any C-contiguous matrix of the dtype: the layer steps' buffers hold it
    where a dense batch would be (the steps of layers above the first never
    read it); ``scratch`` that of :func:`first_layer_update`, for a batch.
    ``grad`` is the scratch of the in-place transposes; nothing is allocated.
    """
    L = table.shape[0]
    d0 = table[0, 0]
    d1 = table[0, 1]
    first = table[0, 0] * 0  # layer 0, typed as the table's integers
    w_start = table[0, 2]
    stateful = mode != PLAIN_SGD
    # W_1 (and its optimizer state) as W_1^T for the epoch
    _transpose_block(params, grad, w_start, d1, d0)
    if stateful:
        for row in range(state.shape[0]):
            _transpose_block(state[row], grad, w_start, d1, d0)
    WT = matrix(params, w_start, d0, d1)
    GT = matrix(grad, w_start, d0, d1)
    code = first_layer_code(hidden, table)
    m = order.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
    for b in range(n_batches):
        start = b * batch_size
        n = min(batch_size, m - start)
        yb = ybuf[:n]
        wb = wbuf[:n]
        total_weight = gather_batch(Y, weights, order, start, yb, wb, batch_stats, b)
        if total_weight == 0:
            continue  # all its sample weights are zero: no step
        buffers = (params, grad, state, table, hidden, stand_in, acts, deltas, stand_in,
                   order)
        s = step_scalars(params, settings, step[0])
        Z0 = workspace_block(acts, table, first, n)
        first_layer_product(data, indices, indptr, order, start, n, WT, Z0, scratch, n_blocks)
        bias_activate(Z0, bias_view(params, table, first), code, 0, n, 0, d1)
        upper_steps(leaves, plans[0], n, buffers, s, n_blocks)
        loss, errors = call_output(leaves[OUTPUT_LEAF], (
            output, workspace_block(acts, table, L - 1, n), yb, wb, 1.0 / total_weight,
            workspace_block(deltas, table, L - 1, n), OUTPUT_DELTA))
        if mode == STEPPED:
            s = step_scalars(params, settings, count_step(settings, step))
        upper_steps(leaves, plans[1], n, buffers, s, n_blocks)
        D0 = workspace_block(deltas, table, first, n)
        bias = bias_view(params, table, first)
        sums = bias_view(grad, table, first)
        column_sums(D0, sums)
        if mode == PLAIN_SGD:
            scale_span(params, w_start, w_start + d0 * d1, s.keep)
            first_layer_update(-s.lr, data, indices, indptr, order, start, n, D0, WT, scratch,
                               n_blocks)
            for j in range(d1):
                bias[j] -= s.lr * sums[j]
        else:
            # the whole first gradient (λW, then δᵀX on top), stepped densely
            for e in range(w_start, w_start + d0 * d1):
                grad[e] = s.decay * params[e]
            first_layer_update(s.one, data, indices, indptr, order, start, n, D0, GT, scratch,
                               n_blocks)
            if mode == CLIPPED:
                clip_gradient(grad, settings.clip_norm)
                s = step_scalars(params, settings, count_step(settings, step))
            upper_steps(leaves, plans[2], n, buffers, s, n_blocks)
        record_batch(batch_stats, b, loss, errors, total_weight)
    # and back to the parameters' layout
    _transpose_block(params, grad, w_start, d0, d1)
    if stateful:
        for row in range(state.shape[0]):
            _transpose_block(state[row], grad, w_start, d0, d1)


@njit(**COMPILED)
def sparse_per_sample_epoch(leaves, params, grad, state, table, hidden, output, data, indices,
                            indptr, Y, weights, order, batch_size, settings, step, mode, plans,
                            ybuf, wbuf, acts, deltas, batch_stats, n_blocks, stand_in, scratch):
    """Per-sample plain SGD over the rows ``X[order]`` of a CSR ``X``: the arguments of
    :func:`sparse_train_epoch` with ``batch_size`` 1 and ``mode`` PLAIN_SGD (``leaves``,
    ``state``, ``step``, ``plans``, ``n_blocks``, ``stand_in`` and ``scratch`` are not
    read).

    One row is never worth waking a thread for, and it is too little work for
    a call per layer step (3-4 µs a row through their addresses): the layers
    above the first take the dense per-sample epoch's loops
    (:func:`fastnn.kernels.per_sample.row_forward` and
    :func:`~fastnn.kernels.per_sample.upper_backward_sgd`), the first layer
    :func:`csr_times` and :func:`csr_scatter`, and the output pass is linked
    in.  A fit compiles this loop alone: no layer step, no parallel code.
    """
    d0 = table[0, 0]
    d1 = table[0, 1]
    first = table[0, 0] * 0
    one = first + 1
    w_start = table[0, 2]
    _transpose_block(params, grad, w_start, d1, d0)
    WT = matrix(params, w_start, d0, d1)
    Z0 = workspace_block(acts, table, first, one)
    D0 = workspace_block(deltas, table, first, one)
    bias = bias_view(params, table, first)
    s = step_scalars(params, settings, step[0])
    for r in range(order.shape[0]):
        if gather_batch(Y, weights, order, r, ybuf, wbuf, batch_stats, r) == 0:
            continue  # a zero-weight row takes no step
        csr_times(data, indices, indptr, order, r, 0, 1, WT, Z0)
        row_forward(params, table, hidden, acts, s, stand_in, True)  # stand_in: not read
        row_output(output, acts, deltas, table, ybuf, wbuf, batch_stats, r)
        upper_backward_sgd(params, table, hidden, acts, deltas, s)
        scale_span(params, w_start, w_start + d0 * d1, s.keep)
        csr_scatter(-s.lr, data, indices, indptr, order, r, one, D0, WT)
        bias_step(bias, D0, s.lr)
    _transpose_block(params, grad, w_start, d0, d1)


@njit(**COMPILED)
def sparse_forward(leaves, params, table, hidden, data, indices, indptr, WT, acts, settings,
                   n_blocks, stand_in, no_order, scratch, plan):
    """:func:`fastnn.reference.forward` of the rows of a CSR ``X``.

    ``X``'s arrays are as for :func:`csr_times` (its rows are ``n =
    indptr.shape[0] - 1``); ``WT`` (d_0, d_1) is ``W_1`` transposed, by the
    caller; ``settings`` any :class:`fastnn.optim.StepSettings` of the dtype;
    ``stand_in`` and ``scratch`` as for :func:`sparse_train_epoch` (for all
    the rows); ``no_order`` an empty int64 vector; ``plan`` the FORWARD steps above
    the first layer (the first of :func:`upper_plans`).
    """
    n = indptr.shape[0] - 1
    first = table[0, 0] * 0  # layer 0, and step 0: a pass counts no optimizer step
    s = step_scalars(params, settings, first)
    Z0 = workspace_block(acts, table, first, n)
    first_layer_product(data, indices, indptr, no_order, first, n, WT, Z0, scratch, n_blocks)
    bias_activate(Z0, bias_view(params, table, first), first_layer_code(hidden, table), 0, n,
                  0, table[0, 1])
    buffers = (params, params, stand_in, table, hidden, stand_in, acts, acts, stand_in,
               no_order)
    upper_steps(leaves, plan, n, buffers, s, n_blocks)


@njit(**COMPILED)
def sparse_backward(leaves, params, grad, table, hidden, data, indices, indptr, acts, deltas,
                    settings, GT, n_blocks, stand_in, no_order, scratch, plan):
    """:func:`fastnn.reference.backward` of the rows of a CSR ``X``.

    ``settings.weight_decay`` is ``λ``; ``GT`` (d_0, d_1) is the scratch the
    first weight gradient is made in, transposed; the others as for
    :func:`sparse_forward`.
    """
    n = indptr.shape[0] - 1
    first = table[0, 0] * 0  # layer 0, and step 0: a pass counts no optimizer step
    s = step_scalars(params, settings, first)
    buffers = (params, grad, stand_in, table, hidden, stand_in, acts, deltas, stand_in,
               no_order)
    upper_steps(leaves, plan, n, buffers, s, n_blocks)
    D0 = workspace_block(deltas, table, first, n)
    for i in range(GT.shape[0]):
        row = GT[i]
        for j in range(row.shape[0]):
            row[j] = 0
    first_layer_update(s.one, data, indices, indptr, no_order, first, n, D0, GT, scratch,
                       n_blocks)
    G0 = weight_view(grad, table, first)
    W0 = weight_view(params, table, first)
    transpose(GT, G0)
    if s.decay != 0:
        for u in range(G0.shape[0]):
            g = G0[u]
            w = W0[u]
            for j in range(g.shape[0]):
                g[j] += s.decay * w[j]
    column_sums(D0, bias_view(grad, table, first))


#: where each entry point takes ``X``'s ``data``, ``indices`` and ``indptr``
CSR_ARGUMENTS = {sparse_train_epoch: (7, 8, 9), sparse_per_sample_epoch: (7, 8, 9),
                 sparse_forward: (4, 5, 6), sparse_backward: (5, 6, 7)}
#: the entry points that link in the first layer's functions, and where the rest of
#: those functions' argument types are in the entry's: the row order, the scratch
_LINKED = {sparse_train_epoch: (12, 25, (first_layer_product, first_layer_update)),
           sparse_forward: (12, 13, (first_layer_product,)),
           sparse_backward: (14, 15, (first_layer_update,))}
#: the entry points compiled after the functions they link (kernels.compiler.prepare's after)
LINKING = frozenset(_LINKED)


def linked_units(entry, signature):
    """``[(dispatcher, signature)]`` of the first layer's functions that ``entry``, called
    with the Numba types ``signature``, links in (none for other entry points).

    Compiled as units of their own, the two compile processes can share them
    (:mod:`fastnn.kernels.compiler`): the entry point alone took 7.8 s of the
    17.4 it took with them (2-core Zen 3, float32).
    """
    from numba import types

    if entry not in _LINKED:
        return []
    order, scratch, functions = _LINKED[entry]
    arrays = tuple(signature[i] for i in CSR_ARGUMENTS[entry]) + (signature[order],)
    dtype = signature[CSR_ARGUMENTS[entry][0]].dtype  # the stored values
    matrix_type = types.Array(dtype, 2, "C")
    i = types.int64
    tail = (i, i, matrix_type, matrix_type, signature[scratch], i)
    units = {first_layer_product: arrays + tail, first_layer_update: (dtype,) + arrays + tail}
    return [(function, units[function]) for function in functions]
