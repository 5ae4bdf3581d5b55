"""The kernels on a CSR ``X``: Numba against the NumPy reference, and finite differences.

The CSR matrices here are built from their raw arrays so that every case of the
format (:mod:`fastnn.sparse_format`) is met: rows without entries, stored
zeros, columns out of order and the same column twice in a row, int32 and
int64 index arrays.  A sparse pass must also equal the dense pass of the same
matrix made dense: the same sums, in another order.
"""

import numpy as np
import pytest
import scipy.sparse as sp

from fastnn import kernels, reference
from fastnn.layout import n_params, n_units, workspace_block
from fastnn.optim import new_state, step_settings

from helpers import ACTIVATIONS, DTYPES, OUTPUTS, PARITY_RTOL, KernelCase, relative_error
from test_kernel_parity import OPTIMIZER_CASES, both, settings_name

# wide enough that the dense layers above the first cross the parallel thresholds; a
# first layer of 93 units takes every block of the register sums (kernels/vectors.py) in
# both dtypes: float32 64 + 16 + 8 + 5 scalar, float64 64 + 3 x 8 + 4 + 1 scalar
WIDE = [300, 93, 130, 10]
TINY = [9, 7, 3]


def awkward_csr(n, d, dtype, index_dtype, seed=0, per_row=6):
    """An ``n x d`` CSR matrix with every irregularity the format allows.

    Every fifth row from row 4 on has no entries; the others hold up to
    ``per_row`` entries in random column order, one column repeated in every
    third row, and a stored zero in every fourth.
    """
    rng = np.random.default_rng(seed)
    data, indices, indptr = [], [], [0]
    for i in range(n):
        if i % 5 != 4:
            cols = list(rng.choice(d, size=min(per_row, d), replace=False))
            if i % 3 == 0:
                cols.append(cols[0])  # a duplicate: its two values add up
            values = rng.standard_normal(len(cols))
            if i % 4 == 0:
                values[-1] = 0.0  # a stored zero
            data.extend(values)
            indices.extend(cols)
        indptr.append(len(indices))
    X = sp.csr_array((np.array(data, dtype=dtype), np.array(indices, dtype=index_dtype),
                      np.array(indptr, dtype=index_dtype)), shape=(n, d))
    if n > 3:
        assert not X.has_canonical_format  # unsorted and duplicated, as built
    return X


def sparse_case(sizes, activation, output, dtype, n, index_dtype, seed=0):
    case = KernelCase(sizes, activation, output, dtype, n, seed)
    case.X = awkward_csr(n, sizes[0], case.dtype, index_dtype, seed)
    return case


def forward_and_backward(module, case, X, decays):
    """``module``'s forward pass of ``X``, the output's delta, then a backward pass for each
    weight decay in ``decays``; returns the workspace and the gradients."""
    n = case.n
    workspace = case.workspace()
    module.forward(case.net.params, case.table, case.hidden, X, workspace.acts)
    module.output_delta(case.output, workspace.logits(n), case.Y, case.weights,
                        case.dtype.type(1.0 / case.weights.sum()), workspace.output_deltas(n))
    grads = []
    for decay in decays:
        grad = np.zeros_like(case.net.params)
        module.backward(case.net.params, case.table, case.hidden, X, workspace.acts,
                        workspace.deltas, case.dtype.type(decay), grad)
        grads.append(grad)
    return workspace, grads


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("sizes,n", [(WIDE, 67), (TINY, 1), ([9, 4], 6)],
                         ids=["wide67", "tiny1", "no-hidden"])
