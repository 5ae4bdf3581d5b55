"""Sparse X through the Python API: the numbers of the dense X it stands for, every
scipy.sparse format, every fit feature, and never a dense copy.

Every test runs on both backends.  Bad sparse input is in test_bad_input.py, the
estimators' sparse input in test_sklearn.py, sharded sparse training in
test_distributed.py; the CSR kernels themselves in test_sparse_kernels.py.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse

from fastnn import Network
from fastnn.streaming import StreamDataError
from fastnn.validation import as_sparse_features
from fastnn.workspace import Workspace

import helpers
from helpers import PARITY_RTOL, relative_error

BACKENDS = ["numba", "numpy"]
SIZES = [40, 16, 3]

#: the fits compared sparse against dense: each optimizer path of the kernels
FITS = {"sgd": dict(lr=0.1, batch_size=16),
        "momentum": dict(lr=0.05, batch_size=16, momentum=0.9, nesterov=True),
        "adam": dict(lr=0.01, batch_size=16, optimizer="adam", weight_decay=1e-3),
        "per-sample": dict(lr=0.02, batch_size=1)}


def pair(backend, dtype="float64", sizes=SIZES, **options):
    """Two identical networks: one for the sparse X, one for its dense twin."""
    return tuple(Network(sizes, dtype=dtype, seed=3, backend=backend, **options)
                 for _ in range(2))


# ------------------------------------------------------------ the dense numbers

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fit", list(FITS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_fit_gives_the_parameters_of_the_dense_fit(backend, fit, dtype):
    X, y = helpers.sparse_problem()
    sparse, dense = pair(backend, dtype)
    start = sparse.params.copy()
    history = sparse.fit(X, y, epochs=3, **FITS[fit])
    expected = dense.fit(X.toarray(), y, epochs=3, **FITS[fit])
    assert relative_error(sparse.params, dense.params) < PARITY_RTOL[dtype]
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=100 * PARITY_RTOL[dtype])
    assert relative_error(sparse.params, start) > 1e-2, "the fit must have moved the weights"


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_method_taking_X_agrees_sparse_and_dense(backend):
    X, y = helpers.sparse_problem()
    dense_X = X.toarray()
    net = Network(SIZES, dtype="float64", seed=1, backend=backend)
    net.fit(dense_X, y, epochs=20, lr=0.1)
    w = np.random.default_rng(2).uniform(0.0, 2.0, X.shape[0])
    rtol = PARITY_RTOL["float64"]
    np.testing.assert_allclose(net.forward(X), net.forward(dense_X), rtol=rtol)
    np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(dense_X), rtol=rtol)
    np.testing.assert_array_equal(net.predict(X), net.predict(dense_X))
    assert net.loss(X, y, sample_weight=w) == pytest.approx(
        net.loss(dense_X, y, sample_weight=w), rel=rtol)
    assert net.score(X, y) == net.score(dense_X, y) > 0.5
    gradient = net.gradient(X, y, weight_decay=1e-2, sample_weight=w)
    assert relative_error(gradient, net.gradient(dense_X, y, weight_decay=1e-2,
                                                 sample_weight=w)) < rtol

    # a regression output, scored by R²
    targets = np.asarray(X @ np.linspace(-1.0, 1.0, X.shape[1]))
    regressor = Network([40, 8, 1], output="identity", dtype="float64", seed=1, backend=backend)
    regressor.fit(dense_X, targets, epochs=3, lr=0.01)
    np.testing.assert_allclose(regressor.predict(X), regressor.predict(dense_X), rtol=rtol)
    assert regressor.score(X, targets) == pytest.approx(regressor.score(dense_X, targets),
                                                        rel=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_fit_and_chunked_prediction_of_many_rows(backend):
    """partial_fit keeps the optimizer state as for dense rows; predictions over more rows
    than one evaluation chunk (4096) come in CSR chunks."""
    X, y = helpers.sparse_problem(n=4500)
    sparse, dense = pair(backend)
    for rows in (slice(0, 2000), slice(2000, 4500)):
        sparse.partial_fit(X[rows], y[rows], momentum=0.9)
        dense.partial_fit(X[rows].toarray(), y[rows], momentum=0.9)
    assert relative_error(sparse.params, dense.params) < PARITY_RTOL["float64"]
    np.testing.assert_allclose(sparse.forward(X), dense.forward(X.toarray()),
                               rtol=PARITY_RTOL["float64"])


# ------------------------------------------------------------ every input format

FORMATS = ["csr", "csc", "coo", "lil", "dok", "bsr", "dia"]


def messy_csc(X, seed=0):
    """The CSR ``X`` as CSC with its repeated entries kept and each column's rows listed in
    a random order (scipy's own conversion would sort them)."""
    coo = X.tocoo()  # every stored value, repeats included
    order = np.lexsort((np.random.default_rng(seed).random(coo.nnz), coo.col))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(coo.col, minlength=X.shape[1]))])
    return scipy.sparse.csc_array((coo.data[order], coo.row[order], indptr), shape=X.shape)


