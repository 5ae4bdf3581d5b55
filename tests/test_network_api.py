"""The public API (docs/design.md, section 6): shapes, views, initialisation, conversions, files."""

import numpy as np
import pytest

from fastnn import Network


def test_params_is_one_flat_buffer_and_layers_are_views():
    net = Network([5, 4, 3])
    assert net.params.flags.c_contiguous and net.params.ndim == 1
    assert net.n_params == 5 * 4 + 4 + 4 * 3 + 3
    assert [W.shape for W in net.weights] == [(4, 5), (3, 4)]
    assert [b.shape for b in net.biases] == [(4,), (3,)]
    net.weights[1][2, 3] = 42.0
    net.biases[0][1] = -7.0
    assert 42.0 in net.params and -7.0 in net.params
    net.params[:] = 0
    assert not net.weights[0].any()


def test_forward_predict_shapes_softmax():
    net = Network([6, 5, 4])
    X = np.random.default_rng(0).standard_normal((9, 6))
    A = net.forward(X)
    assert A.shape == (9, 4) and A.dtype == np.float32
    np.testing.assert_allclose(A.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(net.predict(X), A.argmax(axis=1))
    np.testing.assert_array_equal(net.predict_proba(X), A)


def test_forward_predict_shapes_sigmoid_and_identity():
    X = np.random.default_rng(0).standard_normal((9, 6))
    binary = Network([6, 5, 1], output="sigmoid")
    assert binary.predict(X).shape == (9,)
    assert set(np.unique(binary.predict(X))) <= {0, 1}
    assert ((binary.predict_proba(X) > 0) & (binary.predict_proba(X) < 1)).all()
    regression = Network([6, 5, 2], output="identity")
    assert regression.predict(X).shape == (9, 2)
    assert Network([6, 1], output="identity").predict(X).shape == (9,)
    with pytest.raises(ValueError, match="predict_proba needs a softmax or sigmoid"):
        regression.predict_proba(X)


def test_forward_in_chunks_equals_one_pass():
    from fastnn import evaluation
    rows = evaluation.CHUNK_ROWS + 37
    X = np.random.default_rng(1).standard_normal((rows, 8))
    net = Network([8, 6, 3], dtype="float64")
    whole = net.forward(X)
    np.testing.assert_allclose(whole[-37:], net.forward(X[-37:]), rtol=1e-13)
    assert net.loss(X, np.zeros(rows, int)) == pytest.approx(
        np.mean(-np.log(whole[:, 0])), rel=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backends_agree_through_the_api(dtype):
    X = np.random.default_rng(2).standard_normal((40, 8))
    y = np.arange(40) % 3
    nets = [Network([8, 6, 3], dtype=dtype, backend=b, seed=3) for b in ("numba", "numpy")]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(nets[0].forward(X), nets[1].forward(X), rtol=tol, atol=tol)
    assert nets[0].loss(X, y) == pytest.approx(nets[1].loss(X, y), rel=tol)
    np.testing.assert_allclose(nets[0].gradient(X, y), nets[1].gradient(X, y), rtol=tol,
                               atol=tol)


def test_backend_and_threads_can_change_after_construction():
    net = Network([4, 3, 2])
    net.backend = "numpy"
    net.n_threads = 1
    assert (net.backend, net.n_threads) == ("numpy", 1)
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        net.backend = "cuda"
    assert net.backend == "numpy"


def test_initialisation_schemes():
    he = Network([400, 300, 10], activation="relu", dtype="float64", seed=0)
    assert he.weights[0].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)
    bound = np.sqrt(6 / (300 + 10))
    assert np.abs(he.weights[1]).max() <= bound
    assert not any(b.any() for b in he.biases), "biases start at 0"
    glorot = Network([400, 300, 10], activation="tanh", dtype="float64", seed=0)
    assert np.abs(glorot.weights[0]).max() <= np.sqrt(6 / 700)
    torch = Network([400, 300, 10], init="torch", dtype="float64", seed=0)
    for W, b in zip(torch.weights, torch.biases):
        limit = 1 / np.sqrt(W.shape[1])
        assert np.abs(W).max() <= limit and np.abs(b).max() <= limit and b.any()
    assert Network([3, 2], seed=None).params.any(), "never all-zero"


def test_same_seed_same_start_in_both_dtypes():
    a = Network([10, 7, 3], dtype="float32", seed=4)
    b = Network([10, 7, 3], dtype="float64", seed=4)
    np.testing.assert_array_equal(a.params, b.params.astype(np.float32))
    assert not np.array_equal(a.params, Network([10, 7, 3], seed=5).params)


def test_per_layer_activations():
    net = Network([3, 4, 4, 2], activation=["tanh", "relu"])
    assert net.activation == ("tanh", "relu")


@pytest.mark.parametrize("convert", [
    lambda X: X.astype(np.int64),
    lambda X: np.asfortranarray(X),
    lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    lambda X: X.tolist(),
], ids=["int", "fortran", "strided", "list"])
def test_inputs_are_converted_not_refused(convert):
    X = np.random.default_rng(0).integers(-3, 3, (12, 5)).astype(np.float64)
    net = Network([5, 4, 3], dtype="float64")
    expected = net.forward(X)
    np.testing.assert_allclose(net.forward(convert(X)), expected)


def test_readonly_input_is_accepted():
    X = np.random.default_rng(0).standard_normal((12, 5))
    X.setflags(write=False)
    y = np.arange(12) % 3
    y.setflags(write=False)
    net = Network([5, 4, 3])
    net.fit(X, y, epochs=1)
    assert net.predict(X).shape == (12,)


def test_save_load_round_trip(tmp_path):
    X = np.random.default_rng(0).standard_normal((30, 5))
    y = np.arange(30) % 3
    net = Network([5, 6, 4, 3], activation=["tanh", "leaky_relu"], dtype="float64", seed=3)
    net.fit(X, y, epochs=2)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = Network.load(path)
    assert (loaded.sizes, loaded.activation, loaded.output, loaded.dtype) == (
        net.sizes, net.activation, net.output, net.dtype)
    np.testing.assert_array_equal(loaded.params, net.params)
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))
    # the shuffle stream continues where it was: further training matches
    net.fit(X, y, epochs=1)
    loaded.fit(X, y, epochs=1)
    np.testing.assert_array_equal(loaded.params, net.params)


