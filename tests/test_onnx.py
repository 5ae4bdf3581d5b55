"""ONNX export: onnxruntime runs what ``Network.to_onnx`` and ``fastnn export`` write and
gets ``Network.forward``'s numbers; skl2onnx converts pipelines holding fastnn's
estimators (``import fastnn.onnx``) to graphs that predict what the pipelines do.

The optional packages (onnx, onnxruntime, skl2onnx: ``pip install "fastnn[onnx]"``)
are skipped where they are missing, except by the tests of the message a missing
package gives.
"""

import importlib
import re
import sys
import warnings

import numpy as np
import pytest

from fastnn import Network
from fastnn.cli import main

from helpers import ACTIVATIONS, DTYPES, OUTPUTS, make_problem, relative_error

#: onnxruntime against Network.forward, per dtype (float32: the issue's bar)
RTOL = {"float32": 1e-5, "float64": 1e-12}
#: ONNX attributes are 32-bit floats, so a float64 LeakyRelu's slope is
#: float32(0.01) = 0.01 - 2.2e-10: the negative side differs by ~2e-10 relative
LEAKY_RTOL_FLOAT64 = 1e-9


def runtime():
    """onnxruntime, or skip."""
    pytest.importorskip("onnx", reason='ONNX export needs onnx: pip install "fastnn[onnx]"')
    return pytest.importorskip("onnxruntime", reason='running ONNX graphs needs onnxruntime: '
                               'pip install "fastnn[onnx]"')


def run(model, X):
    """Every output of ``model`` (a ModelProto or a file) on ``X``, by name."""
    ort = runtime()
    source = model if isinstance(model, str) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))


#: hidden layers of different widths, 3 output units
SIZES = [5, 7, 6, 3]


# ---------------------------------------------------------------- Network.to_onnx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnx_matches_forward(activation, output, dtype):
    """Every activation x output pair, in both dtypes, on inputs spread wide enough
    to reach every activation's negative side and saturation."""
    runtime()
    sizes = SIZES
    net = Network(sizes, activation=activation, output=output, dtype=dtype, seed=1,
                  backend="numpy")
    X = (3 * make_problem(sizes, output, 40, seed=2)[0]).astype(dtype)
    model = net.to_onnx()
    outputs = run(model, X)
    name = "values" if output in ("identity", "exp") else "probabilities"
    assert list(outputs) == [name]
    assert outputs[name].dtype == np.dtype(dtype)
    assert outputs[name].shape == (40, sizes[-1])
    rtol = LEAKY_RTOL_FLOAT64 if (activation, dtype) == ("leaky_relu", "float64") else RTOL[dtype]
    assert relative_error(outputs[name], net.forward(X)) < rtol


def test_graph_is_the_plain_layers():
    """Gemm per layer, each hidden layer's own activation (a per-layer list), LeakyRelu
    with fastnn's slope, Softmax over the units, nothing for identity."""
    onnx = pytest.importorskip("onnx")
    net = Network([4, 6, 5, 5, 3], activation=["leaky_relu", "identity", "tanh"],
                  output="softmax")
    graph = net.to_onnx().graph
    assert [node.op_type for node in graph.node] == [
        "Gemm", "LeakyRelu", "Gemm", "Gemm", "Tanh", "Gemm", "Softmax"]
    attributes = {node.op_type: {a.name: onnx.helper.get_attribute_value(a)
                                 for a in node.attribute} for node in graph.node}
    assert attributes["LeakyRelu"]["alpha"] == pytest.approx(0.01)
    assert attributes["Softmax"]["axis"] == 1
    assert attributes["Gemm"]["transB"] == 1
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    np.testing.assert_array_equal(weights["W1"], net.weights[0])  # (d_1, d_0), as fastnn
    np.testing.assert_array_equal(weights["b4"], net.biases[3])
    batch = graph.input[0].type.tensor_type.shape.dim
    assert batch[0].dim_param == "batch" and batch[1].dim_value == 4
    identity = Network([4, 3, 2], activation="relu", output="identity").to_onnx()
    assert [node.op_type for node in identity.graph.node] == ["Gemm", "Relu", "Gemm"]


def test_per_layer_activations_and_kernels():
    """A per-layer list with the compiled kernels' forward pass (not the reference)."""
    runtime()
    net = Network([6, 8, 8, 7, 2], activation=["relu", "sigmoid", "leaky_relu"],
                  output="sigmoid", seed=4)
    X = 2 * make_problem(net.sizes, "sigmoid", 33, seed=5)[0].astype(np.float32)
    got = run(net.to_onnx(), X)["probabilities"]
    assert relative_error(got, net.forward(X)) < RTOL["float32"]


