"""Finite-difference checks of ``Network.gradient`` (float64, central differences).

``J(θ) = mean loss + (λ/2) Σ_l ‖W_l‖²`` is evaluated through ``Network.loss``
and every parameter of a small network is perturbed.  Max and mean relative
tolerances, as in umap's and scikit-learn's gradient tests.
"""

import numpy as np
import pytest

from fastnn import Network

from helpers import ACTIVATIONS, OUTPUTS, make_problem

EPS = 1e-6


def objective(net, X, y, weight_decay):
    return net.loss(X, y) + 0.5 * weight_decay * sum(float((W * W).sum()) for W in net.weights)


def numerical_gradient(net, X, y, weight_decay):
    grad = np.empty_like(net.params)
    for i in range(net.params.size):
        saved = net.params[i]
        net.params[i] = saved + EPS
        up = objective(net, X, y, weight_decay)
        net.params[i] = saved - EPS
        down = objective(net, X, y, weight_decay)
        net.params[i] = saved
        grad[i] = (up - down) / (2 * EPS)
    return grad


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["no-decay", "decay"])
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradient_matches_finite_differences(activation, output, weight_decay, backend):
    sizes = [4, 5, 3]
    net = Network(sizes, activation=activation, output=output, dtype="float64", seed=1,
                  backend=backend)
    # biases away from 0 so that every bias gradient is exercised, and kinks
    # (relu at 0) are not met by a perturbation of 1e-6
    net.params += 0.1 * np.random.default_rng(2).standard_normal(net.params.size)
    X, y = make_problem(sizes, output, 7, seed=3)
    analytic = net.gradient(X, y, weight_decay=weight_decay)
    numeric = numerical_gradient(net, X, y, weight_decay)
    scale = np.maximum(np.abs(numeric), 1e-3)
    error = np.abs(analytic - numeric) / scale
    assert error.max() < 1e-5, f"worst parameter {error.argmax()}: {error.max():.2e}"
    assert error.mean() < 1e-6
    assert np.abs(analytic).max() > 1e-3, "a vanishing gradient checks nothing"


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_gradient_of_deeper_mixed_network(backend):
    """Three hidden layers with a different activation each."""
    sizes = [3, 4, 4, 4, 2]
    net = Network(sizes, activation=["tanh", "leaky_relu", "sigmoid"], output="softmax",
                  dtype="float64", seed=4, backend=backend)
    net.params += 0.1 * np.random.default_rng(5).standard_normal(net.params.size)
    X, y = make_problem(sizes, "softmax", 6, seed=6)
    analytic = net.gradient(X, y, weight_decay=0.01)
    numeric = numerical_gradient(net, X, y, 0.01)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
