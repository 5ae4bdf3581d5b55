"""The :class:`Network`: owns the flat buffers, checks input, calls one backend."""

import time

import numpy as np

from fastnn import codes, metrics, reference
from fastnn import io as model_io
from fastnn.history import History
from fastnn.init import SCHEMES, initialize
from fastnn.layout import layer_table, n_params, n_units, parameter_views, workspace_block
from fastnn.threads import available_threads, thread_scope
from fastnn.validation import (
    BACKENDS,
    as_features,
    as_targets,
    check_activation,
    check_choice,
    check_dtype,
    check_n_threads,
    check_output,
    check_real,
    check_seed,
    check_sizes,
    check_training,
)

#: rows per forward call when predicting: bounds the workspace, not the data
CHUNK_ROWS = 4096


class Network:
    """A fully connected feed-forward network trained by backpropagation and SGD.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``d_0, ..., d_L`` (inputs first, outputs last).
    activation : str or sequence of str, default "relu"
        Hidden activation, one name for all hidden layers or one per hidden
        layer: ``relu``, ``sigmoid``, ``tanh``, ``identity``, ``leaky_relu``.
    output : {"softmax", "sigmoid", "identity"}, default "softmax"
        Output activation; it fixes the loss (cross-entropy, binary
        cross-entropy, squared error).
    dtype : {"float32", "float64"}, default "float32"
    seed : int or None, default 0
        Seeds the initial weights and the shuffling; ``None`` draws fresh entropy.
    backend : {"numba", "numpy"}, default "numba"
        The compiled kernels, or the pure-NumPy reference (same numbers).
    n_threads : int or None, default None
        Threads used during calls (all available when None); restored after.
    init : {"auto", "he", "glorot", "torch"}, default "auto"
        ``auto`` is He for relu/leaky_relu layers and Glorot otherwise;
        ``torch`` is PyTorch's ``nn.Linear`` default.

    Attributes
    ----------
    params : ndarray, shape (n_params,)
        Every weight and bias in one flat C-contiguous buffer.
    weights : list of ndarray
        Writable views ``W_l`` of shape ``(d_l, d_{l-1})`` into ``params``.
    biases : list of ndarray
        Writable views ``b_l`` of shape ``(d_l,)`` into ``params``.
    """

    def __init__(self, sizes, activation="relu", output="softmax", dtype="float32", seed=0,
                 backend="numba", n_threads=None, init="auto"):
        sizes = check_sizes(sizes)
        self.activation, self._hidden = check_activation(activation, len(sizes) - 2)
        self.output = check_output(output, sizes[-1])
        self.dtype = check_dtype(dtype)
        self.seed = check_seed(seed)
        self.init = check_choice("init", init, SCHEMES)
        self.backend = backend
        self.n_threads = n_threads
        self.sizes = sizes
        self._output_code = codes.OUTPUTS[self.output]
        self._table = layer_table(sizes)
        self.params = np.zeros(n_params(self._table), dtype=self.dtype)
        self.weights, self.biases = parameter_views(self.params, self._table)
        init_seed, shuffle_seed = np.random.SeedSequence(self.seed).spawn(2)
        initialize(self.params, self._table, self._hidden, self.init,
                   np.random.default_rng(init_seed))
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._epochs_done = 0

    # ------------------------------------------------------------ settings

    @property
    def backend(self):
        """``"numba"`` or ``"numpy"``; may be changed at any time."""
        return self._backend

    @backend.setter
    def backend(self, value):
        self._backend = check_choice("backend", value, BACKENDS)

    @property
    def n_threads(self):
        """Threads used during calls; setting None means all available."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value):
        self._n_threads = check_n_threads(value, available_threads())

    def _kernels(self):
        if self._backend == "numpy":
            return reference
        from fastnn import kernels  # imported on first use: it loads Numba's compiled code
        return kernels

    def _threads(self):
        return thread_scope(self._n_threads, self._backend)

    # ------------------------------------------------------------ helpers

    def _workspace(self, rows):
        return np.empty(rows * n_units(self._table), dtype=self.dtype)

    def _logits_in_chunks(self, X):
        """Yield ``(start, X_chunk, Z_chunk)``: logits of consecutive row blocks of ``X``."""
        kernels = self._kernels()
        capacity = min(X.shape[0], CHUNK_ROWS)
        acts = self._workspace(capacity)
        last = len(self.sizes) - 2
        for start in range(0, X.shape[0], capacity):
            X_chunk = X[start:start + capacity]
            kernels.forward(self.params, self._table, self._hidden, X_chunk, acts)
            yield start, X_chunk, workspace_block(acts, self._table, last, X_chunk.shape[0])

    def _features(self, X):
        return as_features(X, self.sizes[0], self.dtype)

    def _targets(self, y, n_rows):
        return as_targets(y, self.output, self.sizes[-1], n_rows, self.dtype)

    # ------------------------------------------------------------ inference

    def forward(self, X):
        """Output activations ``A_L``.

        Parameters
        ----------
        X : array-like, shape (n, d_0)

        Returns
        -------
        ndarray, shape (n, d_L), of the network's dtype
        """
        X = self._features(X)
        A = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        kernels = self._kernels()
        with self._threads():
            for start, X_chunk, Z in self._logits_in_chunks(X):
                kernels.output_activation(self._output_code, Z,
                                          A[start:start + X_chunk.shape[0]])
        return A

    def predict_proba(self, X):
        """Probabilities: the softmax or sigmoid outputs, shape (n, d_L)."""
        if self.output == "identity":
            raise ValueError("predict_proba needs a softmax or sigmoid output; this network's "
                             "output is 'identity' (use predict)")
        return self.forward(X)

    def predict(self, X):
        """Predictions for the rows of ``X``.

        Returns
        -------
        ndarray
            softmax: class labels (n,) int64; sigmoid: 0/1 labels, (n,) for one
            output unit else (n, d_L); identity: values, (n,) for one output
            unit else (n, d_L).
        """
        A = self.forward(X)
        if self.output == "softmax":
            return A.argmax(axis=1)
        if self.output == "sigmoid":
            A = (A > 0.5).astype(np.int64)
        return A[:, 0] if self.sizes[-1] == 1 else A

    def loss(self, X, y):
        """Mean data loss over the rows (no regulariser), as a float."""
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        kernels = self._kernels()
        total = 0.0
        with self._threads():
            for start, X_chunk, Z in self._logits_in_chunks(X):
                total += kernels.loss_sum(self._output_code, Z,
                                          Y[start:start + X_chunk.shape[0]])
        return total / X.shape[0]

    def score(self, X, y):
        """Accuracy (softmax, sigmoid: every label of a row right) or R² (identity)."""
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        A = self.forward(X)
        if self.output == "identity":
            return metrics.r2_score(A, Y)
        return metrics.accuracy(self.output, A, Y)

    # ------------------------------------------------------------ training

    def gradient(self, X, y, weight_decay=0.0):
        """Gradient of ``J = mean loss + (λ/2) Σ‖W_l‖²`` over all rows of ``X``.

        Parameters
        ----------
        X : array-like, shape (n, d_0)
        y : array-like
            Targets (see :meth:`fit`).
        weight_decay : float, default 0
            ``λ``; biases are not decayed.

        Returns
        -------
        ndarray, shape (n_params,)
            Same layout as :attr:`params`.
        """
        weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        n = X.shape[0]
        kernels = self._kernels()
        acts, deltas = self._workspace(n), self._workspace(n)
        grad = np.empty_like(self.params)
        last = len(self.sizes) - 2
        with self._threads():
            kernels.forward(self.params, self._table, self._hidden, X, acts)
            kernels.output_delta(self._output_code, workspace_block(acts, self._table, last, n),
                                 Y, self.dtype.type(1.0 / n),
                                 workspace_block(deltas, self._table, last, n))
            kernels.backward(self.params, self._table, self._hidden, X, acts, deltas,
                             self.dtype.type(weight_decay), grad)
        return grad

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.1, momentum=0.0, nesterov=False,
            weight_decay=0.0, shuffle=True):
        """Train with mini-batch SGD; the parameters are updated in place.

        Parameters
        ----------
        X : array-like, shape (n, d_0)
        y : array-like
            softmax: int labels (n,) in ``0..C-1``, or (n, C) one-hot or
            probability rows; sigmoid: (n,) 0/1 for one output unit, or (n, k)
            multilabel 0/1; identity: (n,) for one output unit, or (n, d_L).
        epochs : int, default 10
        batch_size : int, default 32
            1 is per-sample SGD, ``>= n`` full-batch gradient descent.
        lr : float, default 0.1
            Learning rate ``α > 0``.
        momentum : float in [0, 1), default 0
        nesterov : bool, default False
            Nesterov momentum (PyTorch's form); needs ``momentum > 0``.
        weight_decay : float, default 0
            L2 strength ``λ`` on the weights (not the biases).
        shuffle : bool, default True
            A fresh permutation each epoch (from the network's seed), else row order.

        Returns
        -------
        History
            Per epoch: ``loss`` (mean mini-batch loss), ``error`` (mean
            mini-batch misclassification rate, classification only), ``time``.
        """
        epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle = check_training(
            epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle)
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        n = X.shape[0]
        batch = min(batch_size, n)
        n_batches = -(-n // batch)
        batch_rows = np.full(n_batches, batch, dtype=np.float64)
        batch_rows[-1] = n - batch * (n_batches - 1)
        cast = self.dtype.type
        kernels = self._kernels()
        # workspace allocated once per fit; the epochs allocate nothing
        grad = np.empty_like(self.params)
        velocity = np.zeros_like(self.params)
        xbuf = np.empty((batch, self.sizes[0]), dtype=self.dtype)
        ybuf = np.empty((batch, self.sizes[-1]), dtype=self.dtype)
        acts, deltas = self._workspace(batch), self._workspace(batch)
        batch_stats = np.empty((n_batches, 2), dtype=np.float64)
        history = History()
        with self._threads():
            for _ in range(epochs):
                order = self._shuffle_rng.permutation(n) if shuffle else np.arange(n)
                started = time.perf_counter()
                kernels.train_epoch(self.params, grad, velocity, self._table, self._hidden,
                                    self._output_code, X, Y, order, batch, cast(lr),
                                    cast(momentum), nesterov, cast(weight_decay), xbuf, ybuf,
                                    acts, deltas, batch_stats)
                elapsed = time.perf_counter() - started
                record = {"loss": float(batch_rows @ batch_stats[:, 0]) / n}
                if self.output != "identity":
                    record["error"] = float(batch_rows @ batch_stats[:, 1]) / n
                record["time"] = elapsed
                history.record(self._epochs_done, **record)
                self._epochs_done += 1
        return history

    # ------------------------------------------------------------ files

    def save(self, path):
        """Write the network to ``path`` as ``.npz`` (no pickle), atomically."""
        model_io.save_network(self, path)

    @classmethod
    def load(cls, path, backend="numba", n_threads=None):
        """Read a network written by :meth:`save`; the file is checked, never executed.

        Parameters
        ----------
        path : str or path-like
        backend, n_threads
            Run-time settings (not stored in the file).
        """
        stored = model_io.read_network(path)
        network = cls(stored["sizes"], activation=stored["activation"], output=stored["output"],
                      dtype=stored["dtype"], seed=None, backend=backend, n_threads=n_threads,
                      init=stored["init"] if stored["init"] in SCHEMES else "auto")
        network.params[...] = stored["params"]
        network._shuffle_rng.bit_generator.state = stored["rng_state"]
        return network

    # ------------------------------------------------------------ misc

    @property
    def n_params(self):
        """Number of weights and biases."""
        return self.params.shape[0]

    def __repr__(self):
        return (f"Network({list(self.sizes)}, activation={list(self.activation)!r}, "
                f"output={self.output!r}, dtype={self.dtype.name!r}, "
                f"backend={self._backend!r}, n_threads={self._n_threads})")
