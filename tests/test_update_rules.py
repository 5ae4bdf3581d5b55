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


def manual_adam(params, gradients, lr, betas, eps, weight_decay, decoupled, is_weight):
    """PyTorch's Adam/AdamW written out (bias-corrected, ε added to √v̂)."""
    params = params.copy()
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    for t, grad in enumerate(gradients, start=1):
        if decoupled:
            params = np.where(is_weight, params * (1 - lr * weight_decay), params)
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad ** 2
        m_hat = m / (1 - betas[0] ** t)
        v_hat = v / (1 - betas[1] ** t)
        params = params - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def weight_mask(net):
    mask = np.zeros(net.params.size, dtype=bool)
    for W in net.weights:
        start = (W.__array_interface__["data"][0] - net.params.__array_interface__["data"][0]) // 8
        mask[start:start + W.size] = True
    return mask


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_full_batch_adam_follows_the_formula(backend, optimizer):
    """Adam puts λW into the gradient; AdamW decays the weights (never the biases)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6))
    y = rng.integers(0, 3, 30)
    net = Network([6, 8, 3], activation="tanh", dtype="float64", seed=2, backend=backend)
    probe = Network([6, 8, 3], activation="tanh", dtype="float64", seed=2, backend=backend)
    lr, betas, eps, decay = 0.01, (0.8, 0.95), 1e-6, 0.1
    start = net.params.copy()
    mask = weight_mask(net)
    gradients = []
    for _ in range(4):
        coupled = decay if optimizer == "adam" else 0.0
        gradients.append(probe.gradient(X, y, weight_decay=coupled))
        probe.params[...] = manual_adam(start, gradients, lr, betas, eps, decay,
                                        optimizer == "adamw", mask)
    net.fit(X, y, epochs=4, batch_size=30, lr=lr, optimizer=optimizer, betas=betas, eps=eps,
            weight_decay=decay, shuffle=False)
    np.testing.assert_allclose(net.params, probe.params, rtol=1e-12, atol=1e-14)
    biases_moved_by_adam_only = manual_adam(start, gradients, lr, betas, eps, 0.0, False, mask)
    if optimizer == "adamw":
        np.testing.assert_allclose(net.params[~mask], biases_moved_by_adam_only[~mask],
                                   rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clipping_bounds_the_global_norm(backend):
    """One full-batch SGD step with clip_norm moves θ by at most lr · clip_norm."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 5)) * 10
    y = rng.integers(0, 2, 40)
    net = Network([5, 6, 2], dtype="float64", seed=1, backend=backend)
    grad = net.gradient(X, y)
    norm = np.linalg.norm(grad)
    assert norm > 1.0
    before = net.params.copy()
    net.fit(X, y, epochs=1, batch_size=40, lr=0.1, clip_norm=1.0, shuffle=False)
    # PyTorch's factor clip / (norm + 1e-6)
    np.testing.assert_allclose(before - net.params, 0.1 * grad * (1.0 / (norm + 1e-6)),
                               rtol=1e-10)
    unclipped = Network([5, 6, 2], dtype="float64", seed=1, backend=backend)
    unclipped.fit(X, y, epochs=1, batch_size=40, lr=0.1, clip_norm=1e6, shuffle=False)
    np.testing.assert_allclose(before - unclipped.params, 0.1 * grad, rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer,options", [
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", dict(weight_decay=0.01)),
    ("adamw", dict(weight_decay=0.01)),
], ids=["nesterov", "adam", "adamw"])
def test_matches_pytorch_optimizers(backend, optimizer, options):
    """The same network, data and steps in PyTorch (skipped where it is not installed).

    PyTorch decays every parameter it is given, so the biases go in their
    own group with weight_decay 0 (docs/design.md, section 4: biases are never decayed).
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 4))
    y = rng.integers(0, 3, 16)
    net = Network([4, 5, 3], activation="tanh", dtype="float64", init="torch", seed=3,
                  backend=backend)
    layers = [torch.nn.Linear(4, 5).double(), torch.nn.Linear(5, 3).double()]
    with torch.no_grad():
        for layer, W, b in zip(layers, net.weights, net.biases):
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.copy_(torch.from_numpy(b))
    options = dict(options)  # the parametrized dict is shared between runs
    decay = options.pop("weight_decay")
    groups = [{"params": [l.weight for l in layers], "weight_decay": decay},
              {"params": [l.bias for l in layers], "weight_decay": 0.0}]
    lr = 0.1 if optimizer == "sgd" else 0.01
    make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    torch_opt = make[optimizer](groups, lr=lr, **options)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(5):
        torch_opt.zero_grad()
        logits = layers[1](torch.tanh(layers[0](Xt)))
        torch.nn.functional.cross_entropy(logits, yt).backward()
        torch_opt.step()
    net.fit(X, y, epochs=5, batch_size=16, lr=lr, optimizer=optimizer, weight_decay=decay,
            shuffle=False, **options)
    for layer, W, b in zip(layers, net.weights, net.biases):
        np.testing.assert_allclose(W, layer.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_two_layer_regression_step(backend):
    """Seed 003, eqs. 6.24-6.27: one SGD step of a 2-2-1 relu regression net.

    The notes' loss is ``(y - z)²`` (so ``dz = -2(y - z)``); docs/design.md, section 2, uses
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
