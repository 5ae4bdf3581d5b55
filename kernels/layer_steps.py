"""Layer steps: one matrix product of a layer and what follows it on the same block.

Training is a sequence of layer steps with a little serial work between them
(gathering a batch, the output layer's loss and delta).  A step is named by
its ``kind`` and its layer ``l`` (0-based; layer 0 reads ``X``, layer ``l``
reads the activations ``A_{l-1}`` of the layer below):

=========  ==========================================  ===========================
kind       the product, on the block                   then, on the same block
=========  ==========================================  ===========================
FORWARD    ``Z_l ← A_{l-1} W_l^T``                     ``A_l ← g_l(Z_l + b_l)``
ACTIVATE   (none: ``Z_l`` is already there)            ``A_l ← g_l(Z_l + b_l)``
DELTA      ``δ_{l-1} ← δ_l W_l``                       ``δ_{l-1} ⊙= g'(A_{l-1})``
SGD        ``W_l ← keep · W_l - α δ_l^T A_{l-1}``      nothing
GRADIENT   ``∂W_l ← δ_l^T A_{l-1} + λ W_l``            nothing
STEP       ``∂W_l`` as for GRADIENT                    the optimizer step of ``W_l``
UPDATE     (none: ``∂W_l`` is already there)           the optimizer step of ``W_l``
GATHER     (none)                                      ``X[i] ← source[order[l + i]]``
=========  ==========================================  ===========================

(``g_l`` is the identity for the output layer: its block gets the logits.
GATHER copies the batch's rows of the data into ``X``; its "layer" is the
batch's first position in ``order``.)
The steps on the weights also take care of the bias, on the thread that holds
the first block: SGD applies ``b_l ← b_l - α Σ_rows δ_l`` (``grad`` lends its
bias slots for the sums), GRADIENT writes ``∂b_l = Σ_rows δ_l``, STEP writes
and steps it, UPDATE steps it.

Four compiled functions do the work (forward, delta, SGD, and the gradient
steps), each compiled once per dtype with one signature
(:func:`fastnn.kernels.native_calls.step_signature`: the whole buffers, not
views of them), and called through their addresses
(:mod:`fastnn.kernels.native_calls`).  :func:`parallel_step`, the package's
one ``parallel=True`` function, runs any of them on one block of the result
per thread.  Why so (docs/design.md, rule 7): compile time grows with the
code Numba lowers and LLVM optimises, and every function linked into another
is lowered once but optimised again in each caller.

Threads (docs/design.md, rule 1): Numba owns them; each block's product is a
single-threaded BLAS call, so the caller caps BLAS at one thread.  How a
result is split is in :func:`parallel_step`; the numbers depend on the thread
count but never on timing.
"""

from numba import njit, prange

from fastnn import codes
from fastnn.kernels.arrays import row_segment
from fastnn.kernels.blas import gemm_nn, gemm_nt, gemm_tn
from fastnn.kernels.config import (
    INTERNAL,
    MIN_PARALLEL_ELEMENTS,
    MIN_PARALLEL_INNER,
    MIN_PARALLEL_MULTIPLY_ADDS,
)
from fastnn.kernels.elementwise import (
    bias_activate,
    column_sums,
    multiply_derivative,
    scaled_copy,
)
from fastnn.kernels.native_calls import (
    DELTA_LEAF,
    FORWARD_LEAF,
    GATHER_LEAF,
    GRADIENT_LEAF,
    PARALLEL_LEAF,
    SGD_LEAF,
    call_parallel,
    call_step,
)
from fastnn.kernels.small_matmul import (
    SMALL_RANK,
    SMALL_ROWS,
    low_rank_update,
    rows_times,
    rows_times_transposed,
)
from fastnn.kernels.update_rules import update
from fastnn.kernels.views import bias_row, bias_view, weight_view, workspace_block

FORWARD = 0
ACTIVATE = 1
DELTA = 2
SGD = 3
GRADIENT = 4
STEP = 5
UPDATE = 6
GATHER = 7


