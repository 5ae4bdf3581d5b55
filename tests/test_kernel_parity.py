"""Every kernel of the contract: Numba against the NumPy reference on the same buffers.

Sizes are chosen so that, with two threads, both the serial and the parallel
code paths run (the thresholds in ``fastnn.kernels.config``), for batch sizes
of 1, an odd size and larger than the data; a training epoch with two threads
both ways of sharing a batch (a small network's rows split among the threads,
a larger one's layer steps).
"""

import numpy as np
import pytest

from fastnn import kernels, reference

from helpers import ACTIVATIONS, DTYPES, OUTPUTS, PARITY_RTOL, KernelCase, relative_error

# wide enough that a batch of 67 rows crosses every parallel threshold
WIDE = [96, 160, 130, 10]
TINY = [5, 7, 3]
# more parameters than a small network's (ROW_PARALLEL_MAX_PARAMS): its training
# batches share each layer step among the threads, WIDE's split their rows
WIDER = [320, 160, 10]


def both(case, n_threads, call):
    """``call(backend_module)`` under each backend's thread scope, numba first."""
    from fastnn.threads import thread_scope
    results = []
    for name, module in (("numba", kernels), ("numpy", reference)):
        with thread_scope(n_threads, name):
            results.append(call(module))
    return results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes,n", [(WIDE, 67), (TINY, 1)], ids=["wide67", "tiny1"])
def test_forward_loss_delta_backward(sizes, n, activation, output, dtype, n_threads):
    case = KernelCase(sizes, activation, output, dtype, n)

    def run(module):
        workspace = case.workspace()
        acts, deltas = workspace.acts, workspace.deltas
        grad = np.zeros_like(case.net.params)
        grad_decay = np.zeros_like(case.net.params)
        module.forward(case.net.params, case.table, case.hidden, case.X, acts)
        Z = workspace.logits(case.n)
        A = np.empty_like(Z)
        module.output_activation(case.output, Z, A)
        loss = module.loss_sum(case.output, Z, case.Y, case.weights)
        errors = module.error_count(case.output, Z, case.Y, case.weights)
        delta_loss = module.output_delta(case.output, Z, case.Y, case.weights,
                                         case.dtype.type(1.0 / case.weights.sum()),
                                         workspace.output_deltas(case.n))
        module.backward(case.net.params, case.table, case.hidden, case.X, acts, deltas,
                        case.dtype.type(0), grad)
        module.backward(case.net.params, case.table, case.hidden, case.X, acts, deltas,
                        case.dtype.type(0.03), grad_decay)
        return acts, A, loss, errors, delta_loss, deltas, grad, grad_decay

    numba_out, ref_out = both(case, n_threads, run)
    rtol = PARITY_RTOL[dtype]
    names = ["activations", "output", "loss", "errors", "output_delta loss", "deltas",
             "gradient", "gradient with decay"]
    for name, got, want in zip(names, numba_out, ref_out):
        if name == "errors" and not np.isnan(want):
            # a tie broken differently would be a real bug: a relative error of at
            # least one row's weight in the total
            assert abs(got - want) <= 1e-6 * max(abs(want), 1), name
        elif name == "errors":
            assert np.isnan(got), "regression has no error count"
        else:
            assert relative_error(got, want) <= rtol, f"{name}: {relative_error(got, want):.2e}"


OPTIMIZER_CASES = {
    # Adam's step is about lr·g/(|g| + ε): with ε = 1e-8 a gradient that is pure
    # rounding noise (|g| ~ 1e-8, seen here) moves by ±lr/2 either way, so the
    # epoch comparison uses a ε that keeps the step well-conditioned
    "adamw-clipped": dict(optimizer="adamw", weight_decay=0.01, clip_norm=0.5, eps=1e-4),
    "sgd": dict(optimizer="sgd"),
    # plain SGD takes the fused path: the step happens inside the backward pass
    "sgd-decay": dict(optimizer="sgd", weight_decay=0.01),
    "momentum": dict(optimizer="sgd", momentum=0.9),
    "nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", weight_decay=0.01),
    "adamw": dict(optimizer="adamw", weight_decay=0.01),
    "sgd-clipped": dict(optimizer="sgd", momentum=0.5, clip_norm=0.5),
    "adam-clipped": dict(optimizer="adam", clip_norm=0.5),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES)
