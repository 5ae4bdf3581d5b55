"""Bad input raises a clear ValueError/TypeError before any parameter is touched.

One table, one row per case: (id, call, exception, message pattern).  ``call``
gets a fresh trained-looking network and valid data, and breaks one thing.
"""

import re

import numpy as np
import pytest
import scipy.sparse
from numba.core.errors import NumbaError

from fastnn import Network

RNG = np.random.default_rng(0)
X = RNG.standard_normal((20, 4))
Y = np.arange(20) % 3
X_NAN = X.copy()
X_NAN[3, 2] = np.nan
X_INF = X.copy()
X_INF[0, 0] = np.inf


def broken_csr(fmt="csr", **changes):
    """``X`` as a scipy.sparse CSR (or CSC) array with some of its raw arrays replaced or
    edited in place (scipy checks them when it builds the matrix, not afterwards)."""
    bad = scipy.sparse.csr_array(X) if fmt == "csr" else scipy.sparse.csc_array(X)
    for name, change in changes.items():
        value = getattr(bad, name).copy()
        setattr(bad, name, change(value) if callable(change) else change)
    return bad


def edited(position, value):
    def edit(array):
        array[position] = value
        return array
    return edit


SPARSE_NAN = broken_csr(data=edited(3 * 4 + 2, np.nan))  # row 3, column 2
SPARSE_INF = broken_csr(data=edited(5, -np.inf))  # row 1, column 1
COO_OUTSIDE = scipy.sparse.coo_array(X)
COO_OUTSIDE.row[7] = 25


def fit(**changes):
    def call(net):
        kwargs = dict(X=X, y=Y, epochs=1, batch_size=4, lr=0.1)
        kwargs.update(changes)
        net.fit(kwargs.pop("X"), kwargs.pop("y"), **kwargs)
    return call


def construct(*args, **kwargs):
    def call(net):
        Network(*args, **kwargs)
    return call