def test_forward_and_backward(sizes, n, activation, output, dtype, index_dtype, n_threads):
    case = sparse_case(sizes, activation, output, dtype, n, index_dtype)
    dense = case.X.toarray()

    def run(module, X):
        workspace, grads = forward_and_backward(module, case, X, (0.0, 0.03))
        return workspace.acts, workspace.deltas, *grads

    numba_out, ref_out = both(case, n_threads, lambda module: run(module, case.X))
    _, dense_out = both(case, n_threads, lambda module: run(module, dense))
    names = ["activations", "deltas", "gradient", "gradient with decay"]
    rtol = PARITY_RTOL[dtype]
    for name, a, r, d in zip(names, numba_out, ref_out, dense_out):
        assert relative_error(a, r) <= rtol, f"{name}: numba against the reference"
        assert relative_error(r, d) <= rtol, f"{name}: sparse against dense"
    assert np.abs(numba_out[2]).max() > 0


# first layers whose widths take the passes of the register sums (sum_of_rows in
# kernels/sparse_input.py, the product's: blocks of four vectors of 16 float32 or 8
# float64, then single vectors, a half vector, scalars; add_columns, the gradient's:
# the same, but a last block followed by a half vector and no whole one takes the half
# in its pass) in many combinations: float32 5 = 5 scalars, 39 = 2 vectors + 7, 77 = a
# block + a half (the gradient: a block and a half) + 5, 100 = a block + 2 vectors + 4,
# 200 = 3 blocks + a half (2 blocks + a block and a half; MNIST's); float64 5 = a half
# + 1, 39 = a block + a half (a block and a half) + 3, 77 = 2 blocks + a vector + a half
# + 1, 100 = 3 blocks + a half (2 blocks + a block and a half), 200 = 6 blocks + a
# vector; 16 is one vector of float32, two of float64
FIRST_WIDTHS = [5, 16, 39, 77, 100, 200]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", FIRST_WIDTHS)
def test_first_layer_widths(width, dtype, n_threads):
    """The first layer's product (forward) and its grouped weight gradient (backward: 30
    rows of about 6 entries, more entries than the 40 columns, so sorted by column) at
    widths that take every pass of the sums in registers."""
    n = 30
    case = sparse_case([40, width], "relu", "softmax", dtype, n, "int32")

    def run(module):
        workspace, (grad,) = forward_and_backward(module, case, case.X, (0.0,))
        return workspace.logits(n).copy(), grad

    (logits, grad), (ref_logits, ref_grad) = both(case, n_threads, run)
    rtol = PARITY_RTOL[dtype]
    assert relative_error(logits, ref_logits) <= rtol, "logits"
    assert relative_error(grad, ref_grad) <= rtol, "gradient"


def test_forward_leaves_the_parameters_as_they_were():
    """The forward and backward passes read a transposed copy of W_1, never transpose
    the parameters themselves."""
    case = sparse_case(WIDE, "relu", "softmax", "float32", 20, "int32")
    before = case.net.params.copy()
    workspace = case.workspace()
    kernels.forward(case.net.params, case.table, case.hidden, case.X, workspace.acts)
    kernels.backward(case.net.params, case.table, case.hidden, case.X, workspace.acts,
                     workspace.deltas, case.dtype.type(0.1), np.zeros_like(before))
    np.testing.assert_array_equal(case.net.params, before)


SPARSE_OPTIMIZERS = ["sgd", "sgd-decay", "momentum", "nesterov", "adam", "adamw",
                     "sgd-clipped", "adamw-clipped"]


