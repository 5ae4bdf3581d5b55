"""The :class:`Workspace`: the one allocator of the buffers the kernels write.

Forward and backward passes write each layer's activations and deltas into
two flat buffers, one block per layer placed by the layer table
(:mod:`fastnn.layout`); a training epoch also gathers each mini-batch's rows,
targets and weights into buffers of its own.  Everything is allocated here,
once per call or fit, so the compiled loops allocate nothing.
"""

import numpy as np

from fastnn.aligned import aligned_zeros, aligned_zeros_like
from fastnn.layout import workspace_block
from fastnn.validation import take_rows


class Workspace:
    """Per-layer activation and delta blocks (and gather buffers) for up to ``rows`` rows.

    Parameters
    ----------
    architecture : fastnn.architecture.Architecture
    rows : int
        The largest batch the buffers must hold, at least 1.
    deltas : bool, default True
        Allocate the delta buffer (a forward pass alone does not need it).
    gather : bool, default False
        Allocate the buffers a training epoch gathers each mini-batch into.
    sparse : bool, default False
        The inputs are CSR: their batches are CSR rows of ``X``, not gathered
        into a dense ``x`` buffer (``(rows, d_0)`` would be the size of the
        dense batch, d_0 maybe 100,000 wide), so ``x`` stays None.

    Attributes
    ----------
    rows : int
    acts : ndarray, shape (rows * n_units,)
        After a forward pass the last layer's block holds the logits ``Z_L``.
    deltas : ndarray, shape (rows * n_units,), or None
    x : ndarray, shape (rows, d_0), or None
        None without ``gather``, or with ``sparse``.
    y : ndarray, shape (rows, d_L), or None
    w : ndarray, shape (rows,), or None
        The gather buffers of inputs, dense targets and row weights.
    """

    def __init__(self, architecture, rows, *, deltas=True, gather=False, sparse=False):
        self.rows = int(rows)
        self._table = architecture.table
        self._last = len(architecture.sizes) - 2
        dtype = architecture.dtype
        # zeros, not empty: the same bytes in every run, and free for large
        # buffers (the operating system hands out zeroed pages)
        # (and each starting a cache line, see fastnn.aligned)
        self.acts = aligned_zeros(self.rows * architecture.n_units, dtype)
        self.deltas = aligned_zeros_like(self.acts) if deltas else None
        self.x = self.y = self.w = None
        if gather:
            if not sparse:
                self.x = aligned_zeros((self.rows, architecture.sizes[0]), dtype)
            self.y = aligned_zeros((self.rows, architecture.sizes[-1]), dtype)
            self.w = aligned_zeros(self.rows, dtype)

    def block(self, buffer, layer, n):
        """Layer ``layer``'s (0-based) first ``n`` rows in ``buffer``, shape (n, d_{layer+1})."""
        return workspace_block(buffer, self._table, layer, n)

    def logits(self, n):
        """The logits ``Z_L`` of the last forward pass over ``n`` rows, shape (n, d_L)."""
        return workspace_block(self.acts, self._table, self._last, n)

    def output_deltas(self, n):
        """Where ``δ_L`` of ``n`` rows goes, shape (n, d_L)."""
        return workspace_block(self.deltas, self._table, self._last, n)

    def gather(self, X, Y, weights, rows):
        """Copy the rows ``rows`` of ``X``, ``Y`` and ``weights`` into the gather buffers.

        Returns
        -------
        x, y, w : views of the first ``len(rows)`` rows of the gather buffers
            ``x`` is ``X``'s rows as a new CSR array when ``X`` is sparse.
        """
        m = rows.shape[0]
        if self.x is None:
            x = take_rows(X, rows)
        else:
            x = self.x[:m]
            np.take(X, rows, axis=0, out=x)
        np.take(Y, rows, axis=0, out=self.y[:m])
        np.take(weights, rows, out=self.w[:m])
        return x, self.y[:m], self.w[:m]