def as_format(X, fmt, container, index_dtype):
    """``X`` in scipy's ``fmt``, as a ``container`` ("array" or "matrix"); CSR and CSC keep
    ``X``'s unsorted and repeated indices, and take ``index_dtype`` indices (scipy would
    narrow int64 ones that fit, so they are set afterwards)."""
    cls = getattr(scipy.sparse, f"{fmt}_{container}")
    if fmt in ("csr", "csc"):
        converted = cls(X if fmt == "csr" else messy_csc(X))
        converted.indices = converted.indices.astype(index_dtype)
        converted.indptr = converted.indptr.astype(index_dtype)
        assert not converted.has_sorted_indices
        return converted
    return cls(X.tocoo() if fmt == "coo" else X.asformat(fmt))


@pytest.mark.filterwarnings("ignore:Constructing a DIA matrix:scipy.sparse.SparseEfficiencyWarning")
@pytest.mark.parametrize("container", ["array", "matrix"])
@pytest.mark.parametrize("fmt, index_dtype",
                         # only CSR and CSC keep the int64 indices they are given when the
                         # values fit int32 (scipy narrows the others' itself)
                         [(fmt, np.int32) for fmt in FORMATS]
                         + [("csr", np.int64), ("csc", np.int64)])
def test_every_sparse_format_is_converted_once_to_the_kernels_csr(fmt, index_dtype, container):
    X, _ = helpers.sparse_problem()
    given = as_format(X, fmt, container, index_dtype)
    arrays_before = [a.copy() for a in (getattr(given, name, None) for name in
                                        ("data", "indices", "indptr")) if a is not None]
    converted = as_sparse_features(given, 40, np.dtype(np.float32))
    assert isinstance(converted, scipy.sparse.csr_array)
    assert converted.data.dtype == np.float32
    assert converted.indices.dtype == converted.indptr.dtype == np.int32
    for array in (converted.data, converted.indices, converted.indptr):
        assert array.flags.c_contiguous and array.flags.writeable
    np.testing.assert_allclose(converted.toarray(), X.toarray().astype(np.float32), rtol=1e-6)
    # the caller's matrix is left as it was (its unsorted indices too)
    after = [getattr(given, name) for name in ("data", "indices", "indptr")
             if getattr(given, name, None) is not None]
    for before, now in zip(arrays_before, after):
        np.testing.assert_array_equal(before, now)


def test_a_conforming_csr_array_is_not_copied():
    """Converting converted inputs again (each method of a network converts) copies nothing."""
    X = as_sparse_features(helpers.messy_csr(30, 10), 10, np.dtype(np.float64))
    again = as_sparse_features(X, 10, np.dtype(np.float64))
    assert all(getattr(again, name) is getattr(X, name)
               for name in ("data", "indices", "indptr"))


