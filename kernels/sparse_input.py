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
- a forward or backward pass alone (:func:`sparse_forward`,
  :func:`sparse_backward`) takes a transposed copy the caller made.

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
only changes the rounding.  The sparse work runs on the calling thread; the
dense layers above it take their layer steps through the address table
(:mod:`fastnn.kernels.layer_steps`), threaded as in a dense fit.
"""

from numba import njit

from fastnn import codes
from fastnn.kernels.arrays import matrix
from fastnn.kernels.config import COMPILED
from fastnn.kernels.elementwise import bias_activate, column_sums, gather_rows, gather_values
from fastnn.kernels.layer_steps import DELTA, FORWARD, GRADIENT, SGD, STEP, UPDATE, run_step
from fastnn.kernels.native_calls import OUTPUT_LEAF, call_output
from fastnn.kernels.outputs import DELTA as OUTPUT_DELTA
from fastnn.kernels.update_rules import clip_gradient, count_step, step_scalars
from fastnn.kernels.views import bias_view, weight_view, workspace_block

#: how a training epoch steps the layers (``mode`` of :func:`sparse_train_epoch`)
PLAIN_SGD = 0  #: the fused step: ``W ← keep · W - α δᵀA``, no gradient buffer
STEPPED = 1  #: momentum, Adam, AdamW: each layer's gradient stepped as it is made
CLIPPED = 2  #: the whole gradient, clipped, then every layer stepped


@njit(inline="always")
def _row(order, start, i):
    # the batch's i-th row of X: X's own rows when there is no row order
    return start + i if order.shape[0] == 0 else order[start + i]


@njit(inline="always")
def csr_times(data, indices, indptr, order, start, n, WT, Z):
    """``Z[i] ← Σ_k data[k] WT[indices[k]]`` over the entries of the batch's row ``i``.

    Parameters
    ----------
    data : ndarray, shape (nnz,)
    indices, indptr : ndarray of int32 or int64
        The CSR arrays of ``X`` (offsets into ``data`` as they are: a slice of
        ``indptr`` selects rows without copying).
    order : ndarray of int64
        The rows of the batch are ``order[start:start + n]``; ``X``'s rows
        ``start:start + n`` when ``order`` is empty.
    start, n : int
    WT : ndarray, shape (d_0, d_1)
        ``W_1^T``.
    Z : ndarray, shape (n, d_1)
        Written.
    """
    d = WT.shape[1]
    for i in range(n):
        r = _row(order, start, i)
        z = Z[i]
        for j in range(d):
            z[j] = 0
        for k in range(indptr[r], indptr[r + 1]):
            v = data[k]
            w = WT[indices[k]]
            for j in range(d):
                z[j] += v * w[j]


@njit(inline="always")
def csr_scatter(alpha, data, indices, indptr, order, start, n, D, GT):
    """``GT[indices[k]] += alpha · data[k] · D[i]`` over the entries of the batch's row ``i``:
    ``GT += alpha (δᵀ X_batch)ᵀ``, only in the rows of ``GT`` the batch uses.

    ``D`` is ``δ_1`` of the batch, shape (n, d_1); ``GT`` is (d_0, d_1); the
    other arguments are those of :func:`csr_times`.
    """
    d = GT.shape[1]
    for i in range(n):
        r = _row(order, start, i)
        delta = D[i]
        for k in range(indptr[r], indptr[r + 1]):
            a = alpha * data[k]
            g = GT[indices[k]]
            for j in range(d):
                g[j] += a * delta[j]


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


@njit(inline="always")
def _transpose_block(flat, scratch, start, rows, cols):
    # the (rows, cols) matrix at flat[start:] becomes its (cols, rows) transpose, in
    # place, through the same span of scratch
    size = rows * cols
    for e in range(size):
        scratch[start + e] = flat[start + e]
    transpose(matrix(scratch, start, rows, cols), matrix(flat, start, cols, rows))


@njit(inline="always")
def _first_layer_code(hidden, table):
    return hidden[0] if table.shape[0] > 1 else codes.IDENTITY


@njit(**COMPILED)
def sparse_train_epoch(leaves, params, grad, state, table, hidden, output, data, indices,
                       indptr, Y, weights, order, batch_size, settings, step, mode, ybuf,
                       wbuf, acts, deltas, batch_stats, n_blocks, stand_in):
    """One epoch of mini-batch training over the rows ``X[order]`` of a CSR ``X``.

    As :func:`fastnn.kernels.plans.run_plan` training (the arguments of
    :func:`fastnn.reference.train_epoch`), with ``X`` as its CSR arrays
    ``data``, ``indices``, ``indptr`` (see :func:`csr_times`) and ``mode``
    (:data:`PLAIN_SGD`, :data:`STEPPED` or :data:`CLIPPED`).  ``stand_in`` is
    any C-contiguous matrix of the dtype: the layer steps' buffers hold it
    where a dense batch would be (the steps of layers above the first never
    read it).  ``grad`` is the scratch of the in-place transposes; nothing is
    allocated.
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
    code = _first_layer_code(hidden, table)
    m = order.shape[0]
    n_batches = (m + batch_size - 1) // batch_size
    for b in range(n_batches):
        start = b * batch_size
        n = min(batch_size, m - start)
        yb = ybuf[:n]
        wb = wbuf[:n]
        total_weight = gather_values(weights, order, start, wb)
        if total_weight == 0:
            # nothing to learn from (all its sample weights are zero): no step
            batch_stats[b, 0] = 0.0
            batch_stats[b, 1] = 0.0
            batch_stats[b, 2] = 0.0
            continue
        gather_rows(Y, order, start, yb)
        buffers = (params, grad, state, table, hidden, stand_in, acts, deltas, stand_in,
                   order)
        s = step_scalars(params, settings, step[0])
        Z0 = workspace_block(acts, table, first, n)
        csr_times(data, indices, indptr, order, start, n, WT, Z0)
        bias_activate(Z0, bias_view(params, table, first), code, 0, n, 0, d1)
        for layer in range(1, L):
            run_step(leaves, FORWARD, layer, n, buffers, s, n_blocks)
        loss, errors = call_output(leaves[OUTPUT_LEAF], (
            output, workspace_block(acts, table, L - 1, n), yb, wb, 1.0 / total_weight,
            workspace_block(deltas, table, L - 1, n), OUTPUT_DELTA))
        if mode == STEPPED:
            s = step_scalars(params, settings, count_step(settings, step))
        kind = SGD if mode == PLAIN_SGD else (STEP if mode == STEPPED else GRADIENT)
        for layer in range(L - 1, 0, -1):
            run_step(leaves, DELTA, layer, n, buffers, s, n_blocks)
            run_step(leaves, kind, layer, n, buffers, s, n_blocks)
        D0 = workspace_block(deltas, table, first, n)
        bias = bias_view(params, table, first)
        sums = bias_view(grad, table, first)
        column_sums(D0, sums)
        if mode == PLAIN_SGD:
            if s.keep != 1:
                for e in range(w_start, w_start + d0 * d1):
                    params[e] *= s.keep
            csr_scatter(-s.lr, data, indices, indptr, order, start, n, D0, WT)
            for j in range(d1):
                bias[j] -= s.lr * sums[j]
        else:
            # the whole first gradient (λW, then δᵀX on top), stepped densely
            for e in range(w_start, w_start + d0 * d1):
                grad[e] = s.decay * params[e]
            csr_scatter(s.one, data, indices, indptr, order, start, n, D0, GT)
            if mode == STEPPED:
                run_step(leaves, UPDATE, first, n, buffers, s, n_blocks)
            else:
                clip_gradient(grad, settings.clip_norm)
                s = step_scalars(params, settings, count_step(settings, step))
                for layer in range(L):
                    run_step(leaves, UPDATE, layer, n, buffers, s, n_blocks)
        batch_stats[b, 0] = loss / total_weight
        batch_stats[b, 1] = errors / total_weight
        batch_stats[b, 2] = total_weight
    # and back to the parameters' layout
    _transpose_block(params, grad, w_start, d0, d1)
    if stateful:
        for row in range(state.shape[0]):
            _transpose_block(state[row], grad, w_start, d0, d1)