@pytest.mark.parametrize("sizes", [[5, 4, 3], [150, 120, 10]], ids=["small", "large"])
def test_optimizer_step(sizes, optimizer, dtype, n_threads):
    from fastnn.layout import layer_table, n_params
    from fastnn.optim import new_state, step_settings
    table = layer_table(sizes)
    rng = np.random.default_rng(3)
    start = rng.standard_normal((2, n_params(table))).astype(dtype)
    settings = step_settings(dtype, lr=0.05, **OPTIMIZER_CASES[optimizer])

    def run(module):
        params, grad = (a.copy() for a in start)
        state, step = new_state(settings_name(optimizer), params.size, dtype)
        for _ in range(3):
            module.optimizer_step(params, grad, state, table, settings, step)
            grad *= grad.dtype.type(0.5)
        return params, state, step

    (p_numba, s_numba, t_numba), (p_ref, s_ref, t_ref) = both(None, n_threads, run)
    # the same float operations in the same order: equal up to sqrt/norm rounding
    assert relative_error(p_numba, p_ref) <= PARITY_RTOL[dtype]
    assert relative_error(s_numba, s_ref) <= PARITY_RTOL[dtype]
    np.testing.assert_array_equal(t_numba, t_ref)


def settings_name(case):
    return OPTIMIZER_CASES[case]["optimizer"]