@njit(**INTERNAL)
def leaf_of(kind):
    """The slot of the address table holding the function that runs ``kind``."""
    if kind == FORWARD or kind == ACTIVATE:
        return FORWARD_LEAF
    if kind == DELTA:
        return DELTA_LEAF
    if kind == SGD:
        return SGD_LEAF
    if kind == GATHER:
        return GATHER_LEAF
    return GRADIENT_LEAF


@njit(**INTERNAL)
def step_shape(kind, layer, n, table):
    """``(m, n_cols, k, multiply)`` of a step: its result is ``(m, n_cols)`` and, when
    ``multiply``, the product's inner size is ``k``."""
    if kind == GATHER:
        return n, table[0, 0], 0, False
    fan_in = table[layer, 0]
    fan_out = table[layer, 1]
    if kind == FORWARD or kind == ACTIVATE:
        return n, fan_out, fan_in, kind == FORWARD
    if kind == DELTA:
        return n, fan_in, fan_out, True
    return fan_out, fan_in, n, kind != UPDATE


@njit(**INTERNAL)
def _input(layer, n, X, acts, table):
    # A_{l-1}: the batch for the first layer, else the activations below
    return X if layer == 0 else workspace_block(acts, table, layer - 1, n)


# reassoc and contract let LLVM vectorise the small products' dot products
# (docs/design.md, rule 6); nothing else here reduces or multiplies-and-adds
@njit(**INTERNAL, fastmath={"reassoc", "contract"})
def forward_step(kind, layer, n, buffers, s, r0, r1, c0, c1):
    """FORWARD or ACTIVATE on rows ``r0:r1`` and columns ``c0:c1`` of ``Z_l`` (n, d_l).

    The signature is that of every step (:func:`fastnn.kernels.native_calls.step_signature`).

    Parameters
    ----------
    kind, layer : int
        See the module docstring.
    n : int
        Rows in the batch.
    buffers : tuple
        ``(params, grad, state, table, hidden, X, acts, deltas)``: the
        parameters and the gradient (n_params,), the optimizer state (rows,
        n_params), the layer table and hidden activation codes, the batch
        ``X`` (n, d_0), the activation and delta workspaces.
    s : fastnn.kernels.update_rules.StepScalars
    r0, r1, c0, c1 : int
        The block.  The whole result (``0, n, 0, d_l`` here) of a product of at
        most ``SMALL_ROWS`` rows takes a dot-product loop instead of BLAS (a
        weight update of rank at most ``SMALL_RANK`` likewise).
    """
    params, grad, state, table, hidden, X, acts, deltas, _, _ = buffers
    fan_in = table[layer, 0]
    fan_out = table[layer, 1]
    Z = workspace_block(acts, table, layer, n)
    if kind == FORWARD:
        A = _input(layer, n, X, acts, table)
        W = weight_view(params, table, layer)
        if r0 == 0 and r1 == n and c0 == 0 and c1 == fan_out and n <= SMALL_ROWS:
            rows_times_transposed(s.one, A, W, s.zero, Z)
        else:
            gemm_nt(r1 - r0, c1 - c0, fan_in, s.one, A, r0 * fan_in, fan_in, W,
                 c0 * fan_in, fan_in, s.zero, Z, r0 * fan_out + c0, fan_out)
    code = hidden[layer] if layer < table.shape[0] - 1 else codes.IDENTITY
    bias_activate(Z, bias_view(params, table, layer), code, r0, r1, c0, c1)


@njit(**INTERNAL)
def delta_step(kind, layer, n, buffers, s, r0, r1, c0, c1):
    """DELTA on rows ``r0:r1`` and columns ``c0:c1`` of ``δ_{l-1}`` (n, d_{l-1}), ``l >= 1``."""
    params, grad, state, table, hidden, X, acts, deltas, _, _ = buffers
    fan_in = table[layer, 0]
    fan_out = table[layer, 1]
    D = workspace_block(deltas, table, layer, n)
    D_below = workspace_block(deltas, table, layer - 1, n)
    W = weight_view(params, table, layer)
    if r0 == 0 and r1 == n and c0 == 0 and c1 == fan_in and n <= SMALL_ROWS:
        rows_times(s.one, D, W, s.zero, D_below)
    else:
        gemm_nn(r1 - r0, c1 - c0, fan_out, s.one, D, r0 * fan_out, fan_out, W, c0,
             fan_in, s.zero, D_below, r0 * fan_in + c0, fan_in)
    multiply_derivative(D_below, workspace_block(acts, table, layer - 1, n), hidden[layer - 1],
                        s.one, r0, r1, c0, c1)