def _epoch(module, case, X, settings, optimizer, order, batch):
    params = case.net.params.copy()
    grad = np.zeros_like(params)
    state, step = new_state(settings_name(optimizer), params.size, case.dtype)
    stats = np.zeros((-(-order.shape[0] // batch), 3))
    ws = case.workspace(batch)
    module.train_epoch(params, grad, state, case.table, case.hidden, case.output, X, case.Y,
                       case.weights, order, batch, settings, step, ws.x, ws.y, ws.w, ws.acts,
                       ws.deltas, stats)
    return params, state, stats, step


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [1, 23, 500], ids=["batch1", "batch23", "batch>n"])
@pytest.mark.parametrize("optimizer", SPARSE_OPTIMIZERS)
def test_train_epoch(optimizer, batch_size, dtype, index_dtype, n_threads):
    n = 120
    sizes = WIDE if batch_size > 1 else TINY
    case = sparse_case(sizes, "relu", "softmax", dtype, n, index_dtype)
    order = np.random.default_rng(5).permutation(n)
    batch = min(batch_size, n)
    settings = step_settings(dtype, lr=0.01 if optimizer != "sgd" else 0.05,
                             **OPTIMIZER_CASES[optimizer])
    (p_numba, s_numba, st_numba, t_numba), (p_ref, s_ref, st_ref, t_ref) = both(
        case, n_threads, lambda module: _epoch(module, case, case.X, settings, optimizer,
                                               order, batch))
    _, (p_dense, s_dense, _, _) = both(
        case, n_threads, lambda module: _epoch(module, case, case.X.toarray(), settings,
                                               optimizer, order, batch))
    # one epoch of many small steps compounds rounding: 10x the one-call tolerance
    rtol = 10 * PARITY_RTOL[dtype]
    assert not np.array_equal(p_ref, case.net.params), "the epoch did not move the parameters"
    assert relative_error(p_numba, p_ref) <= rtol
    assert relative_error(s_numba, s_ref) <= rtol
    assert relative_error(st_numba, st_ref) <= rtol
    np.testing.assert_array_equal(t_numba, t_ref)
    assert relative_error(p_ref, p_dense) <= rtol, "sparse against dense"
    assert relative_error(s_ref, s_dense) <= rtol, "sparse against dense"


def test_plain_sgd_without_decay_moves_only_the_columns_it_reads():
    """Plain SGD's step touches only the columns of W_1 that the rows hold; weight decay
    moves all of them."""
    case = sparse_case(WIDE, "relu", "softmax", "float32", 40, "int32")
    order = np.arange(40)
    rows = np.repeat(np.arange(40), np.diff(case.X.indptr))
    reads = (case.X.data != 0) & (case.weights[rows] != 0)  # entries that move a weight
    used = np.zeros(WIDE[0], dtype=bool)
    used[case.X.indices[reads]] = True
    assert 0 < used.sum() < WIDE[0]
    for optimizer, moved_unused in (("sgd", False), ("sgd-decay", True)):
        settings = step_settings("float32", lr=0.05, **OPTIMIZER_CASES[optimizer])
        params = _epoch(kernels, case, case.X, settings, optimizer, order, 8)[0]
        W1 = lambda p: p[:WIDE[0] * WIDE[1]].reshape(WIDE[1], WIDE[0])  # noqa: E731
        changed = (W1(params) != W1(case.net.params)).any(axis=0)
        assert changed[used].all()
        assert changed[~used].any() == moved_unused


def _fd_loss(module, case, X, params, workspace):
    module.forward(params, case.table, case.hidden, X, workspace.acts)
    return module.loss_sum(case.output, workspace.logits(case.n), case.Y, case.weights)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(activation, output, backend):
    """Central differences of ``Σ w L + (λ/2)‖W‖²`` against the sparse backward pass, float64."""
    module = {"numba": kernels, "numpy": reference}[backend]
    sizes, n, decay, eps = [8, 5, 3], 7, 0.1, 1e-6
    case = sparse_case(sizes, activation, output, "float64", n, "int32", seed=3)
    params = case.net.params + 0.1 * np.random.default_rng(2).standard_normal(
        case.net.params.size)
    workspace = case.workspace()
    module.forward(params, case.table, case.hidden, case.X, workspace.acts)
    module.output_delta(case.output, workspace.logits(n), case.Y, case.weights, 1.0,
                        workspace.output_deltas(n))
    analytic = np.zeros_like(params)
    module.backward(params, case.table, case.hidden, case.X, workspace.acts, workspace.deltas,
                    decay, analytic)
    is_weight = np.zeros(params.size, dtype=bool)
    for l in range(case.table.shape[0]):
        is_weight[case.table[l, 2]:case.table[l, 3]] = True

    def objective(p):
        return (_fd_loss(module, case, case.X, p, workspace)
                + 0.5 * decay * float((p[is_weight] ** 2).sum()))

    numeric = np.empty_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] += eps
        down[i] -= eps
        numeric[i] = (objective(up) - objective(down)) / (2 * eps)
    scale = np.maximum(np.abs(numeric), 1e-3)
    error = np.abs(analytic - numeric) / scale
    assert error.max() < 1e-5, f"worst parameter {error.argmax()}: {error.max():.2e}"
    first_layer = slice(case.table[0, 2], case.table[0, 3])
    assert np.abs(analytic[first_layer]).max() > 1e-3, "the sparse layer's gradient vanished"


def test_prepare_compiles_the_sparse_paths():
    """``prepare`` takes the sparse paths by name, and a fit's first epoch then compiles
    nothing more."""
    for path in ("sparse-sgd", "sparse-step", "sparse-clipped", "sparse-per-sample",
                 "sparse-forward", "sparse-backward"):
        assert path in kernels.PATHS
        kernels.prepare("float64", [path])
    assert kernels.prepare("float64", ["sparse-sgd", "sparse-forward"]) == 0.0


def test_workspace_layout_is_the_reference_layout():
    """The sparse passes write the same workspace blocks the reference reads."""
    case = sparse_case(TINY, "relu", "softmax", "float64", 4, "int64")
    ws = case.workspace()
    kernels.forward(case.net.params, case.table, case.hidden, case.X, ws.acts)
    assert ws.acts.size == 4 * n_units(case.table)
    expected = case.X.toarray() @ case.net.weights[0].T + case.net.biases[0]
    np.testing.assert_allclose(workspace_block(ws.acts, case.table, 0, 4),
                               np.maximum(expected, 0), rtol=1e-12)
    assert case.net.params.size == n_params(case.table)


@pytest.mark.parametrize("sizes", [[300, 40], [300, 40, 6]], ids=["no-hidden", "hidden"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "sgd-clipped"])
def test_threaded_first_layer_gives_the_one_thread_numbers(optimizer, sizes):
    """Batches big enough for the threaded product (split by rows) and the threaded
    update grouped by column (split by columns): the same bits on one thread and two,
    and the reference's numbers.  The layer above the first, when there is one, is
    too small for its steps to be threaded (40 x 6 at batch 120:
    config.MIN_PARALLEL_MULTIPLY_ADDS), so its products round as on one thread;
    larger dense layers may round differently on two threads (their split changes
    BLAS's blocking), the first layer's sums may not."""
    from fastnn.threads import available_threads, thread_scope
    if available_threads() < 2:
        pytest.skip("needs 2 threads")
    n, batch = 240, 120
    case = KernelCase(sizes, "relu", "softmax", "float64", n)
    case.X = awkward_csr(n, 300, case.dtype, "int32", per_row=20)
    entries = np.diff(case.X.indptr)[:batch].sum()
    assert entries >= 300 and entries * 40 >= 1 << 16  # grouped, and threaded
    settings = step_settings("float64", lr=0.02, **OPTIMIZER_CASES[optimizer])
    order = np.random.default_rng(1).permutation(n)
    results = {}
    for n_threads in (1, 2):
        with thread_scope(n_threads, "numba"):
            results[n_threads] = _epoch(kernels, case, case.X, settings, optimizer, order, batch)
    with thread_scope(1, "numpy"):
        expected = _epoch(reference, case, case.X, settings, optimizer, order, batch)
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)
    assert relative_error(results[2][0], expected[0]) <= 10 * PARITY_RTOL["float64"]


def test_a_dense_fit_never_imports_the_sparse_kernels():
    """``import fastnn.kernels`` and a dense fit leave kernels/sparse_input.py (and
    scipy.sparse) unimported: 20 ms of every import otherwise."""
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from fastnn import Network\n"
            "Network([4, 3, 2]).fit(np.random.rand(20, 4), np.arange(20) % 2, epochs=1)\n"
            "print('fastnn.kernels.sparse_input' in sys.modules, 'scipy.sparse' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=True)
    assert done.stdout.split()[-2:] == ["False", "False"]