def test_save_uses_the_name_given(tmp_path):
    path = tmp_path / "model.fastnn"
    Network([3, 2]).save(path)
    assert path.exists() and not (tmp_path / "model.fastnn.npz").exists()


def test_score_accuracy_and_r2():
    X = np.random.default_rng(0).standard_normal((50, 4))
    net = Network([4, 3], output="identity", dtype="float64")
    perfect = net.forward(X)
    assert net.score(X, perfect) == pytest.approx(1.0)
    classifier = Network([4, 3])
    assert classifier.score(X, classifier.predict(X)) == 1.0


def test_repr_names_the_network():
    text = repr(Network([4, 3, 2], activation="tanh", backend="numpy"))
    assert "Network([4, 3, 2]" in text and "tanh" in text and "numpy" in text


@pytest.mark.parametrize("copy_it", ["pickle", "deepcopy"])
def test_copies_keep_weights_as_views_of_their_own_params(copy_it):
    import copy
    import pickle
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = np.arange(20) % 2
    net = Network([3, 4, 2], seed=0)
    net.fit(X, y, epochs=1, momentum=0.9)
    twin = pickle.loads(pickle.dumps(net)) if copy_it == "pickle" else copy.deepcopy(net)
    assert np.shares_memory(twin.weights[0], twin.params)
    assert not np.shares_memory(twin.params, net.params)
    np.testing.assert_array_equal(twin.params, net.params)
    twin.fit(X, y, epochs=1, momentum=0.9, warm_start=True)
    net.fit(X, y, epochs=1, momentum=0.9, warm_start=True)
    np.testing.assert_array_equal(twin.weights[0], net.weights[0])


def test_seed_none_records_the_entropy_it_drew():
    fresh = Network([5, 4, 3], seed=None)
    assert isinstance(fresh.seed, int)
    np.testing.assert_array_equal(Network([5, 4, 3], seed=fresh.seed).params, fresh.params)
    assert not np.array_equal(Network([5, 4, 3], seed=None).params, fresh.params)
