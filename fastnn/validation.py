"""Input checks and conversions at the API boundary: the project's one vocabulary of checks.

Everything a user hands to fastnn passes through here once, whichever door it
comes in by (:class:`fastnn.Network`, out-of-core and distributed training,
the command line, the schedules, the scikit-learn estimators): names become
codes, arrays become C-contiguous, writable arrays of the network's dtype,
targets become a dense ``(n, d_L)`` matrix.  Anything wrong raises
``TypeError`` (the wrong kind of value) or ``ValueError`` (the right kind, out
of range or inconsistent) saying what was wrong and what was expected, before
any parameter is touched.  Nothing here computes a model quantity; the kernels
never check anything.

The choice of validation rows lives here too (:func:`hold_out`), so that every
caller names it: the last rows, random rows or a stratified sample.
"""

import numbers
import os

import numpy as np

from fastnn import codes
from fastnn.sparse_format import is_sparse

DTYPES = ("float32", "float64")
BACKENDS = ("numba", "numpy")


# ------------------------------------------------------------------- scalars

def _describe(value):
    return f"{value!r} ({type(value).__name__})"


def check_int(name, value, minimum=None):
    """An integer (Python or NumPy, not bool) at least ``minimum``; returns int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {_describe(value)}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return value


def interval_text(minimum=None, maximum=None, min_inclusive=True, max_inclusive=True):
    """The interval in the usual notation, bounds written as given: ``(0.0, inf)``, ``[0, 1)``."""
    low = "(-inf" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum}"
    high = "inf)" if maximum is None else f"{maximum}" + ("]" if max_inclusive else ")")
    return f"{low}, {high}"


def in_interval(value, minimum=None, maximum=None, min_inclusive=True, max_inclusive=True):
    """Whether the number ``value`` is finite and inside the interval."""
    if not np.isfinite(value):
        return False
    if minimum is not None and (value < minimum or (value == minimum and not min_inclusive)):
        return False
    return maximum is None or value < maximum or (value == maximum and max_inclusive)


def check_real(name, value, minimum=None, maximum=None, *, min_inclusive=True,
               max_inclusive=True):
    """A finite real number inside the given bounds; returns float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {_describe(value)}")
    value = float(value)
    interval = interval_text(minimum, maximum, min_inclusive, max_inclusive)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number in {interval}; got {value}")
    if not in_interval(value, minimum, maximum, min_inclusive, max_inclusive):
        raise ValueError(f"{name} must be in {interval}; got {value}")
    return value


def check_bool(name, value):
    """A bool (Python or NumPy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_describe(value)}")
    return bool(value)


def check_choice(name, value, options):
    """One of ``options`` (strings)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {list(options)}; got {_describe(value)}")
    if value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {list(options)}")
    return value


# -------------------------------------------------------------- architecture

def check_sizes(sizes):
    """Layer widths: a sequence of at least two positive integers; returns a tuple."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError("sizes must be a sequence of layer widths such as [784, 200, 10]; "
                        f"got {_describe(sizes)}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError("sizes needs at least two layer widths (inputs and outputs), "
                         f"such as [784, 10]; got {sizes}")
    return tuple(check_int(f"sizes[{i}]", s, minimum=1) for i, s in enumerate(sizes))


def check_activation(activation, n_hidden):
    """Hidden activations: one name for all hidden layers or one per hidden layer.

    Returns
    -------
    names : tuple of str, length n_hidden
    hidden : ndarray of int64, shape (n_hidden,)
    """
    options = tuple(codes.ACTIVATIONS)
    if isinstance(activation, str):
        names = (check_choice("activation", activation, options),) * n_hidden
    elif hasattr(activation, "__len__"):
        names = tuple(activation)
        if len(names) != n_hidden:
            raise ValueError(f"activation lists {len(names)} names but the network has "
                             f"{n_hidden} hidden layers; give one name per hidden layer "
                             "or a single name")
        names = tuple(check_choice(f"activation[{i}]", a, options) for i, a in enumerate(names))
    else:
        raise TypeError(f"activation must be a name from {list(options)} or a list of them; "
                        f"got {_describe(activation)}")
    return names, np.array([codes.ACTIVATIONS[a] for a in names], dtype=np.int64)


def check_output(output, n_outputs):
    """Output name, checked against the width of the output layer."""
    check_choice("output", output, tuple(codes.OUTPUTS))
    if output == "softmax" and n_outputs < 2:
        raise ValueError("a softmax output needs at least 2 units (one per class); for a "
                         "binary problem use output='sigmoid' with 1 unit")
    return output


def check_dtype(dtype):
    """``float32`` or ``float64`` (a name, a NumPy type or a dtype); returns np.dtype."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; expected one of {list(DTYPES)}")
    return resolved


