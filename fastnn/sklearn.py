"""scikit-learn estimators built on :class:`fastnn.Network`.

:class:`MLPClassifier` and :class:`MLPRegressor` are real scikit-learn
estimators: every hyperparameter is an ``__init__`` argument stored unchanged,
inputs are checked by scikit-learn's own ``validate_data`` (so errors carry
scikit-learn's types and messages), they pass
``sklearn.utils.estimator_checks.check_estimator``, and they work inside
``Pipeline``, ``GridSearchCV``, ``clone`` and ``pickle``.  The training itself
is :meth:`fastnn.Network.fit`: the compiled kernels, the optimisers, the
schedules and early stopping are fastnn's, with fastnn's argument names.

scikit-learn is an optional dependency (``pip install "fastnn[sklearn]"``);
this is the only fastnn module that imports it, and ``import fastnn`` does not
import this module.

Choices worth knowing (the class docstrings give the details):

- ``dtype="float64"`` by default, like scikit-learn's own MLP on float64 data:
  probabilities and predictions then agree with scikit-learn's numerical
  expectations (rows summing to 1 within 1e-7, predictions independent of how
  the rows are batched).  ``dtype="float32"`` halves the memory and roughly
  doubles the speed of the matrix products.
- A binary problem has one sigmoid output unit (scikit-learn's choice: one
  logit instead of two redundant ones); ``predict_proba`` returns the two
  columns ``[1 - p, p]``.  Multiclass uses a softmax over one unit per class,
  multilabel indicator targets one sigmoid unit per label.
- ``momentum`` and ``nesterov`` apply to ``optimizer="sgd"`` only, and
  ``nesterov`` only with ``momentum > 0``, as in scikit-learn, so a grid can
  range over optimisers without tripping over them.
- ``random_state``: an int is fastnn's ``seed`` itself (the same int gives the
  same initial weights as ``Network(..., seed=int)``); ``None`` draws fresh
  entropy for each fit; a ``numpy.random.RandomState`` gives one int per fit.
"""

import math
import numbers
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from fastnn import codes
from fastnn.architecture import Architecture
from fastnn.network import Network
from fastnn.validation import (
    check_activation,
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_real,
    hold_out,
)

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's "auto" batch size: min(200, n_samples)
AUTO_BATCH = 200

# Shared parameter and attribute documentation, spliced into both class docstrings.
_PARAMETERS = """\
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Widths of the hidden layers, ``d_1, ..., d_{L-1}``; ``()`` gives no
        hidden layer (a linear model with the output's loss).
    activation : str or sequence of str, default="relu"
        Hidden activation, one name for every hidden layer or one per hidden
        layer: ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"identity"``,
        ``"leaky_relu"`` (slope 0.01).
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The update rule, PyTorch's formulas (see :meth:`fastnn.Network.fit`).
    lr : float, default=1e-3
        Learning rate (the base rate of ``lr_schedule``).
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)`` as in
        scikit-learn.  1 is per-sample SGD; a size at least the number of
        training rows is full-batch gradient descent.
    epochs : int, default=200
        Passes over the training data per :meth:`fit` (the maximum when
        ``early_stopping`` is on).  :meth:`partial_fit` always runs one.
    momentum : float in [0, 1), default=0.9
        Momentum, used only with ``optimizer="sgd"`` (scikit-learn's default).
    nesterov : bool, default=True
        Nesterov momentum (PyTorch's form), used only with
        ``optimizer="sgd"`` and ``momentum > 0``.
    weight_decay : float, default=0.0
        ``λ``: L2 penalty ``(λ/2) Σ‖W_l‖²`` added to each batch's mean loss
        (``"adamw"``: decoupled decay).  Biases are never decayed.
        scikit-learn's ``alpha`` divides the penalty by the batch size, so its
        ``alpha`` corresponds to ``weight_decay = alpha / batch_size``.
    betas : (float, float), default=(0.9, 0.999)
        Adam's moment decay rates (``"adam"``, ``"adamw"``).
    eps : float, default=1e-8
        Adam's ``ε``, added to ``√v̂``.
    lr_schedule : fastnn.schedules.Schedule or callable, default=None
        Learning rate per epoch within each :meth:`fit`:
        a :mod:`fastnn.schedules` schedule or ``f(epoch) -> lr``; ``None`` is
        constant.  Each fit starts the schedule afresh (a :meth:`partial_fit`
        call is epoch 0 of it).
    clip_norm : float, default=None
        Clip each step's gradient to this global L2 norm.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified for
        single-label classification) and stop once the validation loss has
        not improved for ``patience`` epochs; the best epoch's parameters are
        restored.  Not available in :meth:`partial_fit`.
    validation_fraction : float in (0, 1), default=0.1
        Share of the rows held out when ``early_stopping`` is on.
    patience : int, default=10
        Epochs without a lower validation loss before stopping (scikit-learn's
        ``n_iter_no_change``).
    shuffle : bool, default=True
        Visit the rows in a fresh random order each epoch.
    dtype : {"float64", "float32"}, default="float64"
        Floating-point type of the network and of the data it is given.
        float64 matches scikit-learn's precision; float32 is about twice as
        fast and takes half the memory.
    init : {"auto", "he", "glorot", "torch"}, default="auto"
        Initial weights: He for relu/leaky_relu layers and Glorot otherwise
        (``"auto"``), or one scheme for all; ``"torch"`` is PyTorch's default.
    random_state : int, RandomState instance or None, default=None
        An int is the network's ``seed`` (initial weights, shuffling and the
        early-stopping split); ``None`` draws fresh entropy at each fit; a
        ``numpy.random.RandomState`` supplies one int per fit.
    n_threads : int, default=None
        Threads used by the kernels during a call (all available when None).
        Read at every call, so it may be changed after fitting.
    backend : {"numba", "numpy"}, default="numba"
        The compiled kernels, or fastnn's pure-NumPy reference (same numbers).
        Read at every call.
    warm_start : bool, default=False
        When True, :meth:`fit` continues from the current network and its
        optimizer state (the architecture must be unchanged); when False it
        starts from fresh initial weights.
    verbose : int, default=0
        1 prints one line per epoch."""