@njit(**INTERNAL)
def _weight_product(alpha, beta, D, A, C, n, fan_in, fan_out, r0, r1, c0, c1):
    # C[r0:r1, c0:c1] ← alpha · (δᵀ A)[r0:r1, c0:c1] + beta · C: rank n
    if r0 == 0 and r1 == fan_out and c0 == 0 and c1 == fan_in and n <= SMALL_RANK:
        low_rank_update(alpha, D, A, beta, C)
    else:
        gemm_tn(r1 - r0, c1 - c0, n, alpha, D, r0, fan_out, A, c0, fan_in, beta, C,
             r0 * fan_in + c0, fan_in)


@njit(**INTERNAL)
def sgd_step(kind, layer, n, buffers, s, r0, r1, c0, c1):
    """SGD on rows ``r0:r1`` and columns ``c0:c1`` of ``W_l`` (d_l, d_{l-1}): the
    backward pass and a plain SGD step in one product, no gradient buffer."""
    params, grad, state, table, hidden, X, acts, deltas, _, _ = buffers
    fan_in = table[layer, 0]
    fan_out = table[layer, 1]
    D = workspace_block(deltas, table, layer, n)
    _weight_product(-s.lr, s.keep, D, _input(layer, n, X, acts, table),
                    weight_view(params, table, layer), n, fan_in, fan_out, r0, r1, c0, c1)
    if r0 == 0 and c0 == 0:
        # the bias, by the thread with the first block, while the others finish theirs
        b = bias_view(params, table, layer)
        sums = bias_view(grad, table, layer)
        column_sums(D, sums)
        for j in range(fan_out):
            b[j] -= s.lr * sums[j]


@njit(**INTERNAL)
def gradient_step(kind, layer, n, buffers, s, r0, r1, c0, c1):
    """GRADIENT, STEP or UPDATE on rows ``r0:r1`` and columns ``c0:c1`` of ``∂W_l``."""
    params, grad, state, table, hidden, X, acts, deltas, _, _ = buffers
    fan_in = table[layer, 0]
    fan_out = table[layer, 1]
    D = workspace_block(deltas, table, layer, n)
    W = weight_view(params, table, layer)
    G = weight_view(grad, table, layer)
    if kind != UPDATE:
        beta = s.zero
        if s.decay != 0:
            # λW first, then the product is added on top
            scaled_copy(W, s.decay, G, r0, r1, c0, c1)
            beta = s.one
        _weight_product(s.one, beta, D, _input(layer, n, X, acts, table), G, n, fan_in, fan_out,
                        r0, r1, c0, c1)
    first = r0 == 0 and c0 == 0
    if first and kind != UPDATE:
        column_sums(D, bias_view(grad, table, layer))
    if kind == GRADIENT:
        return
    # the weights' block, then (by the thread with the first block) the bias,
    # which AdamW does not decay; one loop, so the step is compiled once
    S0 = state[0]
    S1 = state[state.shape[0] - 1]  # SGD keeps one row: it stands in for Adam's second
    for part in range(2 if first else 1):
        if part == 0:
            P, dP, M, V = W, G, weight_view(S0, table, layer), weight_view(S1, table, layer)
            factor, a0, a1, b0, b1 = s.weight_factor, r0, r1, c0, c1
        else:
            P, dP = bias_row(params, table, layer), bias_row(grad, table, layer)
            M, V = bias_row(S0, table, layer), bias_row(S1, table, layer)
            factor, a0, a1, b0, b1 = s.one, 0, 1, 0, fan_out
        update(P, dP, M, V, s, factor, a0, a1, b0, b1)


