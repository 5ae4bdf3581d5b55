"""The sparse input format both backends read: what a CSR ``X`` is inside fastnn.

A sparse ``X`` reaches the kernels as a ``scipy.sparse.csr_array`` of shape
``(n, d_0)`` whose ``data`` has the network's dtype and whose ``indices`` and
``indptr`` are both int32 or both int64, each array C-contiguous
(:func:`fastnn.validation.as_sparse_features` makes it so, once, at the API
boundary).  Rows may list their columns in any order, a column more than once
(the values add up, as scipy's own products add them) and stored zeros.  Only
the first layer reads ``X``; everything after it is dense.

Nothing here imports ``scipy.sparse`` unless it is already imported (0.2 s):
when no one has imported it, ``X`` cannot be one of its matrices.
"""

import sys


def is_sparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def csr_parts(X):
    """``(data, indices, indptr)`` of a CSR ``X`` in the format above.

    Returns
    -------
    data : ndarray, shape (nnz,)
    indices : ndarray of int32 or int64, shape (nnz,)
    indptr : ndarray of the same integer type, shape (n + 1,)
        Row ``i``'s values are ``data[indptr[i]:indptr[i + 1]]``.
    """
    return X.data, X.indices, X.indptr