def _train_epoch(module, case, weights, order, batch, settings, optimizer):
    """One epoch of ``module.train_epoch`` from the case's parameters and a fresh state:
    ``(params, state, batch_stats, steps)``."""
    from fastnn.optim import new_state
    params = case.net.params.copy()
    grad = np.zeros_like(params)
    state, step = new_state(settings_name(optimizer), params.size, case.dtype)
    stats = np.zeros((-(-order.shape[0] // batch), 3))
    ws = case.workspace(batch)
    module.train_epoch(params, grad, state, case.table, case.hidden, case.output, case.X,
                       case.Y, weights, order, batch, settings, step, ws.x, ws.y, ws.w, ws.acts,
                       ws.deltas, stats)
    return params, state, stats, step[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("sizes,batch_size", [(TINY, 1), (WIDE, 23), (WIDE, 500), (WIDER, 23),
                                              (WIDER, 500)],
                         ids=["batch1", "rows-split-23", "rows-split-batch>n", "steps-split-23",
                              "steps-split-batch>n"])
@pytest.mark.parametrize("optimizer", ["sgd-decay", "momentum", "adamw-clipped"])
def test_train_epoch(sizes, batch_size, activation, output, dtype, n_threads, optimizer):
    from fastnn.kernels.row_parallel import row_parallel
    from fastnn.optim import step_settings
    n = 120
    case = KernelCase(sizes, activation, output, dtype, n)
    batch = min(batch_size, n)
    split_rows = sizes is WIDE and n_threads > 1
    assert row_parallel(case.net.params.size, batch, n_threads) == split_rows
    order = np.random.default_rng(5).permutation(n)
    # the exp output at half the rate: at 0.01 with momentum the tiny tanh net diverges
    # (max |w| 0.75 -> 43.8 in the epoch), and then moving its float64 start by half a
    # float32 ulp moves the end by 1e-4 to 3e-4, more than the tolerance: parity would
    # measure chaos, not arithmetic (at 0.005: 1e-7, and Numba/NumPy agree to 5e-7)
    settings = step_settings(dtype, lr=0.005 if output == "exp" else 0.01,
                             **OPTIMIZER_CASES[optimizer])

    def run(module):
        return _train_epoch(module, case, case.weights, order, batch, settings, optimizer)[:3]

    (p_numba, s_numba, st_numba), (p_ref, s_ref, st_ref) = both(case, n_threads, run)
    # one epoch of many small steps compounds rounding: allow 10x the one-call tolerance
    rtol = 10 * PARITY_RTOL[dtype]
    assert not np.array_equal(p_ref, case.net.params), "the epoch did not move the parameters"
    assert relative_error(p_numba, p_ref) <= rtol
    assert relative_error(s_numba, s_ref) <= rtol
    assert relative_error(st_numba[:, [0, 2]], st_ref[:, [0, 2]]) <= rtol
    np.testing.assert_allclose(st_numba[:, 1], st_ref[:, 1], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd-decay", "nesterov", "adam", "adamw-clipped"])
@pytest.mark.parametrize("sizes,output", [(WIDE, "softmax"), ([96, 160, 1], "sigmoid")],
                         ids=["wide", "one-output"])
def test_rows_split_epoch_edges(sizes, output, optimizer, dtype):
    """A small network's batches split by rows on two threads: a last batch of one row
    (fewer rows than threads), a batch whose weights are all zero (no step, zeros
    recorded), the same bits in a second run, the reference's numbers; and an output
    layer of one unit, whose one row of weights (and bias) only one of the threads
    that share the step may sum and step."""
    from fastnn.kernels.row_parallel import row_parallel
    from fastnn.optim import step_settings
    from fastnn.threads import available_threads, thread_scope
    if available_threads() < 2:
        pytest.skip("needs 2 threads")
    n, batch = 41, 8
    case = KernelCase(sizes, "relu", output, dtype, n)
    assert row_parallel(case.net.params.size, batch, 2)
    order = np.random.default_rng(3).permutation(n)
    weights = case.weights.copy()
    weights[order[8:16]] = 0  # the second batch
    settings = step_settings(dtype, lr=0.01, **OPTIMIZER_CASES[optimizer])

    def run(module):
        return _train_epoch(module, case, weights, order, batch, settings, optimizer)

    runs = {}
    for name, module, threads in (("numba", kernels, 2), ("again", kernels, 2),
                                  ("numpy", reference, 1)):
        with thread_scope(threads, "numpy" if module is reference else "numba"):
            runs[name] = run(module)
    (p, s, st, steps), (p_ref, s_ref, st_ref, steps_ref) = runs["numba"], runs["numpy"]
    for mine, again in zip(runs["numba"][:3], runs["again"][:3]):
        np.testing.assert_array_equal(mine, again)
    rtol = 10 * PARITY_RTOL[dtype]
    assert relative_error(p, p_ref) <= rtol
    assert relative_error(s, s_ref) <= rtol
    assert relative_error(st[:, [0, 2]], st_ref[:, [0, 2]]) <= rtol
    assert (st[1] == 0).all() and steps == steps_ref
    assert st[-1, 2] > 0  # the one-row batch took its step


def test_mnist_shaped_epoch_float64_parity():
    """784-200-10 relu/softmax, float64, one shuffled epoch: the two backends agree to 1e-10."""
    from fastnn import Network
    rng = np.random.default_rng(0)
    X = rng.random((3000, 784))
    y = rng.integers(0, 10, 3000)
    trained = {}
    for backend in ("numba", "numpy"):
        net = Network([784, 200, 10], dtype="float64", seed=7, backend=backend)
        net.fit(X, y, epochs=1, batch_size=100, lr=0.1)
        trained[backend] = net.params
    assert relative_error(trained["numba"], trained["numpy"]) <= 1e-10


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sizes", [[6, 3], [6, 5, 3], [6, 5, 4, 3], [130, 40, 10]],
                         ids=["L1", "L2", "L3", "wide"])
def test_per_sample_sgd_pipeline(sizes, dtype):
    """Batch size 1 with plain SGD runs the pipelined loop (the next sample's first
    product fused with this sample's first-layer step): every depth, zero-weight
    rows first, in the middle and last."""
    from fastnn.optim import new_state, step_settings
    n = 40
    case = KernelCase(sizes, "tanh", "softmax", dtype, n)
    weights = case.weights.copy()
    order = np.random.default_rng(5).permutation(n)
    weights[order[[0, 1, 17, n - 1]]] = 0
    settings = step_settings(dtype, lr=0.05, weight_decay=0.01)

    def run(module):
        params = case.net.params.copy()
        grad = np.zeros_like(params)
        state, step = new_state("sgd", params.size, case.dtype)
        stats = np.zeros((n, 3))
        ws = case.workspace(1)
        module.train_epoch(params, grad, state, case.table, case.hidden, case.output,
                           case.X, case.Y, weights, order, 1, settings, step,
                           ws.x, ws.y, ws.w, ws.acts, ws.deltas, stats)
        return params, stats

    (p_numba, s_numba), (p_ref, s_ref) = both(case, 1, run)
    assert relative_error(p_numba, p_ref) <= 10 * PARITY_RTOL[dtype]
    assert relative_error(s_numba, s_ref) <= 10 * PARITY_RTOL[dtype]
    assert (s_numba[[0, 1, 17, n - 1], 2] == 0).all()