def test_dynamic_batch_any_row_count():
    runtime()
    net = Network([3, 4, 2], activation="tanh", output="identity", backend="numpy")
    model = net.to_onnx()
    rng = np.random.default_rng(0)
    for rows in (1, 2, 257):
        X = rng.standard_normal((rows, 3)).astype(np.float32)
        assert relative_error(run(model, X)["values"], net.forward(X)) < RTOL["float32"]


def test_dtype_override():
    """A float64 network served as float32 (and the reverse) agrees to float32's precision."""
    runtime()
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 4))
    net = Network([4, 5, 3], activation="relu", dtype="float64", backend="numpy")
    got = run(net.to_onnx(dtype="float32"), X.astype(np.float32))["probabilities"]
    assert got.dtype == np.float32
    assert relative_error(got, net.forward(X)) < RTOL["float32"]
    net32 = Network([4, 5, 3], activation="relu", dtype="float32", backend="numpy")
    got = run(net32.to_onnx(dtype=np.float64), X)["probabilities"]
    assert got.dtype == np.float64
    assert relative_error(got, net32.forward(X)) < RTOL["float32"]


def test_written_file_is_the_returned_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    runtime()
    net = Network([4, 5, 2], activation="sigmoid", output="softmax", backend="numpy")
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path, opset=13)
    assert onnx.load(path) == model
    onnx.checker.check_model(onnx.load(path), full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert model.ir_version == 7  # the oldest that carries opset 13: old runtimes load it
    assert net.to_onnx().opset_import[0].version == 17
    X = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    assert relative_error(run(str(path), X)["probabilities"], net.forward(X)) < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]  # no temporary left


@pytest.mark.parametrize("call, error, pattern", [
    (lambda net: net.to_onnx(opset=12), ValueError, "opset must be an integer >= 13"),
    (lambda net: net.to_onnx(opset=10_000), ValueError,
     r"opset 10000 is newer than the installed onnx .* expected an opset in 13\.\."),
    (lambda net: net.to_onnx(opset=17.0), TypeError, "opset must be an integer"),
    (lambda net: net.to_onnx(dtype="float16"), ValueError, "unsupported dtype 'float16'"),
    (lambda net: net.to_onnx(3), TypeError, "path must be a file path or None"),
], ids=["opset-old", "opset-unknown", "opset-float", "dtype", "path"])
def test_bad_arguments(call, error, pattern):
    pytest.importorskip("onnx")
    with pytest.raises(error, match=pattern):
        call(Network([3, 2], output="softmax"))


def test_missing_onnx_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    net = Network([3, 2], output="softmax")
    with pytest.raises(ImportError, match=r'needs the onnx package.*pip install "fastnn\[onnx\]"'):
        net.to_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# ---------------------------------------------------------------- fastnn export


def cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_export(tmp_path, capsys):
    runtime()
    net = Network([4, 6, 3], activation="leaky_relu", output="softmax", seed=2)
    net.save(tmp_path / "model.npz")
    status, out, err = cli(capsys, "export", tmp_path / "model.npz", tmp_path / "model.onnx")
    assert (status, err) == (0, "")
    assert "opset 17" in out and "output 'probabilities' (batch, 3)" in out
    X = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    got = run(str(tmp_path / "model.onnx"), X)["probabilities"]
    assert relative_error(got, net.forward(X)) < RTOL["float32"]

    status, out, err = cli(capsys, "export", tmp_path / "model.npz", tmp_path / "m64.onnx",
                           "--dtype", "float64", "--opset", "16")
    assert status == 0 and "ONNX opset 16" in out and "float64" in out
    got = run(str(tmp_path / "m64.onnx"), X.astype(np.float64))["probabilities"]
    assert got.dtype == np.float64 and relative_error(got, net.forward(X)) < RTOL["float32"]


