"""The :class:`Network`: owns the flat buffers, checks input, calls one backend."""


import numpy as np

from fastnn import codes, evaluation, metrics, model_files, reference
from fastnn.aligned import aligned_zeros_like
from fastnn.architecture import Architecture
from fastnn.full_batch import loss_and_gradient
from fastnn.init import SCHEMES, initialize
from fastnn.layout import parameter_views
from fastnn.streaming import fit_streamed, is_out_of_core
from fastnn.threads import available_threads, thread_scope
from fastnn.training import FitPlan, run_fit
from fastnn.training_state import TrainingState
from fastnn.validation import (
    BACKENDS,
    as_sample_weight,
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_n_threads,
    check_path,
    check_real,
    check_seed,
    class_weight_factors,
    split_validation,
)


class Network:
    """A fully connected feed-forward network trained by backpropagation and SGD.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``d_0, ..., d_L`` (inputs first, outputs last).
    activation : str or sequence of str, default "relu"
        Hidden activation, one name for all hidden layers or one per hidden
        layer: ``relu``, ``sigmoid``, ``tanh``, ``identity``, ``leaky_relu``.
    output : {"softmax", "sigmoid", "identity", "exp"}, default "softmax"
        Output activation; it fixes the loss (cross-entropy, binary
        cross-entropy, squared error).
    dtype : {"float32", "float64"}, default "float32"
    seed : int or None, default 0
        Seeds the initial weights and the shuffling; ``None`` draws fresh
        entropy, which is then stored in :attr:`seed`.
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
    architecture : fastnn.architecture.Architecture
        The checked sizes, activations, output and dtype, with the codes and
        layer table the kernels take (the training code's view of the network).
    training_state : fastnn.training_state.TrainingState
        The parameters, shuffle generator, epochs trained and the optimizer
        state kept for warm starts.
    """

    def __init__(self, sizes, activation="relu", output="softmax", dtype="float32", seed=0,
                 backend="numba", n_threads=None, init="auto"):
        architecture = Architecture(sizes, activation, output, dtype)
        self.seed = check_seed(seed)
        self.init = check_choice("init", init, SCHEMES)
        self.backend = backend
        self.n_threads = n_threads
        self.architecture = architecture
        params = architecture.new_params()
        seeds = np.random.SeedSequence(self.seed)
        if self.seed is None:
            self.seed = seeds.entropy  # the fresh entropy drawn, so the run can be repeated
        init_seed, shuffle_seed = seeds.spawn(2)
        initialize(params, architecture.table, architecture.hidden, self.init,
                   np.random.default_rng(init_seed))
        self.training_state = TrainingState(params, np.random.default_rng(shuffle_seed))
        self.weights, self.biases = parameter_views(params, architecture.table)

    # ------------------------------------------------------------ description

    @property
    def params(self):
        """Every weight and bias in one flat C-contiguous buffer, shape (n_params,).

        Assigning to it copies the values into the buffer (``net.params += d``
        works), so ``weights`` and ``biases`` stay views of it.
        """
        return self.training_state.params

    @params.setter
    def params(self, values):
        buffer = self.training_state.params
        if values is buffer:
            return  # an in-place operator (+=) already wrote the buffer
        values = np.asarray(values)
        if values.shape != buffer.shape:
            raise ValueError(f"params must have shape {buffer.shape}, one value per weight and "
                             f"bias; got shape {values.shape}")
        buffer[...] = values

    # the description, read from the architecture (read-only: a network keeps its shape)
    sizes = property(lambda self: self.architecture.sizes,
                     doc="Layer widths ``(d_0, ..., d_L)``.")
    activation = property(lambda self: self.architecture.activation,
                          doc="Hidden activation names, one per hidden layer.")
    output = property(lambda self: self.architecture.output,
                      doc='``"softmax"``, ``"sigmoid"``, ``"identity"`` or ``"exp"``.')
    dtype = property(lambda self: self.architecture.dtype,
                     doc="The parameters' ``numpy.dtype`` (float32 or float64).")

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

    @property
    def kernels(self):
        """The backend module that runs the kernel contract: :mod:`fastnn.kernels` (numba)
        or :mod:`fastnn.reference` (numpy)."""
        if self._backend == "numpy":
            return reference
        from fastnn import kernels  # imported on first use: it loads Numba's compiled code
        return kernels

    def thread_scope(self):
        """A context manager: this network's thread count, owned by its backend's engine."""
        return thread_scope(self._n_threads, self._backend)

    # ------------------------------------------------------------ helpers

    def _features(self, X):
        return self.architecture.features(X)

    def _targets(self, y, n_rows):
        return self.architecture.targets(y, n_rows)

    # ------------------------------------------------------------ inference

    def forward(self, X):
        """Output activations ``A_L``.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix, shape (n, d_0)
            Every method that takes ``X`` takes a sparse one (CSR, CSC, COO,
            ...): converted once to CSR of the network's dtype, never densified.

        Returns
        -------
        ndarray, shape (n, d_L), of the network's dtype
        """
        X = self._features(X)
        with self.thread_scope():
            return evaluation.outputs(self, X)

    def predict_proba(self, X):
        """Probabilities: the softmax or sigmoid outputs, shape (n, d_L)."""
        if self.output in codes.REGRESSION_OUTPUTS:
            raise ValueError("predict_proba needs a softmax or sigmoid output; this network's "
                             f"output is {self.output!r} (use predict)")
        return self.forward(X)

    def predict(self, X):
        """Predictions for the rows of ``X``.

        Returns
        -------
        ndarray
            softmax: class labels (n,) int64; sigmoid: 0/1 labels, (n,) for one
            output unit else (n, d_L); identity, exp: values (exp: the
            predicted means ``exp(z)``), (n,) for one output unit else (n, d_L).
        """
        A = self.forward(X)
        if self.output == "softmax":
            return A.argmax(axis=1)
        if self.output == "sigmoid":
            A = (A > 0.5).astype(np.int64)
        return A[:, 0] if self.sizes[-1] == 1 else A

    def loss(self, X, y, sample_weight=None):
        """Mean data loss over the rows (no regulariser), weighted by
        ``sample_weight`` when given (``Σ w_i L_i / Σ w_i``), as a float."""
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        weights = None if sample_weight is None else as_sample_weight(
            sample_weight, X.shape[0], self.dtype)
        with self.thread_scope():
            return evaluation.outputs_and_loss(self, X, Y, weights)[1]

    def score(self, X, y, sample_weight=None):
        """Accuracy (softmax, sigmoid: every label of a row right) or R² (identity, exp:
        as scikit-learn's regressors), weighted by ``sample_weight`` when given."""
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        weights = None if sample_weight is None else as_sample_weight(
            sample_weight, X.shape[0], np.float64)
        return metrics.score(self.output, self.forward(X), Y, weights)

    # ------------------------------------------------------------ training

    def gradient(self, X, y, weight_decay=0.0, sample_weight=None):
        """Gradient of ``J = Σ w_i L_i / Σ w_i + (λ/2) Σ‖W_l‖²`` over all rows of ``X``.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix, shape (n, d_0)
        y : array-like
            Targets (see :meth:`fit`).
        weight_decay : float, default 0
            ``λ``; biases are not decayed.
        sample_weight : array-like, shape (n,), optional
            Row weights ``w_i`` (all 1 by default: the plain mean loss).

        Returns
        -------
        ndarray, shape (n_params,)
            Same layout as :attr:`params`.
        """
        weight_decay = check_real("weight_decay", weight_decay, minimum=0.0)
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        weights = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        grad = aligned_zeros_like(self.params)
        with self.thread_scope():
            loss_and_gradient(self, X, Y, weights, weight_decay,
                              self.architecture.workspace(X.shape[0]), grad)
        return grad

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.1, momentum=0.0, nesterov=False,
            weight_decay=0.0, shuffle=True, *, optimizer="sgd", betas=(0.9, 0.999), eps=1e-8,
            lr_schedule=None, clip_norm=None, sample_weight=None, class_weight=None,
            validation_data=None, validation_split=None, patience=None, eval_every=None,
            callbacks=(), checkpoint=None, checkpoint_every=1, resume=False,
            warm_start=False, progress=False, verbose=0, block_rows=None):
        """Train by mini-batch gradient descent; the parameters are updated in place.

        Training always continues from the current parameters.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix, shape (n, d_0)
            In memory, or out-of-core (a memmap from ``np.load(path,
            mmap_mode="r")``, an h5py dataset, a zarr or dask array): those are
            streamed in blocks of rows, see ``block_rows`` and
            :mod:`fastnn.streaming`.  A scipy.sparse matrix or array (any
            format) is converted once to CSR and never densified; it is
            streamed only when ``block_rows`` is given.
        y : array-like
            softmax: int labels (n,) in ``0..C-1``, or (n, C) one-hot or
            probability rows; sigmoid: (n,) 0/1 for one output unit, or (n, k)
            multilabel 0/1; identity: (n,) for one output unit, or (n, d_L).
            In memory or out-of-core.
        epochs : int, default 10
        batch_size : int, default 32
            1 is per-sample SGD, ``>= n`` full-batch gradient descent; the last
            batch of an epoch may be smaller (averaged over its own rows).
        lr : float, default 0.1
            Learning rate ``α > 0`` (the base rate of ``lr_schedule``).
        momentum : float in [0, 1), default 0
            SGD only.
        nesterov : bool, default False
            Nesterov momentum (PyTorch's form), SGD only; needs ``momentum > 0``.
        weight_decay : float, default 0
            ``λ`` on the weights, never the biases: L2 in the gradient for SGD
            and Adam, decoupled decay ``W ← W(1 - αλ)`` for AdamW.
        shuffle : bool, default True
            A fresh permutation each epoch (from the network's seed), else row order.
        optimizer : {"sgd", "adam", "adamw"}, default "sgd"
            PyTorch's formulas (docs/design.md, section 4).
        betas : (float, float), default (0.9, 0.999)
            Adam's moment decay rates.
        eps : float, default 1e-8
            Adam's ``ε``, added to ``√v̂``.
        lr_schedule : Schedule or callable, optional
            A :mod:`fastnn.schedules` schedule (step, exponential, cosine,
            reduce-on-plateau) or ``f(epoch) -> lr``, applied per epoch.
        clip_norm : float, optional
            Clip each step's gradient to this global L2 norm.
        sample_weight : array-like, shape (n,), optional
            Row weights: each batch's loss is ``Σ w_i L_i / Σ w_i``.
        class_weight : "balanced" or dict, optional
            Weights per class (single-label classification), multiplied into
            ``sample_weight``; "balanced" is scikit-learn's ``n / (k · count)``.
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch (``val_loss``, ``val_error`` or ``val_r2``);
            ``X_val`` dense or sparse, whatever ``X`` is.
        validation_split : float in (0, 1), optional
            Hold out this fraction of the rows (the last ones, before shuffling).
        patience : int, optional
            Early stopping: stop after this many epochs without a lower
            validation loss; the best epoch's parameters are restored at the end.
        eval_every : int, optional
            Record every mini-batch's loss and error in ``history.iterations``
            and evaluate the validation set every this many steps.
        callbacks : sequence of callables, optional
            Called after each epoch as ``f(network, history)`` (or
            ``obj.on_epoch_end(network, history)``); a true result stops training.
        checkpoint : path, optional
            Write a checkpoint (parameters, optimizer state, progress) here,
            atomically, every ``checkpoint_every`` epochs and at the end.
        checkpoint_every : int, default 1
        resume : bool, default False
            Continue from ``checkpoint`` if that file exists (checked to come
            from the same kind of fit); ``epochs`` counts the whole fit.
        warm_start : bool, default False
            Keep the optimizer state (momentum, Adam moments) of the previous
            fit instead of starting it from zero.
        progress : bool, default False
            Show a tqdm progress bar over each epoch's mini-batches.
        verbose : int, default 0
            1: print one line per epoch.
        block_rows : int, optional
            Stream ``X`` in blocks of this many rows, read in the background
            while the previous block trains (memory bounded by the block, not
            the data).  By default out-of-core inputs are streamed in blocks of
            about 64 MiB (whole batches) and in-memory arrays converted whole.

        Returns
        -------
        History
            Per epoch ``loss``, ``error`` (classification), ``lr``, ``time`` and
            the validation metrics; see :class:`fastnn.History`.

        Raises
        ------
        ValueError, TypeError
            Bad input, before any parameter changes.
        fastnn.DivergenceError
            The loss or a parameter became non-finite; the parameters are
            restored to the start of the diverging epoch.
        """
        plan = FitPlan.from_arguments(locals())
        warm_start = check_bool("warm_start", warm_start)
        if block_rows is not None or is_out_of_core(X):
            return fit_streamed(self, X, y, sample_weight, class_weight, validation_data,
                                plan.validation_split, plan, warm_start, block_rows)
        X = self._features(X)
        Y = self._targets(y, X.shape[0])
        weights = as_sample_weight(sample_weight, X.shape[0], self.dtype)
        factors = class_weight_factors(class_weight, self.output, Y)
        if factors is not None:
            weights = (weights * factors).astype(self.dtype)
        validation = None
        if plan.validation_split is not None:
            (X, Y, weights), validation = split_validation(X, Y, weights,
                                                           plan.validation_split)
        elif validation_data is not None:
            X_val = self.architecture.features(validation_data[0], name="X_val")
            validation = (X_val, self._targets(validation_data[1], X_val.shape[0]))
        return run_fit(self, X, Y, weights, validation, plan, warm_start)

    def partial_fit(self, X, y, batch_size=32, lr=0.1, momentum=0.0, nesterov=False,
                    weight_decay=0.0, shuffle=True, **options):
        """One pass over ``X`` that keeps the optimizer state between calls.

        The same arguments as :meth:`fit` (``epochs`` is 1 and ``warm_start``
        True), for streams of data arriving in pieces; validation, early
        stopping and checkpoints belong to :meth:`fit`.
        """
        for name in ("epochs", "warm_start", "validation_data", "validation_split", "patience",
                     "checkpoint", "resume"):
            if name in options:
                raise TypeError(f"partial_fit does not take {name!r}; it is one epoch that "
                                "keeps the optimizer state (use fit for more)")
        return self.fit(X, y, 1, batch_size, lr, momentum, nesterov, weight_decay, shuffle,
                        warm_start=True, **options)

    # ------------------------------------------------------------ files

    def save(self, path):
        """Write the network to ``path`` as ``.npz`` (no pickle), atomically."""
        model_files.save_network(self, path)

    @classmethod
    def load(cls, path, backend="numba", n_threads=None):
        """Read a network written by :meth:`save` (or the one in a checkpoint written by
        ``fit(..., checkpoint=path)``); the file is checked, never executed.

        Parameters
        ----------
        path : str or path-like
        backend, n_threads
            Run-time settings (not stored in the file).
        """
        stored = model_files.read_network(path)
        network = cls(stored["sizes"], activation=stored["activation"], output=stored["output"],
                      dtype=stored["dtype"], seed=None, backend=backend, n_threads=n_threads,
                      init=stored["init"] if stored["init"] in SCHEMES else "auto")
        network.params[...] = stored["params"]
        network.training_state.rng_state = stored["rng_state"]
        return network

    # ------------------------------------------------------------ interoperability

    def to_onnx(self, path=None, *, dtype=None, opset=None):
        """The forward pass as a standard ONNX model, written to ``path`` when given.

        One ``Gemm`` per layer, each hidden activation (``Relu``, ``Sigmoid``,
        ``Tanh``, ``LeakyRelu`` with alpha 0.01; nothing for identity), then
        ``Softmax`` (axis 1) or ``Sigmoid`` for probabilities, or nothing for an
        identity output; any ONNX runtime computes :meth:`forward` with it.
        Needs the onnx package (``pip install "fastnn[onnx]"``); see
        :mod:`fastnn.onnx_export`.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write the model (atomically); nothing is written when None.
        dtype : {"float32", "float64"}, optional
            The graph's input, weights and output; the network's dtype by default.
        opset : int, optional
            The ONNX opset to declare, at least 13; 17 by default (every
            onnxruntime since 1.12 runs it).  onnxruntime runs a float64
            ``LeakyRelu`` from opset 16 on only.

        Returns
        -------
        onnx.ModelProto
            Input ``"input"`` of shape ``(batch, d_0)`` and output
            ``"probabilities"`` (softmax, sigmoid) or ``"values"`` (identity) of
            shape ``(batch, d_L)``; ``batch`` is a symbolic dimension.

        Raises
        ------
        ImportError
            onnx is not installed.
        """
        from fastnn import onnx_export

        path = check_path("path", path, optional=True)
        dtype = self.dtype if dtype is None else check_dtype(dtype)
        opset = (onnx_export.OPSET if opset is None
                 else check_int("opset", opset, minimum=onnx_export.MIN_OPSET))
        return onnx_export.export_network(self, path, dtype, opset)

    def to_torch(self, *, logits=False):
        """The network as a ``torch.nn.Sequential`` with the same outputs.

        ``Linear`` layers with copies of the weights, the hidden activations as
        ``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU(0.01)`` or ``Identity``, and
        the output as a last module: ``Softmax(dim=1)``, ``Sigmoid`` or
        ``Identity``.  Needs PyTorch (``pip install "fastnn[torch]"``); see
        :mod:`fastnn.torch_interop`.

        Parameters
        ----------
        logits : bool, default False
            Leave off the output module, so the module returns the logits
            ``Z_L`` (n, d_L): what ``CrossEntropyLoss``, ``BCEWithLogitsLoss``
            and ``MSELoss`` take when training on in PyTorch.

        Returns
        -------
        torch.nn.Sequential
            Of the network's dtype, on the CPU; ``(n, d_0) -> (n, d_L)``.
        """
        from fastnn import torch_interop

        return torch_interop.to_sequential(self, check_bool("logits", logits))

    @classmethod
    def from_torch(cls, module, output=None, *, seed=0, backend="numba", n_threads=None):
        """A network with the layers and weights of a ``torch.nn.Sequential``.

        The module is Linear layers alternating with ``ReLU``,
        ``LeakyReLU(0.01)``, ``Sigmoid``, ``Tanh`` or ``Identity`` (a Linear
        directly after a Linear is an identity hidden layer), optionally ending
        in ``Softmax(dim=1)``, ``Sigmoid`` or ``Identity`` as the output, as
        :meth:`to_torch` writes it.  A Linear without a bias reads as a zero
        bias.  The dtype is the module's (float32 or float64).  See
        :mod:`fastnn.torch_interop`.

        Parameters
        ----------
        module : torch.nn.Sequential
        output : {"softmax", "sigmoid", "identity"}, optional
            Required when the module ends with a Linear layer (its logits: a
            model trained with ``CrossEntropyLoss``, ``BCEWithLogitsLoss`` or
            ``MSELoss``); else read from the last module, and checked against it.
        seed, backend, n_threads
            As for :class:`Network` (the seed drives later shuffling; the
            weights are the module's).

        Returns
        -------
        Network
            ``weights[l]`` (d_l, d_{l-1}) and ``biases[l]`` (d_l,) copied from
            the module's Linear layers.

        Raises
        ------
        TypeError, ValueError
            Not a Sequential, a module or layout fastnn cannot read, a missing
            or conflicting output, or an unsupported dtype; the message names
            the module and what was expected.
        ImportError
            PyTorch is not installed.
        """
        from fastnn import torch_interop

        return torch_interop.from_sequential(module, output, network_class=cls, seed=seed,
                                             backend=backend, n_threads=n_threads)

    # ------------------------------------------------------------ misc

    def __getstate__(self):
        # weights/biases are views into params: pickled as they are, they would
        # come back as separate copies that training never touches
        return {"architecture": self.architecture.fields(), "seed": self.seed,
                "init": self.init, "backend": self._backend, "n_threads": self._n_threads,
                "training_state": self.training_state.to_dict()}

    def __setstate__(self, state):
        self.architecture = Architecture(**state["architecture"])
        self.seed, self.init = state["seed"], state["init"]
        # run-time settings as they were (not re-checked: this machine may have
        # fewer threads; the setters check the next assignment)
        self._backend, self._n_threads = state["backend"], state["n_threads"]
        self.training_state = TrainingState.from_dict(state["training_state"])
        self.weights, self.biases = parameter_views(self.params, self.architecture.table)

    @property
    def n_params(self):
        """Number of weights and biases."""
        return self.params.shape[0]

    def __repr__(self):
        return (f"Network({list(self.sizes)}, activation={list(self.activation)!r}, "
                f"output={self.output!r}, dtype={self.dtype.name!r}, "
                f"backend={self._backend!r}, n_threads={self._n_threads})")