@njit(**COMPILED)
def sparse_forward(leaves, params, table, hidden, data, indices, indptr, WT, acts, settings,
                   n_blocks, stand_in, no_order):
    """:func:`fastnn.reference.forward` of the rows of a CSR ``X``.

    ``X``'s arrays are as for :func:`csr_times` (its rows are ``n =
    indptr.shape[0] - 1``); ``WT`` (d_0, d_1) is ``W_1`` transposed, by the
    caller; ``settings`` any :class:`fastnn.optim.StepSettings` of the dtype;
    ``stand_in`` as for :func:`sparse_train_epoch`; ``no_order`` an empty int64
    vector.
    """
    L = table.shape[0]
    n = indptr.shape[0] - 1
    first = table[0, 0] * 0
    s = step_scalars(params, settings, step_count_zero(table))
    Z0 = workspace_block(acts, table, first, n)
    csr_times(data, indices, indptr, no_order, first, n, WT, Z0)
    bias_activate(Z0, bias_view(params, table, first), _first_layer_code(hidden, table), 0, n,
                  0, table[0, 1])
    buffers = (params, params, stand_in, table, hidden, stand_in, acts, acts, stand_in,
               no_order)
    for layer in range(1, L):
        run_step(leaves, FORWARD, layer, n, buffers, s, n_blocks)


@njit(**COMPILED)
def sparse_backward(leaves, params, grad, table, hidden, data, indices, indptr, acts, deltas,
                    settings, GT, n_blocks, stand_in, no_order):
    """:func:`fastnn.reference.backward` of the rows of a CSR ``X``.

    ``settings.weight_decay`` is ``λ``; ``GT`` (d_0, d_1) is the scratch the
    first weight gradient is made in, transposed; the others as for
    :func:`sparse_forward`.
    """
    L = table.shape[0]
    n = indptr.shape[0] - 1
    first = table[0, 0] * 0
    s = step_scalars(params, settings, step_count_zero(table))
    buffers = (params, grad, stand_in, table, hidden, stand_in, acts, deltas, stand_in,
               no_order)
    for layer in range(L - 1, 0, -1):
        run_step(leaves, DELTA, layer, n, buffers, s, n_blocks)
        run_step(leaves, GRADIENT, layer, n, buffers, s, n_blocks)
    D0 = workspace_block(deltas, table, first, n)
    for i in range(GT.shape[0]):
        row = GT[i]
        for j in range(row.shape[0]):
            row[j] = 0
    csr_scatter(s.one, data, indices, indptr, no_order, first, n, D0, GT)
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


@njit(inline="always")
def step_count_zero(table):
    # no optimizer step is counted by a pass: its scalars are those of step 0
    return table[0, 0] * 0