_ATTRIBUTES = """\
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``X`` had string column names (a DataFrame).
    n_outputs_ : int
        Number of output units ``d_L``.
    out_activation_ : str
        The network's output: ``"softmax"``, ``"sigmoid"`` or ``"identity"``.
    network_ : fastnn.Network
        The trained network (``network_.sizes`` is
        ``(n_features_in_, *hidden_layer_sizes, n_outputs_)``).
    coefs_ : list of ndarray, length n_layers - 1
        ``coefs_[i]`` of shape ``(d_i, d_{i+1})``: the weight matrices in
        scikit-learn's (in, out) layout, as writable transposed views into
        ``network_.params``.
    intercepts_ : list of ndarray, length n_layers - 1
        ``intercepts_[i]`` of shape ``(d_{i+1},)``: writable views of the biases.
    loss_curve_ : list of float
        Mean training loss of every epoch run so far (over warm starts and
        :meth:`partial_fit` calls), each mini-batch measured before its update.
    loss_ : float
        The last entry of ``loss_curve_``.
    best_loss_ : float or None
        Lowest entry of ``loss_curve_``; None when ``early_stopping`` is on.
    validation_scores_ : list of float or None
        With ``early_stopping``: the validation score ({score}) after every
        epoch; else None.
    validation_loss_curve_ : list of float or None
        With ``early_stopping``: the validation loss after every epoch (the
        quantity early stopping watches); else None.
    best_validation_score_ : float or None
        With ``early_stopping``: the validation score of the epoch whose
        parameters were restored; else None.
    n_iter_ : int
        Epochs run by the last :meth:`fit` (1 after :meth:`partial_fit`).
    t_ : int
        Training rows processed so far (rows × epochs, over all calls)."""


def _document(cls, score):
    """Splice the shared parameter and attribute lists into a class docstring."""
    cls.__doc__ = cls.__doc__.replace("    {parameters}", _PARAMETERS).replace(
        "    {attributes}", _ATTRIBUTES.replace("{score}", score))
    return cls


def _draw_seed(random_state):
    """The integer seed of one fit (see the ``random_state`` parameter)."""
    if random_state is None:
        # fresh OS entropy, kept as the network's seed so the fit can be repeated
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, np.random.RandomState):
        # what scikit-learn's estimators draw from a RandomState
        return int(random_state.randint(np.iinfo(np.int32).max))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state,
                                                                     (bool, np.bool_)):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative int; got {random_state}")
        return int(random_state)
    raise ValueError(f"random_state must be None, a non-negative int or a "
                     f"numpy.random.RandomState; got {random_state!r}")


