"""Every layer step against NumPy, on every path it can take: the small loops
(a few rows, a rank-1 or rank-2 update), one BLAS call (small, or a short
inner size), and BLAS split among threads by columns and by rows of the result.

Each step runs alone, as a one-row plan (:mod:`fastnn.kernels.plans`), on
buffers filled with random numbers, and is compared with the formula of
:mod:`fastnn.kernels.layer_steps` evaluated in float64.
"""

import numpy as np
import pytest

from fastnn import codes, reference
from fastnn.kernels import address_table, layer_steps, plans
from fastnn.kernels.config import MIN_PARALLEL_INNER
from fastnn.kernels.native_calls import (
    DELTA_LEAF,
    FORWARD_LEAF,
    GRADIENT_LEAF,
    OUTPUT_LEAF,
    PARALLEL_LEAF,
    SGD_LEAF,
)
from fastnn.kernels.small_matmul import SMALL_RANK, SMALL_ROWS
from fastnn.layout import layer_table, n_params, n_units, parameter_views, workspace_block
from fastnn.optim import step_settings
from fastnn.threads import thread_scope

#: the wide layer (96 units) makes every product big enough to split; the
#: narrow one (MIN_PARALLEL_INNER - 1 units) gives a short inner size
SIZES = [48, 96, MIN_PARALLEL_INNER - 1, 5]
HIDDEN = np.array([codes.TANH, codes.LEAKY_RELU], dtype=np.int64)
# rows: one, a rank-2 update, the most the small loops take, one more, an odd
# batch (splits by columns), more rows than units (splits by rows)
ROWS = [1, SMALL_RANK, SMALL_ROWS, SMALL_ROWS + 1, 67, 400]
TOL = {"float32": 2e-5, "float64": 1e-12}
ALL_SLOTS = (FORWARD_LEAF, DELTA_LEAF, SGD_LEAF, GRADIENT_LEAF, OUTPUT_LEAF, PARALLEL_LEAF)