CASES = [
    # ----- construction: architecture and names
    ("sizes-not-sequence", construct(784), TypeError, "sizes must be a sequence"),
    ("sizes-string", construct("784,10"), TypeError, "sizes must be a sequence"),
    ("sizes-one-layer", construct([5]), ValueError, "at least two layer widths"),
    ("sizes-zero", construct([5, 0, 2]), ValueError, r"sizes\[1\] must be an integer >= 1"),
    ("sizes-negative", construct([5, -3, 2]), ValueError, r"sizes\[1\] must be an integer >= 1"),
    ("sizes-float", construct([5, 2.5, 2]), TypeError, r"sizes\[1\] must be an integer"),
    ("sizes-bool", construct([5, True, 2]), TypeError, r"sizes\[1\] must be an integer"),
    ("activation-unknown", construct([4, 3, 2], activation="relu6"), ValueError,
     r"unknown activation 'relu6'; expected one of \['identity', 'relu'"),
    ("activation-list-length", construct([4, 3, 3, 2], activation=["relu"]), ValueError,
     "lists 1 names but the network has 2 hidden layers"),
    ("activation-type", construct([4, 3, 2], activation=3), TypeError,
     "activation must be a name"),
    ("output-unknown", construct([4, 3, 2], output="softplus"), ValueError,
     "unknown output 'softplus'"),
    ("softmax-one-unit", construct([4, 3, 1], output="softmax"), ValueError,
     "softmax output needs at least 2 units"),
    ("dtype-unknown", construct([4, 2], dtype="float16"), ValueError,
     r"unsupported dtype 'float16'; expected one of \['float32', 'float64'\]"),
    ("dtype-garbage", construct([4, 2], dtype="double-ish"), ValueError, "unsupported dtype"),
    ("backend-unknown", construct([4, 2], backend="torch"), ValueError,
     r"unknown backend 'torch'; expected one of \['numba', 'numpy'\]"),
    ("threads-zero", construct([4, 2], n_threads=0), ValueError,
     "n_threads must be an integer >= 1"),
    ("threads-too-many", construct([4, 2], n_threads=10_000), ValueError,
     "exceeds the .* threads Numba may use"),
    ("threads-string", construct([4, 2], n_threads="2"), TypeError, "n_threads must be an integer"),
    ("seed-negative", construct([4, 2], seed=-1), ValueError, "seed must be an integer >= 0"),
    ("seed-float", construct([4, 2], seed=1.5), TypeError, "seed must be an integer"),
    ("init-unknown", construct([4, 2], init="zeros"), ValueError, "unknown init 'zeros'"),
    # ----- the inputs X
    ("X-1d", fit(X=X[0]), ValueError, r"X must be 2-D .* got 1-D .*reshape\(1, -1\)"),
    ("X-3d", fit(X=X[None]), ValueError, "X must be 2-D .* got 3-D"),
    ("X-width", fit(X=X[:, :3]), ValueError, r"X has 3 features per row but the network expects 4"),
    ("X-empty", fit(X=X[:0], y=Y[:0]), ValueError, r"X is empty \(0 rows\)"),
    ("X-nan", fit(X=X_NAN), ValueError,
     r"X contains 1 NaN or infinite value\(s\), the first at index \(3, 2\)"),
    ("X-inf", fit(X=X_INF), ValueError, r"X contains 1 NaN or infinite .* \(0, 0\)"),
    ("X-strings", fit(X=X.astype(str)), TypeError, "X must be a numeric array; got dtype <U"),
    ("X-object", fit(X=X.astype(object)), TypeError, "X must be a numeric array; got dtype object"),
    ("X-complex", fit(X=X + 1j), TypeError, "X must be real-valued; got complex"),
    ("X-ragged", fit(X=[[1.0, 2.0], [3.0]]), TypeError, "X must be a numeric array"),
    # ----- sparse inputs: the raw arrays are checked before scipy or a kernel reads them
    ("sparse-nan", fit(X=SPARSE_NAN), ValueError,
     r"X contains 1 NaN or infinite stored value\(s\) \(as float32\), the first at row 3, "
     "column 2; expected finite numbers"),
    ("sparse-inf-float64", fit(X=SPARSE_INF.astype(np.float64)), ValueError,
     r"X contains 1 NaN .* the first at row 1, column 1"),
    ("sparse-overflows-float32", fit(X=broken_csr(data=edited(0, 1e300))), ValueError,
     r"X contains 1 NaN or infinite stored value\(s\) \(as float32\), the first at row 0"),
    ("sparse-width", fit(X=scipy.sparse.csr_array(X[:, :3])), ValueError,
     "X has 3 features per row but the network expects 4"),
    ("sparse-1d", fit(X=scipy.sparse.coo_array(X[0])), ValueError, "X must be 2-D .* got 1-D"),
    ("sparse-empty", fit(X=scipy.sparse.csr_array((0, 4)), y=Y[:0]), ValueError,
     r"X is empty \(0 rows\)"),
    ("sparse-complex", fit(X=scipy.sparse.csr_array(X + 1j)), TypeError,
     "X must be real-valued; got complex"),
    ("sparse-index-negative", fit(X=broken_csr(indices=edited(6, -1))), ValueError,
     r"X \(CSR\) has 1 column index\(es\) outside 0..3, the first -1 \(stored value 6, "
     r"row 1\); expected column indices from 0 to 3"),
    ("sparse-index-too-big", fit(X=broken_csr(indices=edited(79, 4))), ValueError,
     r"X \(CSR\) has 1 column index\(es\) outside 0..3, the first 4 \(stored value 79, "
     r"row 19\)"),
    ("sparse-csc-row-index", fit(X=broken_csr("csc", indices=edited(0, 20))), ValueError,
     r"X \(CSC\) has 1 row index\(es\) outside 0..19, the first 20 \(stored value 0, "
     r"column 0\)"),
    ("sparse-coo-row-index", fit(X=COO_OUTSIDE), ValueError,
     r"X \(COO\) has 1 row index\(es\) outside 0..19, the first 25 \(stored value 7\)"),
    ("sparse-indptr-length", fit(X=broken_csr(indptr=lambda p: p[:-1])), ValueError,
     r"X \(CSR\) has an indptr of length 20; expected 21, one offset per row and one at "
     "the end"),
    ("sparse-indptr-start", fit(X=broken_csr(indptr=edited(0, 1))), ValueError,
     r"X \(CSR\) has indptr\[0\] = 1; expected 0"),
    ("sparse-indptr-decreasing", fit(X=broken_csr(indptr=edited(5, 2))), ValueError,
     r"X \(CSR\) has a decreasing indptr: indptr\[5\] = 2 < indptr\[4\] = 16; expected "
     "non-decreasing offsets"),
    ("sparse-indptr-end", fit(X=broken_csr(indptr=edited(20, 79))), ValueError,
     r"X \(CSR\) has indptr\[-1\] = 79 but stores 80 values; expected the offsets to end "
     "at the number of stored values"),
    ("sparse-indices-data-lengths", fit(X=broken_csr(data=lambda d: d[:-1])), ValueError,
     r"X \(CSR\) stores 80 indices but 79 values; expected one index per stored value"),
    ("sparse-float-indices", fit(X=broken_csr(indices=lambda i: i.astype(float))), ValueError,
     r"X \(CSR\) has indices of dtype float64 and shape \(80,\); expected a 1-D array of "
     "integers"),
    # ----- the targets y
    ("y-rows", fit(y=Y[:-1]), ValueError, "X has 20 rows but y has 19"),
    ("y-nan", fit(y=np.where(Y == 1, np.nan, Y)), ValueError, "y contains .* NaN"),
    ("labels-too-big", fit(y=Y + 1), ValueError, r"class labels must lie in 0..2 .* from 1 to 3"),
    ("labels-negative", fit(y=Y - 1), ValueError, r"class labels must lie in 0..2 .* from -1 to 1"),
    ("labels-fractional", fit(y=Y + 0.5), ValueError,
     "must be integers 0..2; got non-integer values such as 0.5"),
    ("labels-strings", fit(y=Y.astype(str)), TypeError, "y must be a numeric array"),
    ("onehot-width", fit(y=np.eye(4)[Y]), ValueError,
     "y has 4 columns but the network has 3 output units"),
    ("probabilities-not-summing", fit(y=np.eye(3)[Y] * 0.5), ValueError,
     "rows summing to 1; row 0 sums to 0.5"),
    ("probabilities-negative", fit(y=np.eye(3)[Y] * 2 - 0.5), ValueError, "got negative entries"),
    ("y-3d", fit(y=np.eye(3)[Y][None]), ValueError, "y must be 1-D or 2-D"),
    # ----- hyperparameters
    ("lr-zero", fit(lr=0), ValueError, r"lr must be in \(0.0, inf\); got 0.0"),
    ("lr-negative", fit(lr=-0.1), ValueError, r"lr must be in \(0.0, inf\); got -0.1"),
    ("lr-nan", fit(lr=float("nan")), ValueError, "lr must be a finite number"),
    ("lr-inf", fit(lr=float("inf")), ValueError, "lr must be a finite number"),
    ("lr-string", fit(lr="0.1"), TypeError, "lr must be a real number; got '0.1'"),
    ("momentum-one", fit(momentum=1.0), ValueError, r"momentum must be in \[0.0, 1.0\); got 1.0"),
    ("momentum-negative", fit(momentum=-0.5), ValueError, r"momentum must be in \[0.0, 1.0\)"),
    ("nesterov-without-momentum", fit(nesterov=True), ValueError,
     "nesterov=True needs momentum > 0"),
    ("nesterov-string", fit(nesterov="yes", momentum=0.9), TypeError,
     "nesterov must be True or False"),
    ("weight-decay-negative", fit(weight_decay=-1e-3), ValueError,
     r"weight_decay must be in \[0.0, inf\)"),
    ("batch-size-zero", fit(batch_size=0), ValueError, "batch_size must be an integer >= 1; got 0"),
    ("batch-size-float", fit(batch_size=2.5), TypeError, "batch_size must be an integer"),
    ("epochs-negative", fit(epochs=-1), ValueError, "epochs must be an integer >= 0; got -1"),
    ("shuffle-string", fit(shuffle="no"), TypeError, "shuffle must be True or False"),
    # ----- optimizers, schedules, weights, validation, checkpoints, output
    ("optimizer-unknown", fit(optimizer="rmsprop"), ValueError,
     r"unknown optimizer 'rmsprop'; expected one of \['sgd', 'adam', 'adamw'\]"),
    ("momentum-with-adam", fit(optimizer="adam", momentum=0.9), ValueError,
     "momentum and nesterov apply to optimizer='sgd'"),
    ("betas-length", fit(optimizer="adam", betas=(0.9,)), TypeError, r"betas must be a pair"),
    ("betas-range", fit(optimizer="adam", betas=(0.9, 1.0)), ValueError,
     r"betas\[1\] must be in \[0.0, 1.0\)"),
    ("eps-zero", fit(optimizer="adam", eps=0), ValueError, r"eps must be in \(0.0, inf\)"),
    ("clip-negative", fit(clip_norm=-1), ValueError, r"clip_norm must be in \(0.0, inf\)"),
    ("schedule-not-callable", fit(lr_schedule=0.5), TypeError,
     "lr_schedule must be a schedule or a callable"),
    ("sample-weight-length", fit(sample_weight=np.ones(19)), ValueError,
     r"sample_weight must have shape \(20,\), one weight per row of X; got shape \(19,\)"),
    ("sample-weight-negative", fit(sample_weight=-np.ones(20)), ValueError,
     "sample_weight must be >= 0"),
    ("sample-weight-nan", fit(sample_weight=np.full(20, np.nan)), ValueError,
     "sample_weight contains 20 NaN"),
    ("sample-weight-zero", fit(sample_weight=np.zeros(20)), ValueError,
     "sample_weight is zero for every row"),
    ("class-weight-unknown", fit(class_weight="even"), ValueError, "unknown class_weight 'even'"),
    ("class-weight-class", fit(class_weight={5: 2.0}), ValueError,
     r"class_weight names class 5, but the classes are 0..2"),
    ("class-weight-type", fit(class_weight=[1, 2, 3]), TypeError,
     "class_weight must be 'balanced' or a dict"),
    ("validation-both", fit(validation_data=(X, Y), validation_split=0.2), ValueError,
     "give validation_data or validation_split, not both"),
    ("validation-not-pair", fit(validation_data=X), TypeError,
     r"validation_data must be a pair \(X_val, y_val\)"),
    ("validation-width", fit(validation_data=(X[:, :2], Y)), ValueError,
     "X_val has 2 features per row but the network expects 4"),
    ("validation-sparse-nan", fit(validation_data=(SPARSE_NAN, Y)), ValueError,
     r"X_val contains 1 NaN or infinite stored value\(s\)"),
    ("validation-labels", fit(validation_data=(X, Y + 3)), ValueError,
     "class labels must lie in 0..2"),
    ("validation-split-range", fit(validation_split=1.5), ValueError,
     r"validation_split must be in \(0.0, 1.0\)"),
    ("validation-split-empty", fit(validation_split=0.01), ValueError,
     "leaves 20 for training and 0 for validation"),
    ("patience-without-validation", fit(patience=3), ValueError,
     "patience \\(early stopping\\) needs validation data"),
    ("patience-zero", fit(patience=0, validation_split=0.2), ValueError,
     "patience must be an integer >= 1"),
    ("eval-every-zero", fit(eval_every=0), ValueError, "eval_every must be an integer >= 1"),
    ("callback-not-callable", fit(callbacks=[42]), TypeError, r"callbacks\[0\] must be callable"),
    ("checkpoint-type", fit(checkpoint=3), TypeError, "checkpoint must be a file path"),
    ("checkpoint-every-zero", fit(checkpoint="ck.npz", checkpoint_every=0), ValueError,
     "checkpoint_every must be an integer >= 1"),
    ("resume-without-checkpoint", fit(resume=True), ValueError,
     "resume=True needs checkpoint=path"),
    ("warm-start-string", fit(warm_start="yes"), TypeError, "warm_start must be True or False"),
    ("verbose-negative", fit(verbose=-1), ValueError, "verbose must be an integer >= 0"),
    ("gradient-decay-negative", lambda net: net.gradient(X, Y, weight_decay=-1), ValueError,
     "weight_decay must be in"),
    ("predict-width", lambda net: net.predict(X[:, :2]), ValueError, "X has 2 features per row"),
    ("predict-sparse-index", lambda net: net.predict(broken_csr(indices=edited(6, 9))),
     ValueError, r"X \(CSR\) has 1 column index\(es\) outside 0..3"),
    ("streamed-sparse-indptr", fit(X=broken_csr(indptr=edited(0, 1)), block_rows=8), ValueError,
     r"X \(CSR\) has indptr\[0\] = 1; expected 0"),
    ("loss-labels", lambda net: net.loss(X, Y + 5), ValueError, "class labels must lie in 0..2"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_bad_input_raises_clear_error_and_changes_nothing(case, backend):
    _, call, error, pattern = case
    net = Network([4, 5, 3], seed=0, backend=backend)
    net.fit(X, Y, epochs=1)  # a network mid-life, with state worth protecting
    before = net.params.copy()
    with pytest.raises(error, match=pattern) as raised:
        call(net)
    # our own message, not a Numba typing error from deep inside a kernel
    assert not isinstance(raised.value, NumbaError)
    assert not re.search(r"nopython|Traceback", str(raised.value))
    np.testing.assert_array_equal(net.params, before)


def test_other_targets_per_output():
    """sigmoid targets in [0, 1], identity widths."""
    binary = Network([4, 3, 1], output="sigmoid")
    with pytest.raises(ValueError, match=r"sigmoid targets must be 0/1 .* from 0 to 2"):
        binary.fit(X, Y, epochs=1)
    multi = Network([4, 3, 2], output="identity")
    with pytest.raises(ValueError, match=r"y is 1-D but the network has 2 output units; "
                                         r"expected shape \(20, 2\)"):
        multi.fit(X, Y.astype(float), epochs=1)


def test_huge_finite_inputs_are_not_mistaken_for_overflow():
    """The finite check sums in float32; an overflowing sum of finite values must
    fall back to the element-wise check quietly, not reject the data."""
    import warnings
    X_huge = np.full((6, 4), 3e38, dtype=np.float32)
    net = Network([4, 3], output="identity", dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert net.forward(X_huge).shape == (6, 3)
