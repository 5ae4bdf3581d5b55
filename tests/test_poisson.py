"""The exp output and its Poisson loss through the public interface: scikit-learn's
values, the target checks, overflow, and a linear model that is a Poisson GLM.

(The kernel parity and finite-difference tests cover it with every other output.)
"""

import numpy as np
import pytest
from sklearn.linear_model import PoissonRegressor
from sklearn.neural_network._base import poisson_loss

from fastnn import Network

BACKENDS = ["numba", "numpy"]


def poisson_data(n, d, seed):
    """Features ``(n, d)`` and Poisson counts ``(n,)`` of a log-linear model."""
    rng = np.random.default_rng(seed)
    X = 0.5 * rng.standard_normal((n, d))
    mean = np.exp(0.5 + X @ rng.uniform(-0.6, 0.6, d))
    return X, rng.poisson(mean).astype(np.float64)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_is_scikit_learns_poisson_loss(backend, dtype):
    """Several output units, zero counts among the targets, with and without row weights."""
    rng = np.random.default_rng(0)
    net = Network([4, 6, 3], activation="tanh", output="exp", dtype=dtype, seed=1,
                  backend=backend)
    X = rng.standard_normal((50, 4))
    Y = rng.poisson(rng.uniform(0.1, 4.0, (50, 3))).astype(np.float64)
    assert (Y == 0).any(), "the 0 log 0 case must be exercised"
    weights = rng.uniform(0.0, 2.0, 50)
    predicted = net.forward(X).astype(np.float64)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(net.loss(X, Y), poisson_loss(Y, predicted), rtol=rtol)
    np.testing.assert_allclose(net.loss(X, Y, sample_weight=weights),
                               poisson_loss(Y, predicted, sample_weight=weights), rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_regression_interface(backend):
    """predict returns the means exp(z), score is R², no predict_proba, no error rate."""
    X, y = poisson_data(80, 3, seed=2)
    net = Network([3, 4, 1], activation="relu", output="exp", dtype="float64", seed=0,
                  backend=backend)
    history = net.fit(X, y, epochs=2, batch_size=16, lr=0.01, validation_split=0.25)
    predicted = net.predict(X)
    assert predicted.shape == (80,) and (predicted > 0).all()
    from sklearn.metrics import r2_score
    assert net.score(X, y) == pytest.approx(r2_score(y, predicted), rel=1e-12)
    with pytest.raises(ValueError, match="output is 'exp'"):
        net.predict_proba(X)
    assert "error" not in history and "val_r2" in history and "val_error" not in history
    with pytest.raises(ValueError, match="class_weight applies to single-label"):
        net.fit(X, y, epochs=1, class_weight="balanced")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad,message", [
    (-1.5, r"targets of the 'exp' \(Poisson\) output must be non-negative counts or rates; "
           r"got min -1\.5"),
    (np.nan, r"y contains 1 NaN or infinite value\(s\)"),
    (np.inf, r"y contains 1 NaN or infinite value\(s\)"),
], ids=["negative", "nan", "inf"])
def test_bad_targets_are_refused_and_leave_the_network_untouched(backend, bad, message):
    X, y = poisson_data(30, 3, seed=3)
    y[7] = bad
    net = Network([3, 1], output="exp", dtype="float64", seed=0, backend=backend)
    before = net.params.copy()
    for call in (lambda: net.fit(X, y, epochs=1), lambda: net.loss(X, y),
                 lambda: net.gradient(X, y), lambda: net.score(X, y)):
        with pytest.raises(ValueError, match=message):
            call()
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_overflowing_logits_are_infinite_not_errors(backend, dtype):
    """exp of a logit past the dtype's range is inf; nothing raises or warns."""
    net = Network([2, 1], output="exp", dtype=dtype, seed=0, backend=backend)
    net.params[...] = [400.0, 400.0, 0.0]  # z = 800 on the first row: exp overflows float64
    X = np.array([[1.0, 1.0], [0.0, 0.0]])
    y = np.array([3.0, 0.0])
    with np.errstate(all="raise"):
        A = net.forward(X)
        loss = net.loss(X, y)
    assert np.isposinf(A[0, 0]) and A[1, 0] == 1.0
    assert np.isposinf(loss)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_model_is_the_poisson_glm(backend):
    """A network without hidden layers is a Poisson GLM with the log link: full-batch
    gradient descent reaches scikit-learn's unpenalised PoissonRegressor."""
    X, y = poisson_data(400, 3, seed=4)
    glm = PoissonRegressor(alpha=0.0, tol=1e-12, max_iter=1000).fit(X, y)
    net = Network([3, 1], output="exp", dtype="float64", seed=0, backend=backend)
    start = net.predict(X)
    net.fit(X, y, epochs=200, batch_size=X.shape[0], lr=0.5, shuffle=False)
    assert np.abs(start / glm.predict(X) - 1).max() > 0.1, "the start must be far from it"
    # 1e-10 is reached after about 100 epochs; 1e-6 leaves room for rounding
    np.testing.assert_allclose(net.predict(X), glm.predict(X), rtol=1e-6)
    np.testing.assert_allclose(net.weights[0][0], glm.coef_, atol=1e-6)
    np.testing.assert_allclose(net.biases[0][0], glm.intercept_, atol=1e-6)