def test_int64_indices_when_the_columns_outgrow_int32():
    width = 2**31 + 5  # the matrix holds two values; no network this wide is built
    X = scipy.sparse.csr_array((np.array([1.0, 2.0]), np.array([3, width - 1]),
                                np.array([0, 1, 2])), shape=(2, width))
    converted = as_sparse_features(X, width, np.dtype(np.float32))
    assert converted.indices.dtype == converted.indptr.dtype == np.int64
    assert converted.indices.tolist() == [3, width - 1]


@pytest.mark.filterwarnings("ignore:Constructing a DIA matrix:scipy.sparse.SparseEfficiencyWarning")
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_format_trains_and_predicts_like_its_dense_twin(backend, fmt):
    X, y = helpers.sparse_problem(n=60)
    given = as_format(X, fmt, "array", np.int32)
    sparse, dense = pair(backend)
    sparse.fit(given, y, epochs=2, batch_size=8, lr=0.1)
    dense.fit(X.toarray(), y, epochs=2, batch_size=8, lr=0.1)
    assert relative_error(sparse.params, dense.params) < PARITY_RTOL["float64"]
    np.testing.assert_allclose(sparse.forward(given), dense.forward(X.toarray()),
                               rtol=PARITY_RTOL["float64"])


# ------------------------------------------------------------ fit features

