"""Forward passes over converted arrays, in chunks of rows: outputs, loss, validation metrics.

Used by :class:`fastnn.Network` (``forward``, ``loss``) and by the training
loops (validation after each epoch or every few steps).  The inputs arrive
checked and converted (:meth:`fastnn.architecture.Architecture.features` and
``targets``: dense arrays or CSR ones); the callers hold the thread scope.  The
workspace holds at most :data:`CHUNK_ROWS` rows, so memory is bounded by the
chunk, not the data.
"""

import numpy as np

from fastnn import codes, metrics
from fastnn.validation import take_rows

#: rows per forward call when predicting or evaluating: bounds the workspace, not the data
CHUNK_ROWS = 4096


def logits_in_chunks(network, X):
    """Logits of consecutive row blocks of ``X``.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
        Converted inputs.

    Yields
    ------
    start : int
        The chunk's first row.
    X_chunk : ndarray (a view) or scipy.sparse.csr_array (a copy of the rows), shape (m, d_0)
    Z : ndarray, shape (m, d_L)
        Its logits, a view into a workspace that the next chunk overwrites.
    """
    architecture, kernels = network.architecture, network.kernels
    capacity = min(X.shape[0], CHUNK_ROWS)
    workspace = architecture.workspace(capacity, deltas=False)
    for start in range(0, X.shape[0], capacity):
        X_chunk = take_rows(X, slice(start, start + capacity))
        kernels.forward(network.params, architecture.table, architecture.hidden, X_chunk,
                        workspace.acts)
        yield start, X_chunk, workspace.logits(X_chunk.shape[0])


def outputs(network, X):
    """Output activations ``A_L`` of converted inputs, shape (n, d_L), of the network's dtype."""
    architecture, kernels = network.architecture, network.kernels
    A = np.empty((X.shape[0], architecture.sizes[-1]), dtype=architecture.dtype)
    for start, X_chunk, Z in logits_in_chunks(network, X):
        kernels.output_activation(architecture.output_code, Z,
                                  A[start:start + X_chunk.shape[0]])
    return A


def outputs_and_loss(network, X, Y, weights=None):
    """Outputs ``A_L`` and the (weighted) mean data loss ``Σ w_i L_i / Σ w_i``.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
    Y : ndarray, shape (n, d_L)
        Converted inputs and dense targets.
    weights : ndarray, shape (n,), optional
        Row weights of the network's dtype; all ones by default.

    Returns
    -------
    A : ndarray, shape (n, d_L)
    loss : float
    """
    architecture, kernels = network.architecture, network.kernels
    A = np.empty((X.shape[0], architecture.sizes[-1]), dtype=architecture.dtype)
    weights = np.ones(X.shape[0], dtype=architecture.dtype) if weights is None else weights
    total = 0.0
    for start, X_chunk, Z in logits_in_chunks(network, X):
        rows = slice(start, start + X_chunk.shape[0])
        total += kernels.loss_sum(architecture.output_code, Z, Y[rows], weights[rows])
        kernels.output_activation(architecture.output_code, Z, A[rows])
    return A, total / float(weights.sum(dtype=np.float64))


def validation_metrics(network, X, Y):
    """``val_loss`` and ``val_error`` (classification) or ``val_r2`` (regression).

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
    Y : ndarray, shape (n, d_L)
        Converted validation inputs and dense targets.

    Returns
    -------
    dict of str -> float
    """
    A, loss = outputs_and_loss(network, X, Y)
    output = network.architecture.output
    if output in codes.REGRESSION_OUTPUTS:
        return {"val_loss": loss, "val_r2": metrics.r2_score(A, Y)}
    return {"val_loss": loss, "val_error": 1.0 - metrics.accuracy(output, A, Y)}