@njit(**INTERNAL)
def gather_step(kind, layer, n, buffers, s, r0, r1, c0, c1):
    """GATHER: rows ``r0:r1`` of the batch ``X`` from ``source[order[layer + i]]``.

    Shared among the threads: 256 rows of 784 float32 drawn from all over
    60,000 are memory latency more than bandwidth (gathered on one thread
    they cost a batch-256 epoch 5 %).
    """
    X, source, order = buffers[5], buffers[8], buffers[9]
    for i in range(r0, r1):
        # segments, not the block's bounds in the loop: LLVM vectorises this
        # copy then (with range(c0, c1) it copied one float at a time)
        src = row_segment(source, order[layer + i], c0, c1)
        dst = row_segment(X, i, c0, c1)
        for j in range(dst.shape[0]):
            dst[j] = src[j]


@njit(**INTERNAL, parallel=True)
def parallel_step(step, kind, layer, n, buffers, s, n_blocks):
    """The step at address ``step`` on ``n_blocks`` blocks of its result, one per thread.

    Products split the wider side of their result: for FORWARD and DELTA the
    columns of the result are rows of the weights, so each thread reads only
    its share of them; for SGD and GRADIENT each thread packs only its share
    of the batch for BLAS (split by rows, both threads packed all of it:
    batch 256 ran 5 % slower).  The optimizer's steps (STEP, UPDATE) split the
    rows of the weights when there are enough: each thread then owns whole
    rows of the weights, their gradient and the optimizer state, contiguous in
    memory; split by columns every row's boundary cache line was written by
    both threads, and a momentum step of a 200 x 784 layer took longer on two
    threads than on one (233 against 45 µs).  GATHER splits the batch's rows.
    """
    m, n_cols, _, _ = step_shape(kind, layer, n, buffers[3])
    by_columns = m < n_blocks if kind >= STEP else n_cols >= m
    extent = n_cols if by_columns else m
    for t in prange(n_blocks):
        lo = t * extent // n_blocks
        hi = (t + 1) * extent // n_blocks
        r0 = 0 if by_columns else lo
        r1 = m if by_columns else hi
        c0 = lo if by_columns else 0
        c1 = hi if by_columns else n_cols
        call_step(step, (kind, layer, n, buffers, s, r0, r1, c0, c1))


@njit(inline="always")
def run_step(leaves, kind, layer, n, buffers, s, n_blocks):
    """Step ``kind`` of ``layer`` on ``n_blocks`` threads, or on this one when it is too
    small to pay for waking them (thresholds in :mod:`fastnn.kernels.config`).

    ``leaves`` is the address table (:mod:`fastnn.kernels.native_calls`).
    """
    m, n_cols, k, multiply = step_shape(kind, layer, n, buffers[3])
    step = leaves[leaf_of(kind)]
    if multiply:
        transposed = kind >= SGD  # the weight steps read δ transposed: rank k = n
        small = k <= SMALL_RANK if transposed else m <= SMALL_ROWS
        threaded = (not small and n_blocks > 1 and m * n_cols * k >= MIN_PARALLEL_MULTIPLY_ADDS
                    and k >= MIN_PARALLEL_INNER and (m >= n_blocks or n_cols >= n_blocks))
    else:
        threaded = (n_blocks > 1 and m * n_cols >= MIN_PARALLEL_ELEMENTS
                    and (m >= n_blocks or n_cols >= n_blocks))
    if threaded:
        call_parallel(leaves[PARALLEL_LEAF], (step, kind, layer, n, buffers, s, n_blocks))
    else:
        call_step(step, (kind, layer, n, buffers, s, 0, m, 0, n_cols))


#: the compiled function of each address-table slot that runs layer steps
STEP_FUNCTIONS = {FORWARD_LEAF: forward_step, DELTA_LEAF: delta_step, SGD_LEAF: sgd_step,
                  GRADIENT_LEAF: gradient_step, GATHER_LEAF: gather_step}
