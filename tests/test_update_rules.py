"""The SGD step against its formulas, and one step computed by hand from the notes."""

import numpy as np
import pytest

from fastnn import Network

BACKENDS = ["numba", "numpy"]


def manual_sgd(params, gradients, lr, momentum, nesterov):
    """PyTorch's SGD (dampening 0), written out step by step."""
    params = params.copy()
    velocity = np.zeros_like(params)
    for step, grad in enumerate(gradients):
        if momentum == 0:
            params = params - lr * grad
            continue
        velocity = grad.copy() if step == 0 else momentum * velocity + grad
        params = params - lr * (grad + momentum * velocity if nesterov else velocity)
    return params


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                               (0.5, True)])
def test_full_batch_fit_follows_the_update_formula(backend, momentum, nesterov):
    """Full-batch GD for 4 epochs equals the formula applied to ``Network.gradient``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6))
    y = rng.integers(0, 3, 30)
    net = Network([6, 8, 3], activation="tanh", dtype="float64", seed=2, backend=backend)
    probe = Network([6, 8, 3], activation="tanh", dtype="float64", seed=2, backend=backend)
    lr, decay = 0.2, 0.01

    # replay: gradients along the formula's own trajectory
    gradients = []
    for _ in range(4):
        gradients.append(probe.gradient(X, y, weight_decay=decay))
        probe.params[...] = manual_sgd(net.params, gradients, lr, momentum, nesterov)

    net.fit(X, y, epochs=4, batch_size=30, lr=lr, momentum=momentum, nesterov=nesterov,
            weight_decay=decay, shuffle=False)
    np.testing.assert_allclose(net.params, probe.params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_two_layer_regression_step(backend):
    """Seed 003, eqs. 6.24-6.27: one SGD step of a 2-2-1 relu regression net.

    The notes' loss is ``(y - z)²`` (so ``dz = -2(y - z)``); SPEC uses
    ``½(ŷ - y)²`` (so ``δ = ŷ - y``).  With x = (1, 2), y = 1:
    z1 = W1 x + b1 = (0.5, 0.6) = q (relu), ŷ = W2 q + b2 = 0.09, loss 0.41405,
    δ2 = -0.91, ∂W2 = δ2 q = (-0.455, -0.546), ∂b2 = -0.91,
    δ1 = W2ᵀ δ2 ⊙ relu'(z1) = (-0.455, 0.546), ∂W1 = δ1 xᵀ, ∂b1 = δ1.
    """
    net = Network([2, 2, 1], activation="relu", output="identity", dtype="float64",
                  backend=backend)
    net.weights[0][...] = [[0.1, 0.2], [-0.3, 0.4]]
    net.biases[0][...] = [0.0, 0.1]
    net.weights[1][...] = [[0.5, -0.6]]
    net.biases[1][...] = [0.2]
    X = np.array([[1.0, 2.0]])
    y = np.array([1.0])

    assert net.forward(X)[0, 0] == pytest.approx(0.09, abs=1e-15)
    assert net.loss(X, y) == pytest.approx(0.41405, abs=1e-15)
    expected_gradient = [-0.455, -0.91, 0.546, 1.092,   # ∂W1, row-major
                         -0.455, 0.546,                 # ∂b1
                         -0.455, -0.546,                # ∂W2
                         -0.91]                         # ∂b2
    np.testing.assert_allclose(net.gradient(X, y), expected_gradient, atol=1e-14)

    net.fit(X, y, epochs=1, batch_size=1, lr=0.1, shuffle=False)
    np.testing.assert_allclose(net.weights[0], [[0.1455, 0.291], [-0.3546, 0.2908]], atol=1e-14)
    np.testing.assert_allclose(net.biases[0], [0.0455, 0.0454], atol=1e-14)
    np.testing.assert_allclose(net.weights[1], [[0.5455, -0.5454]], atol=1e-14)
    np.testing.assert_allclose(net.biases[1], [0.291], atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_last_batch_is_averaged_over_its_own_size(backend):
    """Batches of 4, 4, 2 rows: each step uses its own batch's mean gradient."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((10, 3))
    y = rng.standard_normal(10)
    net = Network([3, 1], output="identity", dtype="float64", seed=0, backend=backend)
    probe = Network([3, 1], output="identity", dtype="float64", seed=0, backend=backend)
    for rows in (slice(0, 4), slice(4, 8), slice(8, 10)):
        probe.params -= 0.1 * probe.gradient(X[rows], y[rows])
    net.fit(X, y, epochs=1, batch_size=4, lr=0.1, shuffle=False)
    np.testing.assert_allclose(net.params, probe.params, rtol=1e-13)