class Buffers:
    """Random parameters, gradient, optimizer state and workspaces for ``n`` rows."""

    def __init__(self, dtype, n, seed=0):
        rng = np.random.default_rng(seed)
        self.table = layer_table(SIZES)
        self.dtype = np.dtype(dtype)
        self.n = n
        size = n_params(self.table)
        self.params = rng.standard_normal(size).astype(dtype) * 0.3
        self.grad = rng.standard_normal(size).astype(dtype)
        self.state = np.abs(rng.standard_normal((2, size))).astype(dtype)
        self.X = rng.standard_normal((n, SIZES[0])).astype(dtype)
        self.acts = rng.uniform(-0.9, 0.9, n * n_units(self.table)).astype(dtype)
        self.deltas = rng.standard_normal(n * n_units(self.table)).astype(dtype)

    def block(self, buffer, layer):
        return workspace_block(buffer, self.table, layer, self.n)

    def layer_input(self, layer):
        return self.X if layer == 0 else self.block(self.acts, layer - 1)

    def run(self, kind, layer, settings, n_threads, step=None):
        plan = np.array([[kind, layer]], dtype=np.int64)
        step = np.zeros(1, dtype=np.int64) if step is None else step
        weights = np.empty(0, dtype=self.dtype)
        with thread_scope(n_threads, "numba"):
            leaves = address_table(self.dtype, ALL_SLOTS)
            plans.run_plan(leaves, plan, self.params, self.grad, self.state, self.table, HIDDEN,
                           0, self.X, self.X, weights, 1.0, np.empty(0, dtype=np.int64), 1,
                           settings, step, self.X, self.X, weights, self.acts, self.deltas,
                           np.empty((0, 3)), n_threads)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _close(actual, expected, dtype):
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol,
                               atol=tol * max(np.abs(expected).max(), 1.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_forward(dtype, n, layer, n_threads):
    b = Buffers(dtype, n)
    weights, biases = parameter_views(b.params, b.table)
    A, W, bias = _f64(b.layer_input(layer)), _f64(weights[layer]), _f64(biases[layer])
    code = HIDDEN[layer] if layer < 2 else codes.IDENTITY
    expected = reference.activate(code, A @ W.T + bias)
    b.run(layer_steps.FORWARD, layer, step_settings(dtype), n_threads)
    _close(b.block(b.acts, layer), expected, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layer", [1, 2])
def test_delta(dtype, n, layer, n_threads):
    b = Buffers(dtype, n)
    W = _f64(parameter_views(b.params, b.table)[0][layer])
    A_below = _f64(b.block(b.acts, layer - 1))
    expected = (_f64(b.block(b.deltas, layer)) @ W) * reference.derivative_from_activation(
        HIDDEN[layer - 1], A_below)
    b.run(layer_steps.DELTA, layer, step_settings(dtype), n_threads)
    _close(b.block(b.deltas, layer - 1), expected, dtype)


def _gradient(b, layer, weight_decay):
    D = _f64(b.block(b.deltas, layer))
    W = _f64(parameter_views(b.params, b.table)[0][layer])
    return D.T @ _f64(b.layer_input(layer)) + weight_decay * W, D.sum(axis=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layer", [0, 1, 2])
@pytest.mark.parametrize("weight_decay", [0.0, 0.03], ids=["plain", "decay"])
def test_gradient(dtype, n, layer, weight_decay, n_threads):
    b = Buffers(dtype, n)
    grad_W, grad_b = _gradient(b, layer, weight_decay)
    b.run(layer_steps.GRADIENT, layer, step_settings(dtype, weight_decay=weight_decay),
          n_threads)
    weights, biases = parameter_views(b.grad, b.table)
    _close(weights[layer], grad_W, dtype)
    _close(biases[layer], grad_b, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("layer", [0, 2])
@pytest.mark.parametrize("weight_decay", [0.0, 0.03], ids=["plain", "decay"])
def test_fused_sgd(dtype, n, layer, weight_decay, n_threads):
    b = Buffers(dtype, n)
    lr = 0.05
    grad_W, grad_b = _gradient(b, layer, weight_decay)
    weights, biases = parameter_views(b.params, b.table)
    expected_W = _f64(weights[layer]) - lr * grad_W
    expected_b = _f64(biases[layer]) - lr * grad_b
    b.run(layer_steps.SGD, layer, step_settings(dtype, lr=lr, weight_decay=weight_decay),
          n_threads)
    _close(weights[layer], expected_W, dtype)
    _close(biases[layer], expected_b, dtype)


OPTIMIZERS = {
    "momentum": dict(optimizer="sgd", momentum=0.9),
    "nesterov": dict(optimizer="sgd", momentum=0.9, nesterov=True),
    "adam": dict(optimizer="adam", weight_decay=0.01),
    "adamw": dict(optimizer="adamw", weight_decay=0.01),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 67, 400])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("kind", ["STEP", "UPDATE"])
def test_optimizer_steps(dtype, n, optimizer, kind, n_threads):
    """STEP (the gradient, then the step on each block) and UPDATE (the step of a
    gradient already there) equal the reference's step of that gradient."""
    b = Buffers(dtype, n)
    layer = 1
    settings = step_settings(dtype, lr=0.01, **OPTIMIZERS[optimizer])
    grad = b.grad.copy()
    if kind == "STEP":
        decay = 0.0 if optimizer == "adamw" else settings.weight_decay
        grad_W, grad_b = _gradient(b, layer, decay)
        weights, biases = parameter_views(grad, b.table)
        weights[layer][...] = grad_W
        biases[layer][...] = grad_b
    # the reference steps the whole buffer (counting its step 4 -> 5); the
    # one-row plan has no SCALARS row, so it steps with the count it is given
    params, state = b.params.copy(), b.state.copy()
    reference.optimizer_step(params, grad.copy(), state, b.table, settings,
                             np.array([4], dtype=np.int64))
    b.run(getattr(layer_steps, kind), layer, settings, n_threads,
          step=np.array([5], dtype=np.int64))
    got_W, got_b = parameter_views(b.params, b.table)
    want_W, want_b = parameter_views(params, b.table)
    _close(got_W[layer], _f64(want_W[layer]), dtype)
    _close(got_b[layer], _f64(want_b[layer]), dtype)
    # the other layers are untouched
    np.testing.assert_array_equal(got_W[0], parameter_views(Buffers(dtype, n).params,
                                                            b.table)[0][0])