def check_n_threads(n_threads, available):
    """``None`` (all ``available`` threads) or an integer in ``1..available``."""
    if n_threads is None:
        return available
    n_threads = check_int("n_threads", n_threads, minimum=1)
    if n_threads > available:
        raise ValueError(f"n_threads={n_threads} exceeds the {available} threads Numba may "
                         "use here (NUMBA_NUM_THREADS)")
    return n_threads


def check_seed(seed):
    """``None`` or a non-negative integer."""
    if seed is None:
        return None
    return check_int("seed", seed, minimum=0)


# -------------------------------------------------------------------- arrays

def check_numeric_dtype(name, dtype):
    """Real numbers (bool, integer or float); only the dtype is read.

    Out-of-core arrays are checked this way before any of their rows is read.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued; got complex dtype {dtype}")
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array; got dtype {dtype} "
                        "(strings and objects are not converted)")


def numeric_array(name, values):
    """``values`` as an ndarray of real numbers (not yet converted to a dtype)."""
    try:
        array = np.asarray(values)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array; could not convert it: {error}") from None
    check_numeric_dtype(name, array.dtype)
    return array


def _non_finite(array):
    """Flat positions of the NaN and infinite elements of ``array`` (int64, ascending).

    The sum is NaN/inf whenever an element is, so one cheap reduction settles
    the common case; only a non-finite sum (possibly an overflow of finite
    values) needs the element-wise look that also finds the culprits.  Summed
    in the array's own dtype: 10 ms for MNIST's 60,000 x 784 float32, where
    a float64 sum converts every element and takes 19 ms, in every fit call.
    """
    if array.dtype.kind != "f":
        return np.empty(0, dtype=np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum()):
            return np.empty(0, dtype=np.int64)
    return np.flatnonzero(~np.isfinite(array))


def _check_finite(name, array):
    bad = _non_finite(array)
    if bad.size:
        where = np.unravel_index(bad[0], array.shape)
        raise ValueError(f"{name} contains {bad.size} NaN or infinite value(s), the "
                         f"first at index {tuple(int(i) for i in where)}; expected finite numbers")


def _convert(array, dtype):
    # One conversion at the boundary: dtype, C order, writable (a read-only
    # array is another Numba type and would compile the kernels again).
    return np.require(array, dtype=dtype, requirements=["C", "W", "A"])


def check_feature_shape(name, shape, n_features):
    """Inputs are (rows, ``n_features``) with at least one row.

    Only the shape is read, so out-of-core arrays are checked the same way
    before any of their rows is.
    """
    shape = tuple(shape)
    if len(shape) != 2:
        hint = " (for one sample use X.reshape(1, -1))" if len(shape) == 1 else ""
        raise ValueError(f"{name} must be 2-D with shape (n_samples, {n_features}); got "
                         f"{len(shape)}-D array of shape {shape}{hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows); expected at least one sample")
    if shape[1] != n_features:
        raise ValueError(f"{name} has {shape[1]} features per row but the network "
                         f"expects {n_features} (sizes[0])")


def check_rows(name, n, n_rows):
    """``name`` has one row (or value) per row of X: ``n == n_rows``."""
    if n != n_rows:
        raise ValueError(f"X has {n_rows} rows but {name} has {n}; expected one per row")


def check_target_shape(shape, output, n_outputs, n_rows):
    """Targets of shape ``(n_rows,)`` or ``(n_rows, n_outputs)`` for the output.

    Only the shape is read (out-of-core targets are checked before any row is).
    1-D targets are class labels for a softmax output, else the values of the
    one output unit.
    """
    shape = tuple(shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D; got {len(shape)}-D array of shape {shape}")
    if shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {shape[0]}; expected one "
                         "target per row")
    if len(shape) == 1 and output != "softmax" and n_outputs != 1:
        raise ValueError(f"y is 1-D but the network has {n_outputs} output units; "
                         f"expected shape ({n_rows}, {n_outputs})")
    if len(shape) == 2 and shape[1] != n_outputs:
        raise ValueError(f"y has {shape[1]} columns but the network has {n_outputs} "
                         f"output units; expected shape ({n_rows}, {n_outputs})")


def as_features(X, n_features, dtype, name="X"):
    """Checked, converted inputs.

    Parameters
    ----------
    X : array-like, shape (n, n_features)
    n_features : int
    dtype : np.dtype

    Returns
    -------
    ndarray of ``dtype``, shape (n, n_features), C-contiguous and writable
    """
    array = numeric_array(name, X)
    check_feature_shape(name, array.shape, n_features)
    _check_finite(name, array)
    return _convert(array, dtype)


# ------------------------------------------------------------- sparse inputs

#: the largest index an int32 holds: CSR indices are int32 up to it, int64 beyond
_INT32_MAX = np.iinfo(np.int32).max


def _sparse_module():
    # scipy.sparse (0.2 s to import) only once a sparse X has been seen
    import scipy.sparse

    return scipy.sparse


def _check_compressed(name, X):
    """The raw arrays of a CSR or CSC ``X``: offsets that delimit its rows (columns), one
    index per stored value, every index inside the other axis.

    scipy's conversions and slicing trust these arrays (an index out of range reads
    and writes outside them) and so do the kernels: they are read here, before
    anything else touches them.
    """
    kind = X.format.upper()
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    major, minor = ("row", "column") if X.format == "csr" else ("column", "row")
    data, indices, indptr = X.data, X.indices, X.indptr
    for part, array in (("indices", indices), ("indptr", indptr)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise ValueError(f"{name} ({kind}) has {part} of dtype {array.dtype} and shape "
                             f"{array.shape}; expected a 1-D array of integers")
    if indptr.shape[0] != n_major + 1:
        raise ValueError(f"{name} ({kind}) has an indptr of length {indptr.shape[0]}; expected "
                         f"{n_major + 1}, one offset per {major} and one at the end")
    if indptr[0] != 0:
        raise ValueError(f"{name} ({kind}) has indptr[0] = {indptr[0]}; expected 0 (the "
                         f"first {major} starts at the first stored value)")
    # compared, not differenced: np.diff of unsigned offsets wraps around
    drops = np.flatnonzero(indptr[1:] < indptr[:-1])
    if drops.size:
        i = int(drops[0])
        raise ValueError(f"{name} ({kind}) has a decreasing indptr: indptr[{i + 1}] = "
                         f"{indptr[i + 1]} < indptr[{i}] = {indptr[i]}; expected "
                         "non-decreasing offsets")
    if data.ndim != 1 or data.shape[0] != indices.shape[0]:
        raise ValueError(f"{name} ({kind}) stores {indices.shape[0]} indices but "
                         f"{data.shape[0] if data.ndim == 1 else data.shape} values; expected "
                         "one index per stored value")
    if indptr[-1] != indices.shape[0]:
        raise ValueError(f"{name} ({kind}) has indptr[-1] = {indptr[-1]} but stores "
                         f"{indices.shape[0]} values; expected the offsets to end at the "
                         "number of stored values")
    if indices.size and (indices.min() < 0 or indices.max() >= n_minor):
        bad = np.flatnonzero((indices < 0) | (indices >= n_minor))
        first = int(bad[0])
        where = int(np.searchsorted(indptr, first, side="right")) - 1
        raise ValueError(f"{name} ({kind}) has {bad.size} {minor} index(es) outside "
                         f"0..{n_minor - 1}, the first {indices[first]} (stored value {first}, "
                         f"{major} {where}); expected {minor} indices from 0 to {n_minor - 1}")


def _check_coordinates(name, X):
    """The row and column arrays of a COO ``X``: one pair per stored value, inside the shape
    (its conversion to CSR trusts them as the compressed formats' conversions do)."""
    for axis, (what, coords) in enumerate((("row", X.row), ("column", X.col))):
        if coords.shape != X.data.shape:
            raise ValueError(f"{name} (COO) has {coords.shape} {what} indices for "
                             f"{X.data.shape} stored values; expected one per value")
        if coords.size and (coords.min() < 0 or coords.max() >= X.shape[axis]):
            bad = np.flatnonzero((coords < 0) | (coords >= X.shape[axis]))
            raise ValueError(f"{name} (COO) has {bad.size} {what} index(es) outside "
                             f"0..{X.shape[axis] - 1}, the first {coords[bad[0]]} (stored value "
                             f"{int(bad[0])}); expected {what} indices from 0 to "
                             f"{X.shape[axis] - 1}")


def check_sparse_structure(name, X, n_features):
    """A scipy.sparse ``X`` of shape (rows, ``n_features``), at least one row, of real
    numbers, whose stored structure is sound.

    Only the shape, the dtype and (for CSR, CSC and COO) the index arrays are read,
    nothing is converted: out-of-core training checks a sparse ``X`` this way
    before it slices blocks of rows from it.
    """
    check_feature_shape(name, X.shape, n_features)
    check_numeric_dtype(name, X.dtype)
    if X.format in ("csr", "csc"):
        _check_compressed(name, X)
    elif X.format == "coo":
        _check_coordinates(name, X)


def _index_dtype(X):
    """int32 when a CSR ``X``'s stored values and columns number fewer than 2**31, else int64."""
    return np.dtype(np.int32 if max(X.indices.shape[0], X.shape[1]) <= _INT32_MAX
                    else np.int64)


def kernel_csr(X, dtype, index_dtype=None):
    """A CSR ``X`` of sound structure in the kernels' format (:mod:`fastnn.sparse_format`).

    Parameters
    ----------
    X : scipy.sparse CSR matrix or array, shape (n, d)
    dtype : np.dtype
        Of the stored values.
    index_dtype : np.dtype, optional
        Of ``indices`` and ``indptr``; by default int32 when the stored values
        and the columns number fewer than 2**31, else int64.

    Returns
    -------
    scipy.sparse.csr_array, shape (n, d)
        ``data``, ``indices`` and ``indptr`` C-contiguous and writable (a read-only
        array is another Numba type), the ones already so kept, not copied.
    """
    if index_dtype is None:
        index_dtype = _index_dtype(X)
    required = ["C", "W", "A"]
    data = _convert(X.data, dtype)
    indices = np.require(X.indices, dtype=index_dtype, requirements=required)
    indptr = np.require(X.indptr, dtype=index_dtype, requirements=required)
    csr = _sparse_module().csr_array((data, indices, indptr), shape=X.shape, copy=False)
    # scipy picks its own index type (int32 whenever the values fit) and may hand back views:
    # the kernels take these very arrays
    csr.data, csr.indices, csr.indptr = data, indices, indptr
    return csr


def as_sparse_features(X, n_features, dtype, name="X"):
    """Checked sparse inputs, converted once to the kernels' CSR, never densified.

    Parameters
    ----------
    X : scipy.sparse matrix or array (CSR, CSC, COO, LIL, DOK, BSR, DIA), shape (n, n_features)
        Rows may list their columns in any order, a column more than once and
        stored zeros.
    n_features : int
    dtype : np.dtype

    Returns
    -------
    scipy.sparse.csr_array, shape (n, n_features)
        Stored values of ``dtype``, every one finite; indices as :func:`kernel_csr`.

    Raises
    ------
    ValueError
        Not 2-D, no rows, the wrong width, malformed index arrays, or a NaN or
        infinite stored value (after the conversion to ``dtype``: a float64 1e300
        is inf in float32).
    TypeError
        Stored values that are not real numbers.
    """
    check_sparse_structure(name, X, n_features)
    X = kernel_csr(X if X.format == "csr" else X.tocsr(), dtype)
    bad = _non_finite(X.data)
    if bad.size:
        first = int(bad[0])
        row = int(np.searchsorted(X.indptr, first, side="right")) - 1
        raise ValueError(f"{name} contains {bad.size} NaN or infinite stored value(s) (as "
                         f"{np.dtype(dtype).name}), the first at row {row}, column "
                         f"{int(X.indices[first])}; expected finite numbers")
    return X


def take_rows(X, rows):
    """Rows of converted inputs, in the format they came in.

    Parameters
    ----------
    X : ndarray, shape (n, d), or scipy.sparse.csr_array
        As :func:`as_features` or :func:`as_sparse_features` returned it.
    rows : slice or ndarray of int

    Returns
    -------
    ndarray (a view for a slice) or scipy.sparse.csr_array, shape (len(rows), d)
        CSR rows keep ``X``'s index type (scipy narrows it where the values
        fit), so the kernels see one type per fit (docs/design.md, rule 4).
    """
    if not is_sparse(X):
        return X[rows]
    return kernel_csr(X[rows], X.dtype, X.indices.dtype)


def concatenate_rows(parts):
    """Converted inputs stacked row-wise (all dense or all CSR, as :func:`take_rows` keeps
    them); CSR stacks in the kernels' format with the first part's index type."""
    if not is_sparse(parts[0]):
        return np.concatenate(parts)
    stacked = _sparse_module().vstack(parts, format="csr")
    # wider than the first part's only when the stack outgrows int32
    return kernel_csr(stacked, parts[0].dtype,
                      np.promote_types(parts[0].indices.dtype, _index_dtype(stacked)))


def as_targets(y, output, n_outputs, n_rows, dtype):
    """Dense targets ``Y`` for the output/loss pair.

    Parameters
    ----------
    y : array-like
        softmax: int labels (n,) in ``0..C-1`` or (n, C) one-hot/probabilities;
        sigmoid: (n,) 0/1 for one unit or (n, k) multilabel in [0, 1];
        identity: (n,) for one unit or (n, d_L);
        exp: as identity, values >= 0 (counts or rates: the Poisson loss).
    output : str
    n_outputs : int
        ``d_L``.
    n_rows : int
        Rows of ``X``; ``y`` must have as many.
    dtype : np.dtype

    Returns
    -------
    ndarray of ``dtype``, shape (n_rows, n_outputs), C-contiguous
    """
    array = numeric_array("y", y)
    check_target_shape(array.shape, output, n_outputs, n_rows)
    _check_finite("y", array)

    if output == "softmax" and array.ndim == 1:
        labels = array
        if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
            raise ValueError("class labels for a softmax output must be integers 0.."
                             f"{n_outputs - 1}; got non-integer values such as "
                             f"{labels[labels != np.round(labels)][0]}")
        if labels.dtype.kind == "b":
            labels = labels.astype(np.int64)
        low, high = labels.min(), labels.max()
        if low < 0 or high >= n_outputs:
            raise ValueError(f"class labels must lie in 0..{n_outputs - 1} for {n_outputs} "
                             f"output units; got labels from {low} to {high}")
        Y = np.zeros((n_rows, n_outputs), dtype=dtype)
        Y[np.arange(n_rows), labels.astype(np.int64)] = 1
        return Y

    if array.ndim == 1:
        array = array.reshape(n_rows, 1)
    if output == "softmax":
        if array.min() < 0:
            raise ValueError("softmax targets given as (n, C) must be one-hot or probability "
                             "rows; got negative entries")
        sums = array.sum(axis=1, dtype=np.float64)
        if not np.allclose(sums, 1.0, atol=1e-3):
            row = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError("softmax targets given as (n, C) must be one-hot or probability "
                             f"rows summing to 1; row {row} sums to {sums[row]:.6g}")
    elif output == "sigmoid":
        if array.min() < 0 or array.max() > 1:
            raise ValueError("sigmoid targets must be 0/1 labels (or probabilities in [0, 1]); "
                             f"got values from {array.min()} to {array.max()}")
    elif output == "exp" and array.size and array.min() < 0:
        # the Poisson loss has xlogy(y, y) and a mean exp(z) > 0: a negative
        # target has no loss at all (the kernels would return NaN)
        raise ValueError("targets of the 'exp' (Poisson) output must be non-negative counts "
                         f"or rates; got min {array.min()}")
    return _convert(array, dtype)


def check_training(epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle):
    """The hyperparameters of :meth:`fastnn.Network.fit`; returns them converted."""
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_real("lr", lr, minimum=0.0, min_inclusive=False)
    momentum = check_real("momentum", momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
    nesterov = check_bool("nesterov", nesterov)
    if nesterov and momentum == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
    shuffle = check_bool("shuffle", shuffle)
    return epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle


# ---------------------------------------------------------- fit options

def check_optional_int(name, value, minimum):
    """``None`` or an integer at least ``minimum``."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_optimizer(optimizer, momentum, nesterov, betas, eps):
    """Optimizer name and its own hyperparameters; returns ``(betas, eps)`` as floats."""
    check_choice("optimizer", optimizer, tuple(codes.OPTIMIZERS))
    if optimizer != "sgd" and (momentum != 0 or nesterov):
        raise ValueError(f"momentum and nesterov apply to optimizer='sgd'; {optimizer!r} uses "
                         "betas instead")
    if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2); got {_describe(betas)}")
    betas = tuple(check_real(f"betas[{i}]", b, minimum=0.0, maximum=1.0, max_inclusive=False)
                  for i, b in enumerate(betas))
    eps = check_real("eps", eps, minimum=0.0, min_inclusive=False)
    return betas, eps


def check_clip_norm(clip_norm):
    """``None`` (no clipping) or a finite number > 0."""
    if clip_norm is None:
        return None
    return check_real("clip_norm", clip_norm, minimum=0.0, min_inclusive=False)


def check_callbacks(callbacks):
    """A sequence of callables ``f(network, history)`` or objects with ``on_epoch_end``."""
    if callable(callbacks) or hasattr(callbacks, "on_epoch_end"):
        callbacks = (callbacks,)
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a sequence of callables; got {_describe(callbacks)}")
    callbacks = tuple(callbacks)
    for i, callback in enumerate(callbacks):
        if not (callable(callback) or callable(getattr(callback, "on_epoch_end", None))):
            raise TypeError(f"callbacks[{i}] must be callable (network, history) or have an "
                            f"on_epoch_end(network, history) method; got {_describe(callback)}")
    return callbacks


def check_validation_options(validation_data, validation_split, patience, eval_every):
    """How validation data is given, and what needs it."""
    if validation_data is not None and validation_split is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if validation_data is not None and (isinstance(validation_data, (str, bytes)) or not (
            hasattr(validation_data, "__len__") and len(validation_data) == 2)):
        raise TypeError("validation_data must be a pair (X_val, y_val); got "
                        f"{_describe(validation_data)}")
    if validation_split is not None:
        validation_split = check_real("validation_split", validation_split, minimum=0.0,
                                      maximum=1.0, min_inclusive=False, max_inclusive=False)
    patience = check_optional_int("patience", patience, 1)
    eval_every = check_optional_int("eval_every", eval_every, 1)
    if patience is not None and validation_data is None and validation_split is None:
        raise ValueError("patience (early stopping) needs validation data: pass "
                         "validation_data=(X_val, y_val) or validation_split")
    return validation_split, patience, eval_every


#: the ways of choosing validation rows (docs/design.md, "Held-out rows")
HOLDOUTS = ("last", "random", "stratified")


def held_out_count(n_rows, fraction, name="validation_split"):
    """Rows a ``fraction`` of ``n_rows`` holds out, ``round(n_rows · fraction)``, leaving
    at least one row on each side."""
    n_held = int(round(n_rows * fraction))
    if n_held < 1 or n_held >= n_rows:
        raise ValueError(f"{name}={fraction} of {n_rows} rows leaves {n_rows - n_held} for "
                         f"training and {n_held} for validation; both need at least one row")
    return n_held


def hold_out(n_rows, n_held, how, seed=None, labels=None):
    """Which rows train and which are held out for validation.

    Parameters
    ----------
    n_rows : int
    n_held : int
        Rows to hold out, ``1 <= n_held < n_rows``.
    how : {"last", "random", "stratified"}
        ``"last"``: the final ``n_held`` rows, before any shuffling: cheap, and a
        contiguous range for data on disk, but the rows must not be sorted
        (``fit(validation_split=...)``, streamed and distributed fits).
        ``"random"``: rows drawn without replacement from ``seed`` (``fastnn
        train --holdout``: a user's file may be sorted by class).
        ``"stratified"``: each class of ``labels`` in proportion to its share
        (largest remainders), drawn from ``seed`` within each class (the
        scikit-learn estimators' early stopping, as scikit-learn does it).
    seed : int or None
        For ``"random"`` and ``"stratified"``.
    labels : ndarray of int, shape (n_rows,)
        The class of each row, for ``"stratified"``.

    Returns
    -------
    train, held : slice or ndarray of int64
        Slices for ``"last"`` (views, no copy), else sorted row indices.
    """
    check_choice("how", how, HOLDOUTS)
    if not 1 <= n_held < n_rows:
        raise ValueError(f"cannot hold out {n_held} of {n_rows} rows; both the training and "
                         "the validation rows need at least one")
    if how == "last":
        return slice(0, n_rows - n_held), slice(n_rows - n_held, n_rows)
    rng = np.random.default_rng(seed)
    if how == "random":
        order = rng.permutation(n_rows)
        return np.sort(order[n_held:]), np.sort(order[:n_held])
    classes, codes_ = np.unique(np.asarray(labels), return_inverse=True)
    counts = np.bincount(codes_, minlength=classes.shape[0])
    exact = counts * n_held / n_rows
    take = np.floor(exact).astype(np.int64)
    # the rows still owed go to the classes with the largest remainders (first class on ties)
    owed = n_held - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:owed]] += 1
    held = np.concatenate([rng.permutation(np.flatnonzero(codes_ == c))[:take[c]]
                           for c in range(classes.shape[0])])
    mask = np.zeros(n_rows, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def split_validation(X, Y, weights, fraction):
    """The last ``fraction`` of the rows held out for validation (before any shuffle).

    Returns
    -------
    (X_train, Y_train, w_train), (X_val, Y_val)
        Views of the given arrays (a CSR ``X``'s rows are copies: scipy slices so).
    """
    train, held = hold_out(X.shape[0], held_out_count(X.shape[0], fraction), "last")
    return ((take_rows(X, train), Y[train], weights[train]), (take_rows(X, held), Y[held]))


def as_sample_weight(sample_weight, n_rows, dtype, allow_all_zero=False):
    """Row weights: ones when ``None``; else finite and non-negative, and not all zero
    unless ``allow_all_zero`` (one MPI rank's shard may weigh nothing).

    Returns
    -------
    ndarray of ``dtype``, shape (n_rows,)
    """
    if sample_weight is None:
        return np.ones(n_rows, dtype=dtype)
    weights = numeric_array("sample_weight", sample_weight)
    if weights.ndim != 1 or weights.shape[0] != n_rows:
        raise ValueError(f"sample_weight must have shape ({n_rows},), one weight per row of X; "
                         f"got shape {weights.shape}")
    _check_finite("sample_weight", weights)
    negative = np.flatnonzero(weights < 0)
    if negative.size:
        raise ValueError(f"sample_weight must be >= 0; got {negative.size} negative weight(s), "
                         f"the first at row {int(negative[0])}: {weights[negative[0]]}")
    if not (allow_all_zero or weights.any()):
        raise ValueError("sample_weight is zero for every row; nothing would be learned")
    return _convert(weights, dtype)


def class_labels(output, Y):
    """The class of each row of dense targets: the arg-max (softmax), or whether the one
    sigmoid unit is above 0.5; int64, shape (n,)."""
    return Y.argmax(axis=1) if output == "softmax" else (Y[:, 0] > 0.5).astype(np.int64)


def class_counts(output, Y):
    """Rows per class of dense targets ``Y (n, d_L)``, int64, shape (max(d_L, 2),)."""
    return np.bincount(class_labels(output, Y), minlength=max(Y.shape[1], 2))


def class_weight_table(class_weight, output, n_outputs, counts=None):
    """The weight of each class, from ``class_weight`` (``"balanced"`` or ``{class: weight}``).

    Parameters
    ----------
    class_weight : None, "balanced" or dict
    output : str
    n_outputs : int
        ``d_L``.
    counts : ndarray of int, shape (max(d_L, 2),), optional
        Rows per class (:func:`class_counts`), needed for ``"balanced"`` only:
        in memory, block by block or summed over MPI ranks.

    Returns
    -------
    None or ndarray of float64, shape (max(d_L, 2),)
        ``"balanced"`` is scikit-learn's ``n_samples / (n_classes_present · count)``.
    """
    if class_weight is None:
        return None
    if output in codes.REGRESSION_OUTPUTS or (output == "sigmoid" and n_outputs > 1):
        raise ValueError("class_weight applies to single-label classification (softmax, or "
                         "sigmoid with one output unit)")
    n_classes = max(n_outputs, 2)
    table = np.ones(n_classes)
    if isinstance(class_weight, str):
        check_choice("class_weight", class_weight, ("balanced",))
        if counts is None:
            return table  # the names are right; the caller counts the classes
        counts = np.asarray(counts, dtype=np.float64)
        present = counts > 0
        table[present] = counts.sum() / (present.sum() * counts[present])
        return table
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be 'balanced' or a dict {{class: weight}}; got "
                        f"{_describe(class_weight)}")
    for label, weight in class_weight.items():
        label = check_int("class_weight key", label, minimum=0)
        if label >= n_classes:
            raise ValueError(f"class_weight names class {label}, but the classes are "
                             f"0..{n_classes - 1}")
        table[label] = check_real(f"class_weight[{label}]", weight, minimum=0.0)
    return table


def class_weight_factors(class_weight, output, Y, table=None):
    """Per-row factors from ``class_weight`` for dense targets ``Y (n, d_L)``.

    ``table`` (from :func:`class_weight_table`) is used when given, else built
    from ``Y``'s own class counts.

    Returns
    -------
    None or ndarray of float64, shape (n,)
    """
    if table is None:
        table = class_weight_table(class_weight, output, Y.shape[1],
                                   class_counts(output, Y) if isinstance(class_weight, str)
                                   else None)
    return None if table is None else table[class_labels(output, Y)]


def check_path(name, path, optional=False):
    """A file path (str or path-like), or ``None`` when ``optional``."""
    if path is None and optional:
        return None
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path{' or None' if optional else ''}; got "
                        f"{_describe(path)}")
    return path


def check_checkpoint(checkpoint, checkpoint_every, resume):
    """Checkpoint path (or None), its period in epochs, and whether to resume from it."""
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a file path; got {_describe(checkpoint)}")
    checkpoint_every = check_int("checkpoint_every", checkpoint_every, minimum=1)
    resume = check_bool("resume", resume)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=path")
    return checkpoint, checkpoint_every, resume


def check_verbosity(progress, verbose):
    """``progress`` bool (tqdm must be installed) and ``verbose`` 0, 1 or 2."""
    progress = check_bool("progress", progress)
    if progress:
        try:
            import tqdm  # noqa: F401
        except ImportError:
            raise ImportError("progress=True draws a tqdm progress bar and tqdm is missing "
                              "(it is a fastnn dependency): pip install tqdm") from None
    if isinstance(verbose, (bool, np.bool_)):
        verbose = int(verbose)
    verbose = check_int("verbose", verbose, minimum=0)
    return progress, verbose