@pytest.mark.parametrize("argv, pattern", [
    (["missing.npz", "out.onnx"], "fastnn export: error: model file missing.npz does not exist"),
    (["model.npz", "no/such/dir/out.onnx"], "TARGET .* does not exist"),
    (["model.npz", "out.onnx", "--opset", "12"], "expected an ONNX opset >= 13, got 12"),
    (["model.npz", "out.onnx", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["model.npz"], "the following arguments are required: TARGET"),
    (["data.npz", "out.onnx"], "fastnn export: error: .*data.npz"),
], ids=["no-model", "no-directory", "opset", "dtype", "no-target", "not-a-model"])
def test_cli_export_bad_input(tmp_path, capsys, monkeypatch, argv, pattern):
    pytest.importorskip("onnx")
    monkeypatch.chdir(tmp_path)
    Network([3, 2], output="softmax").save("model.npz")
    np.savez("data.npz", X_train=np.zeros((2, 3)))
    status, out, err = cli(capsys, "export", *argv)
    assert status == 2
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert re.search(pattern, err), err
    assert not (tmp_path / "out.onnx").exists()


def test_cli_export_without_onnx(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    Network([3, 2], output="softmax").save(tmp_path / "model.npz")
    status, out, err = cli(capsys, "export", tmp_path / "model.npz", tmp_path / "out.onnx")
    assert status == 2
    assert err.startswith("fastnn export: error:") and 'pip install "fastnn[onnx]"' in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- skl2onnx pipelines


def skl2onnx():
    """skl2onnx with fastnn's converters registered, or skip."""
    runtime()
    pytest.importorskip("sklearn")
    module = pytest.importorskip("skl2onnx", reason='pipelines to ONNX need skl2onnx: pip '
                                 'install "fastnn[onnx]"')
    importlib.import_module("fastnn.onnx")
    return module


def pipeline(estimator, X, y):
    """``StandardScaler`` then ``estimator``, fitted (convergence warnings ignored: a
    few hundred rows and the default epochs)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(StandardScaler(), estimator).fit(X, y)


def features(n=160, d=5, seed=0):
    """Features far from unit scale (what the scaler is for)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * np.array([1, 10, 0.1, 5, 2.0])[:d] + 3


def labels(kind, X):
    """Targets of several kinds from the features, learnable but not trivially."""
    binary = (X[:, 0] + X[:, 1] / 10 > 3).astype(np.int64)
    three = binary + (X[:, 2] > 3)
    if kind == "binary-int":
        return binary * 7 - 2  # labels -2 and 5
    if kind == "binary-bool":
        return binary.astype(bool)
    if kind == "multiclass-str":
        return np.array(["low", "mid", "high"])[three]
    if kind == "multiclass-float":
        return three.astype(np.float64) * 2  # 0., 2., 4.
    if kind == "multilabel":
        return np.c_[binary, X[:, 2] > 3, X[:, 3] > 3].astype(np.int64)
    raise AssertionError(kind)


def convert(pipe, X, zipmap=False):
    """The pipeline as ONNX for inputs like ``X``; probabilities as an array unless
    ``zipmap`` (skl2onnx's default: a list of {class: probability})."""
    from sklearn.base import is_classifier

    options = None if zipmap or not is_classifier(pipe) else {id(pipe[-1]): {"zipmap": False}}
    return skl2onnx().to_onnx(pipe, X[:1], options=options)


def assert_labels_match(got, expected, proba, dtype, multilabel=False):
    """Labels equal; in float32, rows within rounding of a tie (top two probabilities,
    or a label's probability and 0.5) may go either way."""
    if dtype == np.float64:
        np.testing.assert_array_equal(got, expected)
        return
    if multilabel:
        clear = (np.abs(proba - 0.5) > 1e-5).all(axis=1)
    else:
        top = np.sort(proba, axis=1)
        clear = top[:, -1] - top[:, -2] > 1e-5
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(got[clear], expected[clear])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["binary-int", "binary-bool", "multiclass-str",
                                  "multiclass-float", "multilabel"])
def test_classifier_pipeline(kind, dtype):
    skl2onnx()
    from fastnn.sklearn import MLPClassifier

    X = features()
    y = labels(kind, X)
    pipe = pipeline(MLPClassifier(hidden_layer_sizes=(16,), activation="tanh",
                                  random_state=0), X, y)
    Xd = X.astype(dtype)
    outputs = run(convert(pipe, Xd), Xd)
    assert list(outputs) == ["label", "probabilities"]
    label, proba = outputs["label"], outputs["probabilities"]
    expected = pipe.predict_proba(X)
    assert proba.dtype == dtype and proba.shape == expected.shape
    assert relative_error(proba, expected) < (1e-12 if dtype == np.float64 else 1e-5)
    predicted = pipe.predict(X)
    if kind == "multiclass-str":
        assert label.dtype == object
    else:
        assert label.dtype == np.int64  # skl2onnx's labels: int64 or strings
        predicted = predicted.astype(np.int64)
    assert label.shape == predicted.shape
    assert_labels_match(label, predicted, proba, dtype, multilabel=kind == "multilabel")
    assert len(np.unique(predicted)) > 1  # the test means something


def test_classifier_zipmap():
    """skl2onnx's default output: one {class: probability} per row (float32: ONNX's
    ZipMap takes float tensors only, for scikit-learn's own MLP as well)."""
    skl2onnx()
    from fastnn.sklearn import MLPClassifier

    X = features()
    y = labels("multiclass-str", X)
    pipe = pipeline(MLPClassifier(hidden_layer_sizes=(8,), random_state=0), X, y)
    X32 = X.astype(np.float32)
    outputs = run(convert(pipe, X32, zipmap=True), X32)
    expected = pipe.predict_proba(X)
    rows = outputs["output_probability"]
    assert len(rows) == len(X) and sorted(rows[0]) == sorted(pipe.classes_)
    got = np.array([[row[c] for c in pipe.classes_] for row in rows])
    assert relative_error(got, expected) < 1e-5
    np.testing.assert_array_equal(outputs["output_label"], pipe.predict(X))


@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_pipeline(n_targets):
    skl2onnx()
    from fastnn.sklearn import MLPRegressor

    X = features()
    targets = np.c_[X[:, 0] - X[:, 1] / 10, np.tanh(X[:, 2]), X[:, 3] / 5][:, :n_targets]
    y = targets[:, 0] if n_targets == 1 else targets
    pipe = pipeline(MLPRegressor(hidden_layer_sizes=(16,), activation="relu",
                                 random_state=0), X, y)
    expected = pipe.predict(X).reshape(len(X), n_targets)
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        outputs = run(convert(pipe, X.astype(dtype)), X.astype(dtype))
        assert list(outputs) == ["variable"]
        got = outputs["variable"]
        assert got.dtype == dtype and got.shape == (len(X), n_targets)
        assert relative_error(got, expected) < rtol


def output_signature(model):
    """``(name, element type, rank)`` of each graph output."""
    signature = []
    for output in model.graph.output:
        kind = output.type.WhichOneof("value")
        if kind == "tensor_type":
            tensor = output.type.tensor_type
            signature.append((output.name, tensor.elem_type, len(tensor.shape.dim)))
        else:
            signature.append((output.name, kind, None))
    return signature


@pytest.mark.parametrize("kind", ["binary-int", "multiclass-str"])
@pytest.mark.parametrize("zipmap", [False, True], ids=["arrays", "zipmap"])
def test_same_outputs_as_scikit_learns_mlp(kind, zipmap):
    """The graph's outputs have the names, types and ranks skl2onnx gives
    scikit-learn's own MLPClassifier, and the same labels on clear-cut rows."""
    skl2onnx()
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from fastnn.sklearn import MLPClassifier

    X = features()
    y = labels(kind, X)
    ours = pipeline(MLPClassifier(hidden_layer_sizes=(16,), random_state=0), X, y)
    theirs = pipeline(SklearnMLP(hidden_layer_sizes=(16,), random_state=0), X, y)
    Xc = X.astype(np.float32) if zipmap else X  # ZipMap takes float32 only
    ours_model, theirs_model = convert(ours, Xc, zipmap), convert(theirs, Xc, zipmap)
    assert output_signature(ours_model) == output_signature(theirs_model)
    assert [i.name for i in ours_model.graph.input] == [i.name for i in theirs_model.graph.input]
    if not zipmap:
        a, b = run(ours_model, X), run(theirs_model, X)
        assert a["label"].dtype == b["label"].dtype and a["label"].shape == b["label"].shape


def test_regressor_outputs_as_scikit_learns():
    skl2onnx()
    from sklearn.neural_network import MLPRegressor as SklearnMLP

    from fastnn.sklearn import MLPRegressor

    X = features()
    y = X[:, 0] - X[:, 1] / 10
    ours = convert(pipeline(MLPRegressor(hidden_layer_sizes=(8,), random_state=0), X, y), X)
    theirs = convert(pipeline(SklearnMLP(hidden_layer_sizes=(8,), random_state=0), X, y), X)
    assert output_signature(ours) == output_signature(theirs)


def test_estimator_without_onnx_equivalent():
    """An output the converter does not know is refused, naming the ones it knows."""
    skl2onnx()
    from fastnn.sklearn import MLPClassifier

    X = features(60)
    pipe = pipeline(MLPClassifier(hidden_layer_sizes=(4,), random_state=0), X,
                    labels("multiclass-str", X))
    pipe[-1].out_activation_ = "softplus"
    with pytest.raises(ValueError, match=r"output 'softplus' has no ONNX equivalent here; "
                                         r"expected one of \['softmax', 'sigmoid'"):
        convert(pipe, X)


def test_register_is_idempotent():
    """Registering again (as a second import or a reload would) changes nothing."""
    skl2onnx()
    from fastnn.sklearn import MLPRegressor

    importlib.import_module("fastnn.onnx").register()
    X = features(60)
    pipe = pipeline(MLPRegressor(hidden_layer_sizes=(4,), random_state=0), X, X[:, 0])
    got = run(convert(pipe, X), X)["variable"]
    assert relative_error(got[:, 0], pipe.predict(X)) < 1e-12


def test_import_without_skl2onnx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "skl2onnx", None)
    monkeypatch.delitem(sys.modules, "fastnn.onnx", raising=False)
    with pytest.raises(ImportError, match=r'skl2onnx, which is not installed.*pip install '
                                          r'"fastnn\[onnx\]"'):
        importlib.import_module("fastnn.onnx")
