"""Every kernel of the contract: Numba against the NumPy reference on the same buffers.

Sizes are chosen so that, with two threads, both the serial and the parallel
code paths run (the thresholds in ``fastnn.kernels.config``), for batch sizes
of 1, an odd size and larger than the data.
"""

import numpy as np
import pytest

from conftest import ACTIVATIONS, DTYPES, OUTPUTS, PARITY_RTOL, KernelCase, relative_error
from fastnn import kernels, reference

# wide enough that a batch of 67 rows crosses every parallel threshold
WIDE = [96, 160, 130, 10]
TINY = [5, 7, 3]


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
        acts, deltas = case.workspace(), case.workspace()
        grad = np.zeros_like(case.net.params)
        grad_decay = np.zeros_like(case.net.params)
        module.forward(case.net.params, case.table, case.hidden, case.X, acts)
        Z = case.block(acts, case.last)
        A = np.empty_like(Z)
        module.output_activation(case.output, Z, A)
        loss = module.loss_sum(case.output, Z, case.Y)
        errors = module.error_count(case.output, Z, case.Y)
        delta_loss = module.output_delta(case.output, Z, case.Y, case.dtype.type(1.0 / n),
                                         case.block(deltas, case.last))
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
        if name == "errors":
            # a logit tie broken differently would be a real bug, so compare exactly
            np.testing.assert_equal(got, want, err_msg=name)
        else:
            assert relative_error(got, want) <= rtol, f"{name}: {relative_error(got, want):.2e}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)],
                         ids=["plain", "momentum", "nesterov"])
@pytest.mark.parametrize("size", [50, 20000], ids=["small", "large"])
def test_sgd_update(size, momentum, nesterov, dtype, n_threads):
    rng = np.random.default_rng(3)
    cast = np.dtype(dtype).type
    start = rng.standard_normal((3, size)).astype(dtype)

    def run(module):
        params, grad, velocity = (a.copy() for a in start)
        for _ in range(3):
            module.sgd_update(params, grad, velocity, cast(0.05), cast(momentum), nesterov)
            grad *= cast(0.5)
        return params, velocity

    (p_numba, v_numba), (p_ref, v_ref) = both(None, n_threads, run)
    # the same float operations in the same order: bit for bit
    np.testing.assert_array_equal(p_numba, p_ref)
    np.testing.assert_array_equal(v_numba, v_ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("batch_size", [1, 23, 500], ids=["batch1", "batch23", "batch>n"])
def test_train_epoch(batch_size, activation, output, dtype, n_threads):
    n = 120
    sizes = WIDE if batch_size > 1 else TINY
    case = KernelCase(sizes, activation, output, dtype, n)
    order = np.random.default_rng(5).permutation(n)
    batch = min(batch_size, n)
    n_batches = -(-n // batch)
    cast = case.dtype.type

    def run(module):
        params = case.net.params.copy()
        grad = np.zeros_like(params)
        velocity = np.zeros_like(params)
        stats = np.zeros((n_batches, 2))
        module.train_epoch(params, grad, velocity, case.table, case.hidden, case.output,
                           case.X, case.Y, order, batch, cast(0.05), cast(0.5), True,
                           cast(1e-3), np.zeros((batch, sizes[0]), case.dtype),
                           np.zeros((batch, sizes[-1]), case.dtype), case.workspace(batch),
                           case.workspace(batch), stats)
        return params, velocity, stats

    (p_numba, v_numba, s_numba), (p_ref, v_ref, s_ref) = both(case, n_threads, run)
    # one epoch of many small steps compounds rounding: allow 10x the one-call tolerance
    rtol = 10 * PARITY_RTOL[dtype]
    assert not np.array_equal(p_ref, case.net.params), "the epoch did not move the parameters"
    assert relative_error(p_numba, p_ref) <= rtol
    assert relative_error(v_numba, v_ref) <= rtol
    assert relative_error(s_numba[:, 0], s_ref[:, 0]) <= rtol
    np.testing.assert_array_equal(s_numba[:, 1], s_ref[:, 1])


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