def _split_seed(seed):
    # Network(seed) spawns children 0 and 1 of SeedSequence(seed) for the
    # initial weights and the shuffling; child 2 is an independent stream for
    # the early-stopping split.
    return int(np.random.SeedSequence(seed, spawn_key=(2,)).generate_state(1)[0])


def _check_sample_weight(sample_weight, n_rows):
    """Row weights as float64 (n_rows,), or None; scikit-learn's error types."""
    if sample_weight is None:
        return None
    weights = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                          input_name="sample_weight")
    if weights.ndim != 1 or weights.shape[0] != n_rows:
        raise ValueError(f"sample_weight.shape == {weights.shape}, expected ({n_rows},)")
    if (weights < 0).any():
        raise ValueError("Negative values in data passed to sample_weight")
    if not weights.any():
        raise ValueError("Sample weights must contain at least one non-zero number; "
                         "all weights are zero")
    return weights


class _Targets:
    """Targets converted for the network, and what the estimator keeps about them.

    ``Y`` goes to :meth:`fastnn.Network.fit`; ``output``/``n_units`` fix the
    last layer; ``codes`` are the class index of each row (single-label
    classification) for class weights and stratification; ``state`` holds the
    fitted attributes to set once training succeeded.
    """

    def __init__(self, Y, output, n_units, codes=None, state=None):
        self.Y, self.output, self.n_units, self.codes = Y, output, n_units, codes
        self.state = state or {}


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: checks and fitting."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam",
                 lr=1e-3, batch_size="auto", epochs=200, momentum=0.9, nesterov=True,
                 weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, lr_schedule=None,
                 clip_norm=None, early_stopping=False, validation_fraction=0.1, patience=10,
                 shuffle=True, dtype="float64", init="auto", random_state=None, n_threads=None,
                 backend="numba", warm_start=False, verbose=0):
        # scikit-learn's rule: store the arguments unchanged; they are checked in fit
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.lr_schedule = lr_schedule
        self.clip_norm = clip_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.shuffle = shuffle
        self.dtype = dtype
        self.init = init
        self.random_state = random_state
        self.n_threads = n_threads
        self.backend = backend
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------ checks

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, (bool, np.bool_)):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError("hidden_layer_sizes must be an int or a sequence of ints such as "
                            f"(100,) or (64, 32); got {sizes!r}")
        return tuple(check_int(f"hidden_layer_sizes[{i}]", size, minimum=1)
                     for i, size in enumerate(sizes))

    def _check_settings(self):
        """Check what the estimator itself interprets; Network.fit checks the rest
        (lr, betas, eps, weight_decay, ...) before it touches any parameter."""
        check_choice("optimizer", self.optimizer, tuple(codes.OPTIMIZERS))
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int("batch_size", self.batch_size, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        check_real("momentum", self.momentum, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_bool("nesterov", self.nesterov)
        check_bool("early_stopping", self.early_stopping)
        check_real("validation_fraction", self.validation_fraction, minimum=0.0, maximum=1.0,
                   min_inclusive=False, max_inclusive=False)
        check_int("patience", self.patience, minimum=1)
        check_bool("warm_start", self.warm_start)
        return self._hidden_sizes(), check_dtype(self.dtype)

    def _network(self):
        """The fitted network with the current run-time settings applied."""
        check_is_fitted(self, "network_")
        network = self.network_
        network.backend = self.backend
        network.n_threads = self.n_threads
        return network

    def _check_architecture(self, network, sizes, output, dtype):
        activation = check_activation(self.activation, len(sizes) - 2)[0]
        now = (tuple(network.sizes), tuple(network.activation), network.output,
               network.dtype.name)
        wanted = (tuple(sizes), tuple(activation), output, dtype.name)
        if network.architecture != Architecture(sizes, activation, output, dtype):
            raise ValueError(
                "cannot continue training (warm_start=True or partial_fit): the fitted network "
                f"has sizes {now[0]}, activation {list(now[1])}, output {now[2]!r} and dtype "
                f"{now[3]!r}, but the hyperparameters and data now ask for sizes {wanted[0]}, "
                f"activation {list(wanted[1])}, output {wanted[2]!r} and dtype {wanted[3]!r}; "
                "set warm_start=False to start afresh")

    # ------------------------------------------------------------ fitting

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden, dtype = self._check_settings()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True (it runs one "
                             "epoch that keeps the optimizer state; use fit for early stopping)")
        fitted = hasattr(self, "network_")
        continuing = fitted and (incremental or self.warm_start)
        X, y = validate_data(self, X, y, reset=not continuing, dtype=dtype, order="C",
                             multi_output=True, y_numeric=not isinstance(self, ClassifierMixin))
        targets = self._targets(y, continuing, incremental, classes, dtype)
        weights = self._row_weights(_check_sample_weight(sample_weight, X.shape[0]), targets,
                                    y, incremental)
        seed = _draw_seed(self.random_state)
        sizes = (X.shape[1], *hidden, targets.n_units)
        if continuing:
            network = self._network()
            self._check_architecture(network, sizes, targets.output, dtype)
        else:
            network = Network(sizes, activation=self.activation, output=targets.output,
                              dtype=dtype, seed=seed, backend=self.backend,
                              n_threads=self.n_threads, init=self.init)

        X_train, Y_train, w_train, validation = X, targets.Y, weights, None
        if self.early_stopping:
            X_train, Y_train, w_train, validation = self._split(X, targets, weights, seed)
        if self.batch_size == "auto":
            batch_size = min(AUTO_BATCH, X_train.shape[0])
        else:
            batch_size = self.batch_size
        sgd = self.optimizer == "sgd"
        momentum = self.momentum if sgd else 0.0
        history = network.fit(
            X_train, Y_train, epochs=1 if incremental else self.epochs, batch_size=batch_size,
            lr=self.lr, momentum=momentum, nesterov=bool(self.nesterov) and momentum > 0,
            weight_decay=self.weight_decay, shuffle=self.shuffle, optimizer=self.optimizer,
            betas=self.betas, eps=self.eps, lr_schedule=self.lr_schedule,
            clip_norm=self.clip_norm, sample_weight=w_train, validation_data=validation,
            patience=self.patience if validation is not None else None,
            warm_start=continuing, verbose=self.verbose)
        if history.stop_reason == "interrupted":
            warnings.warn("training interrupted by the user; the network holds the parameters "
                          "of the last completed epoch", UserWarning, stacklevel=3)

        # every fitted attribute is set only now that training has succeeded
        for name, value in targets.state.items():
            setattr(self, name, value)
        self.network_ = network
        self.n_outputs_ = targets.n_units
        self.out_activation_ = targets.output
        self._record(history, X_train.shape[0], continuing)
        return self

    def _split(self, X, targets, weights, seed):
        """Hold out ``validation_fraction`` of the rows for early stopping."""
        n = X.shape[0]
        # scikit-learn's test_size rule: the held-out share rounded up
        n_held = min(math.ceil(self.validation_fraction * n), n - 1)
        how = "random" if targets.codes is None else "stratified"
        train, held_out = hold_out(n, max(n_held, 1), how, seed=_split_seed(seed),
                                   labels=targets.codes)
        if held_out.shape[0] < 2:
            raise ValueError(f"The validation set is too small ({held_out.shape[0]} rows of "
                             f"{X.shape[0]}). Increase 'validation_fraction' or the size of "
                             "your dataset.")
        w_train = None if weights is None else weights[train]
        return X[train], targets.Y[train], w_train, (X[held_out], targets.Y[held_out])

    def _record(self, history, n_rows, continuing):
        """Fitted attributes from a :class:`fastnn.History`."""
        previous = continuing and hasattr(self, "loss_curve_")
        losses = list(history["loss"]) if len(history) else []
        self.loss_curve_ = (list(self.loss_curve_) if previous else []) + losses
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.n_iter_ = len(history)
        self.t_ = (self.t_ if previous else 0) + n_rows * len(history)
        if self.early_stopping:
            scores = [float(s) for s in self._validation_scores(history)]
            val_losses = list(history["val_loss"]) if len(history) else []
            keep = previous and self.validation_scores_ is not None
            self.validation_scores_ = (list(self.validation_scores_) if keep else []) + scores
            self.validation_loss_curve_ = ((list(self.validation_loss_curve_) if keep else [])
                                           + val_losses)
            best = history.best_epoch
            self.best_validation_score_ = (scores[history.epoch.index(best)]
                                           if best is not None else None)
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.validation_loss_curve_ = None
            self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None

    def _row_weights(self, sample_weight, targets, y, incremental):
        return sample_weight

    # ------------------------------------------------------------ attributes

    @property
    def coefs_(self):
        """Weights in scikit-learn's layout: views ``W_l.T`` of shape (d_{l-1}, d_l)."""
        check_is_fitted(self, "network_")
        return [weight.T for weight in self.network_.weights]

    @property
    def intercepts_(self):
        """Biases ``b_l`` of shape (d_l,), views into ``network_.params``."""
        check_is_fitted(self, "network_")
        return list(self.network_.biases)

    def _forward(self, X):
        network = self._network()
        X = validate_data(self, X, reset=False, dtype=network.dtype, order="C")
        return network.forward(X)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by fastnn.

    Binary and multiclass targets of any labels (ints, strings, ...), and
    multilabel indicator matrices.  A binary problem has one sigmoid output
    unit (``predict_proba`` returns ``[1 - p, p]``); multiclass a softmax
    with one unit per class (cross-entropy loss); multilabel one sigmoid unit
    per label (binary cross-entropy).

    Parameters
    ----------
    {parameters}
    class_weight : dict, "balanced" or None, default=None
        Weights per class label, multiplied into ``sample_weight``;
        ``"balanced"`` is ``n_samples / (n_classes * count(class))``.
        Single-label problems only; ``"balanced"`` is not available in
        :meth:`partial_fit` (compute the weights with
        ``sklearn.utils.class_weight.compute_class_weight`` and pass a dict).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted; for multilabel targets ``arange(n_labels)``.
    {attributes}

    See Also
    --------
    MLPRegressor : The regressor.
    fastnn.Network : The network class doing the work.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastnn.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), lr=1e-2, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, optimizer="adam",
                 lr=1e-3, batch_size="auto", epochs=200, momentum=0.9, nesterov=True,
                 weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, lr_schedule=None,
                 clip_norm=None, early_stopping=False, validation_fraction=0.1, patience=10,
                 shuffle=True, dtype="float64", init="auto", random_state=None, n_threads=None,
                 backend="numba", warm_start=False, verbose=0, class_weight=None):
        super().__init__(
            hidden_layer_sizes, activation, optimizer=optimizer, lr=lr, batch_size=batch_size,
            epochs=epochs, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
            betas=betas, eps=eps, lr_schedule=lr_schedule, clip_norm=clip_norm,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            patience=patience, shuffle=shuffle, dtype=dtype, init=init,
            random_state=random_state, n_threads=n_threads, backend=backend,
            warm_start=warm_start, verbose=verbose)
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # ------------------------------------------------------------ fitting

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` for ``epochs`` epochs (fewer with early stopping).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multilabel indicator matrix of 0/1.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: each mini-batch's loss is ``Σ w_i L_i / Σ w_i``.

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)`` that keeps the network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            Every class of the whole stream; required on the first call
            (unless the estimator was fitted before), since one batch may
            not show them all.  Not needed for multilabel targets (if given,
            it must be ``arange(n_labels)``).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _targets(self, y, continuing, incremental, classes, dtype):
        if scipy.sparse.issparse(y):
            y = y.toarray()
        check_classification_targets(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        kind = type_of_target(y)
        if kind == "multilabel-indicator":
            return self._multilabel_targets(y, continuing, classes, dtype)
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"{type(self).__name__} takes binary, multiclass or "
                             f"multilabel-indicator targets; got {kind!r} targets "
                             "(multiclass-multioutput is not supported)")

        if continuing:
            known = self.classes_
            if classes is not None and not np.array_equal(unique_labels(classes), known):
                raise ValueError(f"classes={np.asarray(classes)!r} differs from the classes "
                                 f"of the earlier fit, {known!r}")
        elif incremental:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every label of the stream, e.g. np.unique(y_all))")
            known = unique_labels(classes)
        else:
            known = unique_labels(y)
        if len(known) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; the "
                             f"data has only one class: {known[0]!r}")
        present = unique_labels(y)
        unknown = present[~np.isin(present, known)]
        if unknown.size:
            raise ValueError(f"y has labels {unknown.tolist()!r} that are not among the "
                             f"classes {known.tolist()!r}")
        if continuing and self.warm_start and not incremental and not np.array_equal(
                present, known):
            raise ValueError("warm_start can only be used where y has the same classes as in "
                             f"the previous call to fit: previously {known.tolist()!r}, y has "
                             f"{present.tolist()!r}")
        row_codes = np.searchsorted(known, y)
        if len(known) == 2:
            return _Targets(row_codes, "sigmoid", 1, row_codes, {"classes_": known})
        return _Targets(row_codes, "softmax", len(known), row_codes, {"classes_": known})

    def _multilabel_targets(self, y, continuing, classes, dtype):
        n_labels = y.shape[1]
        labels = np.arange(n_labels)
        if classes is not None and not np.array_equal(unique_labels(classes), labels):
            raise ValueError(f"for multilabel targets with {n_labels} columns, classes must be "
                             f"arange({n_labels}); got {np.asarray(classes)!r}")
        if continuing and (self.out_activation_ != "sigmoid" or self.n_outputs_ != n_labels
                           or not np.array_equal(self.classes_, labels)):
            raise ValueError(f"y is a multilabel indicator with {n_labels} labels, but the "
                             f"estimator was fitted on classes {self.classes_.tolist()!r}")
        return _Targets(np.asarray(y, dtype=dtype), "sigmoid", n_labels, None,
                        {"classes_": labels, "_label_dtype": y.dtype})

    def _row_weights(self, sample_weight, targets, y, incremental):
        """``sample_weight`` times the class weights; None when both are absent."""
        weights = sample_weight
        if self.class_weight is not None:
            if not (isinstance(self.class_weight, dict) or (
                    isinstance(self.class_weight, str) and self.class_weight == "balanced")):
                raise ValueError("class_weight must be None, 'balanced' or a dict {label: "
                                 f"weight}}; got {self.class_weight!r}")
            if targets.codes is None:
                raise ValueError("class_weight applies to binary and multiclass targets, not "
                                 "to multilabel ones")
            if incremental and isinstance(self.class_weight, str):
                raise ValueError("class_weight='balanced' is not supported by partial_fit (one "
                                 "batch does not show the class frequencies); pass a dict, "
                                 "e.g. from sklearn.utils.class_weight.compute_class_weight")
            classes = targets.state["classes_"]
            factors = compute_class_weight(self.class_weight, classes=classes,
                                           y=classes[targets.codes])[targets.codes]
            weights = factors if weights is None else weights * factors
        if weights is not None and targets.codes is not None and not incremental:
            # one batch of a stream may hold one class; a whole training set may not
            weighted = np.unique(targets.codes[weights > 0])
            if weighted.size < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes with non-zero "
                    "weight; sample_weight/class_weight leave only one class: "
                    f"{targets.state['classes_'][weighted[0]]!r}")
        return weights

    def _validation_scores(self, history):
        # accuracy, as scikit-learn's MLPClassifier reports (subset accuracy for multilabel)
        return [1.0 - error for error in history["val_error"]] if len(history) else []

    # ------------------------------------------------------------ prediction

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,), or (n_samples, n_labels) for multilabel
            Labels from ``classes_``; multilabel: 0/1 of the training targets' dtype.
        """
        A = self._forward(X)
        if A.shape[1] > 1 and self.out_activation_ == "sigmoid":
            return (A > 0.5).astype(self._label_dtype)
        if A.shape[1] == 1:
            return self.classes_[(A[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[A.argmax(axis=1)]

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1 except for
            multilabel targets, where column k is ``P(label k)``.
        """
        A = self._forward(X)
        if A.shape[1] == 1:
            return np.hstack([1.0 - A, A])
        return A

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by fastnn.

    Identity output, squared-error loss ``½‖ŷ − y‖²``; one target
    (``predict`` returns shape (n_samples,)) or several (one output unit each).
    The targets are used as given: scale them (e.g. with
    ``sklearn.compose.TransformedTargetRegressor``) when they are far from unit size.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    MLPClassifier : The classifier.
    fastnn.Network : The network class doing the work.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from fastnn.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=500, n_features=5, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), lr=1e-2, random_state=0).fit(X, y / 100)
    >>> reg.score(X, y / 100) > 0.9
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Train on ``(X, y)`` for ``epochs`` epochs (fewer with early stopping).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights: each mini-batch's loss is ``Σ w_i L_i / Σ w_i``.

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` that keeps the network and its optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _targets(self, y, continuing, incremental, classes, dtype):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        n_targets = 1 if y.ndim == 1 else y.shape[1]
        if continuing and n_targets != self.n_outputs_:
            raise ValueError(f"y has {n_targets} target(s) but the estimator was fitted on "
                             f"{self.n_outputs_}")
        return _Targets(np.asarray(y, dtype=dtype), "identity", n_targets,
                        state={"_one_target": y.ndim == 1})

    def _validation_scores(self, history):
        # R², as scikit-learn's MLPRegressor reports
        return list(history["val_r2"]) if len(history) else []

    def predict(self, X):
        """Predicted values.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
            1-D when the training targets were 1-D.
        """
        A = self._forward(X)
        return A[:, 0] if self._one_target else A


_document(MLPClassifier, "accuracy")
_document(MLPRegressor, "R²")