@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_data_and_split_are_sparse_too(backend):
    X, y = helpers.sparse_problem()
    X_val, y_val = helpers.sparse_problem(n=50, seed=7)
    y_val = np.asarray(X_val @ np.random.default_rng(1).standard_normal((40, 3))).argmax(1)
    for validation in (dict(validation_data=(X_val, y_val)), dict(validation_split=0.2)):
        sparse, dense = pair(backend)
        history = sparse.fit(X, y, epochs=3, lr=0.1, **validation)
        dense_validation = (dict(validation_data=(X_val.toarray(), y_val))
                            if "validation_data" in validation else validation)
        expected = dense.fit(X.toarray(), y, epochs=3, lr=0.1, **dense_validation)
        assert relative_error(sparse.params, dense.params) < PARITY_RTOL["float64"]
        np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=1e-10)
        assert history["val_error"] == expected["val_error"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_and_class_weights_with_sparse_rows(backend):
    X, y = helpers.sparse_problem()
    w = np.random.default_rng(4).uniform(0.0, 2.0, X.shape[0])
    sparse, dense = pair(backend)
    sparse.fit(X, y, epochs=3, sample_weight=w, class_weight="balanced", momentum=0.9)
    dense.fit(X.toarray(), y, epochs=3, sample_weight=w, class_weight="balanced", momentum=0.9)
    assert relative_error(sparse.params, dense.params) < PARITY_RTOL["float64"]
    unweighted = Network(SIZES, dtype="float64", seed=3, backend=backend)
    unweighted.fit(X, y, epochs=3, momentum=0.9)
    assert relative_error(sparse.params, unweighted.params) > 1e-3, "the weights count"


@pytest.mark.parametrize("backend", BACKENDS)
def test_early_stopping_on_sparse_validation_rows_restores_the_same_epoch(backend):
    rng = np.random.default_rng(1)
    X, X_val = helpers.messy_csr(60, 40, seed=1), helpers.messy_csr(60, 40, seed=2)
    y, y_val = rng.integers(0, 3, 60), rng.integers(0, 3, 60)  # noise: it overfits soon
    sparse, dense = pair(backend, sizes=[40, 64, 3])
    options = dict(epochs=200, batch_size=10, lr=0.1, momentum=0.9, patience=3)
    history = sparse.fit(X, y, validation_data=(X_val, y_val), **options)
    expected = dense.fit(X.toarray(), y, validation_data=(X_val.toarray(), y_val), **options)
    assert history.stop_reason == expected.stop_reason == "early_stopping"
    assert history.best_epoch == expected.best_epoch and len(history) < 200
    assert relative_error(sparse.params, dense.params) < 1e-10
    assert sparse.loss(X_val, y_val) == pytest.approx(min(history["val_loss"]), rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpointed_sparse_fit_resumes_bit_identically(backend, tmp_path):
    X, y = helpers.sparse_problem()
    options = dict(batch_size=16, lr=0.05, momentum=0.9, validation_split=0.2, patience=10,
                   eval_every=4)
    path = tmp_path / "sparse.ckpt"
    uninterrupted = Network(SIZES, dtype="float64", seed=5, backend=backend)
    full = uninterrupted.fit(X, y, epochs=5, **options)
    first = Network(SIZES, dtype="float64", seed=5, backend=backend)
    first.fit(X, y, epochs=3, checkpoint=path, **options)  # its last checkpoint: epoch 3
    resumed = Network(SIZES, dtype="float64", seed=99, backend=backend)
    history = resumed.fit(X, y, epochs=5, checkpoint=path, resume=True, **options)
    np.testing.assert_array_equal(resumed.params, uninterrupted.params)
    assert history["loss"] == full["loss"] and history["val_loss"] == full["val_loss"]
    assert history.epoch == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("block_rows", [7, 48, 1000])
@pytest.mark.parametrize("backend", BACKENDS)
def test_streamed_sparse_rows_train_as_in_memory(backend, block_rows):
    """Without shuffling, blocks of CSR rows (ending mid-batch: rows carried over; smaller
    than a batch; one block) train bit-identically to the whole CSR X (the validation
    loss, summed block by block, up to the order of its sums); with shuffling, as the
    dense X streamed in the same blocks."""
    X, y = helpers.sparse_problem(n=200)
    w = np.random.default_rng(4).uniform(0.5, 1.5, X.shape[0])
    options = dict(epochs=2, batch_size=16, momentum=0.9, sample_weight=w,
                   class_weight="balanced", validation_split=0.1)
    in_memory, streamed = pair(backend)
    expected = in_memory.fit(X, y, shuffle=False, **options)
    history = streamed.fit(X, y, shuffle=False, block_rows=block_rows, **options)
    np.testing.assert_array_equal(streamed.params, in_memory.params)
    assert history["loss"] == expected["loss"]
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=1e-13)

    sparse, dense = pair(backend)
    history = sparse.fit(X.tocsc(), y, block_rows=block_rows, **options)  # CSC: made CSR once
    expected = dense.fit(X.toarray(), y, block_rows=block_rows, **options)
    assert relative_error(sparse.params, dense.params) < PARITY_RTOL["float64"]
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_streamed_sparse_block_names_its_rows_and_changes_nothing(backend):
    X, y = helpers.sparse_problem(n=200)
    X = X.copy()
    X.data[X.indptr[130] + 1] = np.nan  # in block 2 of 4 (rows 100..149), row 130
    net = Network(SIZES, dtype="float64", seed=3, backend=backend)
    before = net.params.copy()
    column = X.indices[X.indptr[130] + 1]
    with pytest.raises(StreamDataError, match=(
            r"X rows 100\.\.149 \(block 2 of 4, 50 rows each\): X contains 1 NaN or infinite "
            rf"stored value\(s\) \(as float64\), the first at row 30, column {column}")):
        net.fit(X, y, epochs=2, batch_size=16, shuffle=False, block_rows=50)
    np.testing.assert_array_equal(net.params, before)


# ------------------------------------------------------------ compiling

@pytest.mark.parametrize("options, paths", [
    (dict(), ["sparse-sgd"]),
    (dict(momentum=0.9, validation_split=0.2), ["sparse-step", "sparse-forward"]),
    (dict(batch_size=1, validation_split=0.2), ["sparse-per-sample", "sparse-forward"]),
    (dict(clip_norm=1.0, validation_data="dense"), ["sparse-clipped", "forward"]),
], ids=["sgd", "momentum-validated", "per-sample-validated", "clipped-dense-validation"])
def test_a_sparse_fit_prepares_its_kernels_before_the_first_epoch(monkeypatch, options, paths):
    """Compiling is never an epoch's time: a sparse fit names its CSR paths (and the
    validation pass's) to ``kernels.prepare``, which leaves the epochs nothing to compile
    or load."""
    from fastnn import kernels

    X, y = helpers.sparse_problem()
    if options.get("validation_data") == "dense":
        options = options | dict(validation_data=(X[:30].toarray(), y[:30]))
    monkeypatch.setattr(kernels, "_prepared", set())  # nothing made ready: a fresh process
    asked, late, preparing = [], [], []
    real_prepare, real_compile = kernels.prepare, kernels._compiler.prepare

    def prepare(dtype, names, sharing=None):
        asked.append(list(names))
        preparing.append(True)
        try:
            return real_prepare(dtype, names, sharing)
        finally:
            preparing.pop()

    def compile_units(calls, *args, **keywords):
        if not preparing:
            late.append([what for what, _ in calls])
        return real_compile(calls, *args, **keywords)

    monkeypatch.setattr(kernels, "prepare", prepare)
    monkeypatch.setattr(kernels._compiler, "prepare", compile_units)
    Network(SIZES, dtype="float64", seed=3).fit(X, y, epochs=2, **({"batch_size": 16} | options))
    assert asked == [paths]
    assert late == [], "compiled (or loaded) inside an epoch"


# ------------------------------------------------------------ no dense copy

@pytest.mark.parametrize("backend", BACKENDS)
def test_a_sparse_fit_allocates_no_dense_gather_buffer(backend, monkeypatch):
    """Its batches are CSR rows: a ``(batch, d_0)`` buffer would be the dense batch (all of
    X in a full-batch fit), in memory and streamed."""
    made = []
    real = Workspace.__init__

    def recording(self, *args, **kwargs):
        real(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Workspace, "__init__", recording)
    X, y = helpers.sparse_problem()
    net = Network(SIZES, dtype="float64", seed=3, backend=backend)
    net.fit(X, y, epochs=1, batch_size=X.shape[0], validation_split=0.2)
    net.fit(X, y, epochs=1, batch_size=16, block_rows=50)
    gathering = [ws for ws in made if ws.y is not None]
    assert len(gathering) == 2 and all(ws.x is None for ws in gathering)
    net.fit(X.toarray(), y, epochs=1, batch_size=16)  # a dense fit gathers into one
    assert made[-1].x.shape == (16, 40)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wide_sparse_fit_never_densifies_X(backend):
    """2,000 x 200,000 float32 at 50 values a row: 1.6 GB dense, 0.8 MB of CSR."""
    n, d, per_row = 2000, 200_000, 50
    rng = np.random.default_rng(0)
    indptr = np.arange(0, n * per_row + 1, per_row, dtype=np.int32)
    indices = rng.integers(0, d, n * per_row).astype(np.int32)
    data = rng.standard_normal(n * per_row).astype(np.float32)
    X = scipy.sparse.csr_array((data, indices, indptr), shape=(n, d))
    y = rng.integers(0, 2, n)
    net = Network([d, 8, 2], dtype="float32", seed=0, backend=backend)
    dense_bytes = n * d * 4
    net.predict(X[:10])  # the first call of a backend allocates for good (compiling, caches)
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        net.fit(X, y, epochs=1, batch_size=64, lr=0.05, validation_split=0.1)
        net.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - start < 0.1 * dense_bytes, f"peak grew {(peak - start) / 1e6:.0f} MB"
    # the gradient buffer alone (6.4 MB, as W_1) is this much: the fit was measured
    assert peak - start > net.params.nbytes
