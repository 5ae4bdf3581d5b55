"""fit learns, is reproducible, and records what it did."""

import functools

import numpy as np
import pytest

from fastnn import History, Network
from fastnn.threads import available_threads

import helpers

#: Gaussian clusters: learnable to near-perfect accuracy
blobs = functools.partial(helpers.blobs, n=600, d=10)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_drives_loss_down_and_learns(backend, dtype):
    X, y = blobs()
    net = Network([10, 32, 3], dtype=dtype, seed=0, backend=backend)
    before = net.loss(X, y)
    history = net.fit(X, y, epochs=15, batch_size=32, lr=0.05, momentum=0.9)
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    assert net.loss(X, y) < 0.1 * before
    assert net.score(X, y) > 0.97


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_learns_xor_with_sigmoid_output(backend):
    """The notes' XOR: needs the hidden layer."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, dtype=float)
    y = np.logical_xor(X[:, 0], X[:, 1]).astype(int)
    net = Network([2, 8, 1], activation="tanh", output="sigmoid", dtype="float64", seed=3,
                  backend=backend)
    net.fit(X, y, epochs=300, batch_size=4, lr=0.5, momentum=0.9)
    assert net.score(X, y) == 1.0
    np.testing.assert_array_equal(net.predict(X[:4]), [0, 1, 1, 0])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_regression_reaches_high_r2(backend):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (400, 1))
    y = np.sin(3 * X[:, 0])
    net = Network([1, 32, 1], activation="tanh", output="identity", dtype="float64", seed=0,
                  backend=backend)
    net.fit(X, y, epochs=300, batch_size=20, lr=0.1, momentum=0.9)
    assert net.score(X, y) > 0.98


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_multilabel_sigmoid(backend):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 4))
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0, X[:, 3] < 0.5], axis=1).astype(int)
    net = Network([4, 32, 3], output="sigmoid", seed=0, backend=backend)
    net.fit(X, Y, epochs=100, batch_size=16, lr=0.05, momentum=0.9)
    assert net.score(X, Y) > 0.97
    assert net.predict(X).shape == (300, 3)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_probability_targets_train(output):
    """softmax accepts one-hot/probability rows, sigmoid soft labels in [0, 1]."""
    X, y = blobs(n=200, classes=2)
    Y = np.eye(2)[y] * 0.9 + 0.05 if output == "softmax" else (y[:, None] * 0.9 + 0.05)
    net = Network([10, 8, 2 if output == "softmax" else 1], output=output, seed=0)
    net.fit(X, Y, epochs=20, lr=0.1)
    assert net.score(X, y) > 0.95


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_same_seed_same_threads_bit_identical(backend, n_threads):
    if n_threads > available_threads():
        pytest.skip("needs 2 threads")
    X, y = blobs(n=500, d=64)
    runs = []
    for _ in range(2):
        net = Network([64, 96, 3], seed=11, backend=backend, n_threads=n_threads)
        net.fit(X, y, epochs=3, batch_size=50, lr=0.05, momentum=0.9, weight_decay=1e-4)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_different_seeds_differ():
    X, y = blobs(n=100)
    a = Network([10, 8, 3], seed=1)
    b = Network([10, 8, 3], seed=2)
    assert not np.array_equal(a.params, b.params)
    a.fit(X, y, epochs=1)
    b.params[...] = a.params
    b.fit(X, y, epochs=1)
    assert not np.array_equal(a.params, b.params), "shuffle order should follow the seed"


def test_shuffle_false_is_row_order_and_repeatable():
    X, y = blobs(n=90)
    a = Network([10, 8, 3], seed=1)
    b = Network([10, 8, 3], seed=5)
    b.params[...] = a.params
    a.fit(X, y, epochs=2, shuffle=False)
    b.fit(X, y, epochs=2, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_batch_sizes_per_sample_minibatch_full(batch_size):
    X, y = blobs(n=60)
    net = Network([10, 8, 3], seed=0)
    history = net.fit(X, y, epochs=2, batch_size=batch_size, lr=0.01)
    assert len(history) == 2 and np.isfinite(history["loss"]).all()


def test_history_records_every_epoch():
    X, y = blobs(n=100)
    net = Network([10, 8, 3], seed=0)
    history = net.fit(X, y, epochs=3)
    assert isinstance(history, History)
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "error", "lr", "time"}
    assert all(0 <= e <= 1 for e in history["error"])
    assert all(t > 0 for t in history["time"])
    again = net.fit(X, y, epochs=2)
    assert again.epoch == [3, 4], "epochs are counted over the network's life"
    regression = Network([10, 1], output="identity").fit(X, y.astype(float), epochs=1)
    assert "error" not in regression


def test_history_loss_is_mean_of_batch_losses_before_each_update():
    """With lr tiny the parameters barely move: the epoch loss equals the data loss."""
    X, y = blobs(n=64)
    net = Network([10, 8, 3], dtype="float64", seed=0)
    start = net.loss(X, y)
    history = net.fit(X, y, epochs=1, batch_size=16, lr=1e-12)
    assert history["loss"][0] == pytest.approx(start, rel=1e-9)


def test_zero_epochs_changes_nothing():
    X, y = blobs(n=50)
    net = Network([10, 8, 3], seed=0)
    before = net.params.copy()
    assert len(net.fit(X, y, epochs=0)) == 0
    np.testing.assert_array_equal(net.params, before)


def test_n_threads_is_restored_after_calls():
    import numba
    if available_threads() < 2:
        pytest.skip("needs 2 threads")
    numba.set_num_threads(2)
    X, y = blobs(n=50)
    net = Network([10, 8, 3], n_threads=1)
    net.fit(X, y, epochs=1)
    net.predict(X)
    assert numba.get_num_threads() == 2
