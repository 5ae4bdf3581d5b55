"""Drop-in replacements for scikit-learn's ``MLPClassifier`` and ``MLPRegressor``.

``from fastnn.sklearn import MLPClassifier`` in place of
``from sklearn.neural_network import MLPClassifier``: the same parameters
with the same names, defaults and meaning (scikit-learn 1.9), the same
fitted attributes, warnings and errors, trained by fastnn's kernels.
scikit-learn's own ``test_mlp.py`` runs against these classes in
``tests/test_sklearn_mlp.py``.

What fastnn adds, as parameters whose defaults keep scikit-learn's
behaviour: ``dtype`` (None: float32 data gives a float32 model, anything
else float64, as scikit-learn), ``n_threads``, ``backend`` (the kernels or
the NumPy reference), ``solver="adamw"``, ``lr_schedule`` (a
:mod:`fastnn.schedules` schedule), ``clip_norm``, per-layer ``activation``
lists, ``"leaky_relu"``, and the classifier's ``class_weight``.

``X`` may be sparse wherever scikit-learn's MLP takes it sparse (``fit``,
``partial_fit``, ``predict``, ``predict_proba``, ``score``): CSR and CSC pass
``validate_data`` as they are, other formats become CSR, and ``fit`` converts
it once to the kernels' CSR (:func:`fastnn.validation.as_sparse_features`),
never densified; the early-stopping split slices its rows.

Where the arithmetic differs from scikit-learn's (documented in
:mod:`fastnn.sklearn_solvers`): Adam adds ``ε`` to ``√v̂`` (PyTorch's form)
where scikit-learn adds it to ``√v``; the last, smaller batch of an epoch is
decayed by ``α / batch_size``; momentum follows PyTorch's form, equal to
scikit-learn's while the rate is constant.  Results therefore agree with
scikit-learn's in quality, not to the last digit.

scikit-learn is an optional dependency (``pip install "fastnn[sklearn]"``);
``import fastnn`` does not import this module.
"""

import numbers
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from fastnn.full_batch import FullBatchObjective
from fastnn.layout import bias_view, weight_view
from fastnn.network import Network
from fastnn.sklearn_solvers import LearningRate, Records, Validation, fit_lbfgs, fit_stochastic
from fastnn.validation import (
    as_sparse_features,
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_real,
    take_rows,
)

__all__ = ["MLPClassifier", "MLPRegressor"]

#: scikit-learn's "auto" batch size: min(200, n_samples)
AUTO_BATCH = 200
#: scikit-learn's activation names, and fastnn's own, -> fastnn's
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "sigmoid": "sigmoid", "leaky_relu": "leaky_relu"}
#: fastnn's output names -> scikit-learn's out_activation_
OUT_ACTIVATIONS = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                   "exp": "exp"}
SOLVERS = ("lbfgs", "sgd", "adam", "adamw")
#: the sparse formats validate_data passes on (others become the first), as scikit-learn's MLP
SPARSE_FORMATS = ["csr", "csc"]
LEARNING_RATES = ("constant", "invscaling", "adaptive")

_PARAMETERS = """\
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The i-th element is the number of neurons in the i-th hidden layer.
    activation : {{"identity", "logistic", "tanh", "relu"}}, default="relu"
        Hidden-layer activation (fastnn adds ``"leaky_relu"``, ``"sigmoid"`` as
        a name for ``"logistic"``, and a list of names, one per hidden layer).
    solver : {{"lbfgs", "sgd", "adam", "adamw"}}, default="adam"
        ``"lbfgs"``: full-batch L-BFGS-B (scipy) on the fused loss and
        gradient; ``"sgd"``: SGD with (Nesterov) momentum; ``"adam"``; fastnn's
        ``"adamw"`` (``alpha`` is then the decoupled decay rate).
    alpha : float, default=0.0001
        L2 penalty ``(α/2)‖W‖² / n_batch`` added to each batch's loss, as scikit-learn.
    batch_size : int or "auto", default="auto"
        Rows per mini-batch; ``"auto"`` is ``min(200, n_samples)``; clipped to
        ``n_samples`` (with a warning).  Not used by ``"lbfgs"``.
    learning_rate : {{"constant", "invscaling", "adaptive"}}, default="constant"
        The rate of ``solver="sgd"``: constant, ``learning_rate_init / (t + 1)
        ** power_t`` after each epoch (``t`` the rows seen), or divided by 5
        each time ``n_iter_no_change`` epochs failed to improve by ``tol``.
    learning_rate_init : float, default=0.001
        The initial learning rate (``"sgd"``, ``"adam"``).
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    max_iter : int, default=200
        Epochs at most (stochastic solvers), iterations at most (``"lbfgs"``).
{loss}    shuffle : bool, default=True
        Visit the rows in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Initial weights (scikit-learn's Glorot-uniform draws, so an int gives
        scikit-learn's initial weights), the ``early_stopping`` split, and the
        seed of the shuffling.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) that counts; for
        ``"lbfgs"`` the gradient tolerance ``gtol``.
    verbose : bool, default=False
        Print scikit-learn's progress lines.
    warm_start : bool, default=False
        Continue from the previous fit's weights (with a fresh optimizer state).
    momentum : float in [0, 1], default=0.9
        ``solver="sgd"`` only.
    nesterovs_momentum : bool, default=True
        ``solver="sgd"`` with ``momentum > 0`` only.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified for binary
        classification), stop when the validation score has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and keep the best epoch's weights.
    validation_fraction : float in [0, 1), default=0.1
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's decay rates.
    epsilon : float, default=1e-8
        Adam's ``ε``.
    n_iter_no_change : int or np.inf, default=10
        Epochs without an improvement of ``tol`` before stopping (or, with
        ``learning_rate="adaptive"``, dividing the rate by 5).
    max_fun : int, default=15000
        ``"lbfgs"``: loss evaluations at most.
    dtype : {{None, "float32", "float64"}}, default=None
        fastnn: the network's float type; None follows ``X`` (float32 stays
        float32, anything else is float64), as scikit-learn does.
    n_threads : int, default=None
        fastnn: threads of the kernels (all when None); read at every call.
    backend : {{"numba", "numpy"}}, default="numba"
        fastnn: the compiled kernels or the NumPy reference; read at every call.
    lr_schedule : fastnn.schedules.Schedule or callable, default=None
        fastnn: the rate per epoch of each fit (instead of ``learning_rate``).
    clip_norm : float, default=None
        fastnn: clip each step's gradient to this global L2 norm."""

_ATTRIBUTES = """\
    loss_ : float
        The loss of the last epoch (with the L2 term), or of the ``"lbfgs"`` solution.
    best_loss_ : float or None
        Lowest ``loss_curve_`` entry; None with ``early_stopping``.
    loss_curve_ : list of float
        The loss of each epoch (stochastic solvers).
    validation_scores_ : list of float or None
        With ``early_stopping``: the validation score ({score}) of each epoch.
    best_validation_score_ : float or None
        With ``early_stopping``: the best of ``validation_scores_``.
    t_ : int
        Training rows seen (rows × epochs).
    coefs_ : list of ndarray, length n_layers - 1
        ``coefs_[i]`` of shape ``(d_i, d_{{i+1}})``; assignable, as in scikit-learn.
    intercepts_ : list of ndarray, length n_layers - 1
        ``intercepts_[i]`` of shape ``(d_{{i+1}},)``; assignable.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When ``X`` had string column names.
    n_iter_ : int
        Epochs (iterations for ``"lbfgs"``) of the last fit.
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
        {outputs}
    network_ : fastnn.Network
        fastnn: the network that trains (its optimizer state carries
        ``partial_fit`` on)."""


def _document(cls, score, outputs, loss=""):
    cls.__doc__ = cls.__doc__.replace("    {parameters}", _PARAMETERS.format(loss=loss)).replace(
        "    {attributes}", _ATTRIBUTES.format(score=score, outputs=outputs))
    return cls


def _stochastic(estimator):
    """``partial_fit`` exists for the stochastic solvers only (scikit-learn's rule)."""
    if estimator.solver not in ("sgd", "adam", "adamw"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers. "
                             f"{estimator.solver} is not stochastic.")
    return True


def _load_weights(network, coefs, intercepts):
    """Copy scikit-learn's layout (``coefs[i]`` (d_i, d_{i+1}), ``intercepts[i]``) into
    ``network``'s parameters, checking every shape first."""
    layers = list(zip(network.weights, network.biases))
    for i, (W, b) in enumerate(layers):
        coef, intercept = np.asarray(coefs[i]), np.asarray(intercepts[i])
        if coef.shape != W.T.shape or intercept.shape != b.shape:
            raise ValueError(f"coefs_[{i}] has shape {coef.shape} and intercepts_[{i}] "
                             f"{intercept.shape}; layer {i} needs {W.T.shape} and {b.shape}")
    for (W, b), coef, intercept in zip(layers, coefs, intercepts):
        W[...] = np.asarray(coef).T
        b[...] = intercept


class _Targets:
    """Targets converted for the network: ``Y``, the output, its width, class codes."""

    def __init__(self, Y, output, n_units, codes=None, state=None):
        self.Y, self.output, self.n_units, self.codes = Y, output, n_units, codes
        self.state = state or {}


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: the checks, the fitting, the weights."""

    _loss_name = "log_loss"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # as scikit-learn's MLP: X may be a scipy.sparse matrix
        return tags

    def _set_parameters(self, values):
        # scikit-learn's rule: store the arguments unchanged; they are checked in fit
        for name, value in values.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    # ------------------------------------------------------------ checks

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, (bool, np.bool_)):
            sizes = (sizes,)
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError("hidden_layer_sizes must be an int or a sequence of ints such as "
                            f"(100,) or (64, 32); got {sizes!r}")
        sizes = list(sizes)
        for size in sizes:
            if isinstance(size, numbers.Integral) and size <= 0:
                raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return tuple(check_int(f"hidden_layer_sizes[{i}]", size, minimum=1)
                     for i, size in enumerate(sizes))

    def _activations(self, n_hidden):
        names = [self.activation] * n_hidden if isinstance(self.activation, str) else list(
            self.activation)
        if len(names) != n_hidden:
            raise ValueError(f"activation lists {len(names)} names but there are {n_hidden} "
                             "hidden layers; give one name, or one per hidden layer")
        return [ACTIVATIONS[check_choice("activation", name, tuple(ACTIVATIONS))]
                for name in names]

    def _check_settings(self):
        """Check every hyperparameter before anything is touched."""
        check_choice("solver", self.solver, SOLVERS)
        check_real("alpha", self.alpha, minimum=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int("batch_size", self.batch_size, minimum=1)
        check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        check_real("learning_rate_init", self.learning_rate_init, minimum=0.0,
                   min_inclusive=False)
        check_real("power_t", self.power_t, minimum=0.0)
        check_int("max_iter", self.max_iter, minimum=1)
        check_bool("shuffle", self.shuffle)
        check_real("tol", self.tol, minimum=0.0)
        check_bool("warm_start", self.warm_start)
        check_real("momentum", self.momentum, minimum=0.0, maximum=1.0)
        check_bool("nesterovs_momentum", self.nesterovs_momentum)
        check_bool("early_stopping", self.early_stopping)
        check_real("validation_fraction", self.validation_fraction, minimum=0.0, maximum=1.0,
                   max_inclusive=False)
        check_real("beta_1", self.beta_1, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_real("beta_2", self.beta_2, minimum=0.0, maximum=1.0, max_inclusive=False)
        check_real("epsilon", self.epsilon, minimum=0.0, min_inclusive=False)
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and self.n_iter_no_change == np.inf):
            check_int("n_iter_no_change", self.n_iter_no_change, minimum=1)
        check_int("max_fun", self.max_fun, minimum=1)
        if self.dtype is not None:
            check_dtype(self.dtype)
        hidden = self._hidden_sizes()
        return hidden, self._activations(len(hidden))

    # ------------------------------------------------------------ the weights

    def _init_weights(self, sizes, activations, dtype, random_state):
        """scikit-learn's initial weights: Glorot-uniform draws, layer by layer."""
        factor = 2.0 if activations and all(a == "sigmoid" for a in activations) else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype))
            intercepts.append(random_state.uniform(-bound, bound, fan_out).astype(dtype))
        return coefs, intercepts

    def _network(self):
        """``network_`` holding ``coefs_`` and ``intercepts_`` (which may have been assigned)."""
        check_is_fitted(self, "coefs_")
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if len(coefs) == 0 or len(coefs) != len(intercepts):
            raise ValueError("coefs_ and intercepts_ must be lists of the same length (one "
                             f"entry per layer); got {len(coefs)} and {len(intercepts)}")
        coefs = [np.asarray(c) for c in coefs]
        sizes = (coefs[0].shape[0], *(c.shape[1] if c.ndim == 2 else -1 for c in coefs))
        network = getattr(self, "network_", None)
        if network is None or tuple(network.sizes) != sizes:
            output = {v: k for k, v in OUT_ACTIVATIONS.items()}.get(
                getattr(self, "out_activation_", None), "identity")
            dtype = coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64
            hidden = self._activations(len(sizes) - 2)
            network = Network(sizes, activation=hidden, output=output, dtype=dtype,
                              backend=self.backend, n_threads=self.n_threads)
            self.network_ = network
        _load_weights(network, coefs, intercepts)
        network.backend = self.backend
        network.n_threads = self.n_threads
        return network

    def _keep_weights(self, network):
        """``coefs_`` and ``intercepts_`` from the trained network: new arrays, its dtype."""
        self.coefs_ = [np.ascontiguousarray(W.T) for W in network.weights]
        self.intercepts_ = [b.copy() for b in network.biases]

    # ------------------------------------------------------------ fitting

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        hidden, activations = self._check_settings()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        if first_pass:
            dtype = [np.float64, np.float32] if self.dtype is None else check_dtype(self.dtype)
        else:
            network = self._network()  # coefs_ as they are now (they are assignable)
            dtype = network.dtype
        X, y = validate_data(self, X, y, reset=first_pass, accept_sparse=SPARSE_FORMATS,
                             dtype=dtype, order="C", multi_output=True,
                             y_numeric=not is_classifier(self))
        dtype = X.dtype
        if scipy.sparse.issparse(X):
            # once, to the kernels' CSR: the early-stopping split then slices CSR rows and
            # every epoch's validation pass reads them as they are (a CSC X would be
            # converted again in every call that takes it)
            X = as_sparse_features(X, X.shape[1], dtype)
        targets = self._targets(y, not first_pass, incremental, classes, dtype)
        weights = self._row_weights(self._sample_weight(sample_weight, X.shape[0]), targets,
                                    incremental)
        random_state = check_random_state(self.random_state)
        sizes = (X.shape[1], *hidden, targets.n_units)
        if first_pass:
            coefs, intercepts = self._init_weights(sizes, activations, dtype, random_state)
        else:
            self._check_continuation(network, targets, sizes)

        # the early-stopping split: scikit-learn's, from the same random state
        validation, X_train, Y_train, w_train = None, X, targets.Y, weights
        stochastic = self.solver != "lbfgs"
        if stochastic and self.early_stopping:
            validation, X_train, Y_train, w_train = self._split(X, targets, weights,
                                                                random_state)
        seed = int(random_state.randint(np.iinfo(np.int32).max))
        if first_pass:
            network = Network(sizes, activation=activations, output=targets.output,
                              dtype=dtype, seed=seed, backend=self.backend,
                              n_threads=self.n_threads)
            _load_weights(network, coefs, intercepts)
        factor = 1.0 / targets.n_units if self._loss_name == "squared_error" else 1.0

        if stochastic:
            records = getattr(self, "_records", None)
            if first_pass or records is None:
                records = Records(early_stopping=self.early_stopping)
            rate = getattr(self, "_optimizer", None)
            if not incremental or rate is None:
                schedule = self.learning_rate if self.solver == "sgd" else "constant"
                rate = LearningRate(self.learning_rate_init, schedule, self.power_t)
            n_train = X_train.shape[0]
            if self.batch_size == "auto":
                batch_size = min(AUTO_BATCH, n_train)
            else:
                if self.batch_size > n_train:
                    warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                                  "is going to be clipped", stacklevel=3)
                batch_size = int(np.clip(self.batch_size, 1, n_train))
            n_iter = fit_stochastic(
                network, X_train, Y_train, w_train, records, rate, optimizer=self.solver,
                batch_size=batch_size, max_iter=self.max_iter, alpha=self.alpha, factor=factor,
                momentum=self.momentum, nesterov=self.nesterovs_momentum,
                betas=(self.beta_1, self.beta_2), epsilon=self.epsilon, tol=self.tol,
                n_iter_no_change=self.n_iter_no_change, shuffle=self.shuffle,
                validation=validation, incremental=incremental,
                continue_optimizer=incremental and hasattr(self, "_optimizer"),
                lr_schedule=self.lr_schedule, clip_norm=self.clip_norm,
                verbose=bool(self.verbose))
            self._set_records(records, rate)
        else:
            ones = np.ones(X.shape[0], dtype=dtype) if weights is None else weights.astype(dtype)
            self.loss_, n_iter = fit_lbfgs(network, X, targets.Y, ones, alpha=self.alpha,
                                           factor=factor, max_iter=self.max_iter,
                                           max_fun=self.max_fun, tol=self.tol)

        # the fitted attributes, now that training has succeeded
        for name, value in targets.state.items():
            setattr(self, name, value)
        self.network_ = network
        self._keep_weights(network)
        self.n_iter_ = n_iter
        self.n_layers_ = len(sizes)
        self.n_outputs_ = targets.n_units
        self.out_activation_ = OUT_ACTIVATIONS[targets.output]
        return self

    def _set_records(self, records, rate):
        self._records, self._optimizer = records, rate
        self._no_improvement_count = records.no_improvement_count
        self.loss_curve_ = list(records.loss_curve)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.t_ = records.t
        if records.early_stopping:
            self.validation_scores_ = list(records.validation_scores)
            self.best_validation_score_ = records.best_validation_score
            self.best_loss_ = None
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
            self.best_loss_ = records.best_loss

    @staticmethod
    def _check_continuation(network, targets, sizes):
        if tuple(network.sizes) != tuple(sizes) or network.output != targets.output:
            raise ValueError(
                f"cannot continue training (warm_start=True or partial_fit): the fitted network "
                f"has layer sizes {tuple(network.sizes)} and output {network.output!r}, but the "
                f"data and hyperparameters now ask for {tuple(sizes)} and {targets.output!r}; "
                "set warm_start=False to start afresh")

    def _split(self, X, targets, weights, random_state):
        """Hold out ``validation_fraction`` of the rows, as scikit-learn's ``train_test_split``."""
        stratify = None
        if is_classifier(self) and targets.n_units == 1:
            # scikit-learn stratifies on its binarized targets (binary problems only)
            stratify = LabelBinarizer().fit(targets.state["classes_"]).transform(
                targets.state["classes_"][targets.codes]).astype(bool)
        train, held_out = train_test_split(np.arange(X.shape[0]), random_state=random_state,
                                           test_size=self.validation_fraction,
                                           stratify=stratify)
        if held_out.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        w_train, w_val = (None, None) if weights is None else (weights[train], weights[held_out])
        validation = Validation(take_rows(X, held_out), targets.Y[held_out], w_val)
        return validation, take_rows(X, train), targets.Y[train], w_train

    @staticmethod
    def _sample_weight(sample_weight, n_rows):
        if sample_weight is None:
            return None
        weights = check_array(sample_weight, ensure_2d=False, dtype=np.float64,
                              input_name="sample_weight")
        if weights.ndim != 1 or weights.shape[0] != n_rows:
            raise ValueError(f"sample_weight.shape == {weights.shape}, expected ({n_rows},)!")
        if (weights < 0).any():
            raise ValueError("Negative values in data passed to sample_weight")
        if not weights.any():
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return weights

    def _row_weights(self, sample_weight, targets, incremental):
        return sample_weight

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight, activations, deltas,
                         coef_grads, intercept_grads):
        """scikit-learn's private ``(loss, gradient)`` of its lbfgs objective, in its packing.

        ``packed_coef_inter`` (float64, shape (n_params,)) holds every ``coefs_[i]``
        flattened, then every ``intercepts_[i]``; ``y`` the binarized targets,
        shape (n, n_outputs_).  Sets ``coefs_`` and ``intercepts_`` from it, as
        scikit-learn's does.  fastnn's own lbfgs works on ``network_.params``
        instead; this is kept for scikit-learn's gradient test (the arrays after
        ``sample_weight`` are its buffers and are not used).
        """
        shapes = [np.shape(c) for c in self.coefs_]
        start, coefs, intercepts = 0, [], []
        for shape in shapes:
            coefs.append(packed_coef_inter[start:start + shape[0] * shape[1]].reshape(shape))
            start += shape[0] * shape[1]
        for shape in shapes:
            intercepts.append(packed_coef_inter[start:start + shape[1]])
            start += shape[1]
        self.coefs_, self.intercepts_ = coefs, intercepts
        network = self._network()
        architecture = network.architecture
        X = architecture.features(X)
        Y = np.asarray(y, dtype=network.dtype)
        if architecture.output == "softmax":
            Y = Y.argmax(axis=1)  # one-hot rows -> class codes
        weights = np.ones(X.shape[0]) if sample_weight is None else sample_weight
        factor = 1.0 / Y.shape[1] if self._loss_name == "squared_error" and Y.ndim == 2 else 1.0
        objective = FullBatchObjective(network, X, architecture.targets(Y, X.shape[0]),
                                       np.asarray(weights, dtype=network.dtype), self.alpha,
                                       factor)
        with network.thread_scope():
            loss, grad = objective(network.params.astype(np.float64))
        table = architecture.table
        packed = [weight_view(grad, table, i).T.ravel() for i in range(len(shapes))]
        packed += [bias_view(grad, table, i) for i in range(len(shapes))]
        return loss, np.concatenate(packed)

    def _forward(self, X):
        network = self._network()
        X = validate_data(self, X, reset=False, accept_sparse=SPARSE_FORMATS,
                          dtype=network.dtype, order="C")
        return network.forward(X)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's, trained by fastnn's kernels.

    Binary problems have one logistic output unit, multiclass a softmax over
    one unit per class, multilabel indicator targets one logistic unit per
    label; the loss is the cross-entropy.

    Parameters
    ----------
    {parameters}
    class_weight : dict, "balanced" or None, default=None
        fastnn: weights per class label, multiplied into ``sample_weight``
        (single-label problems; ``"balanced"`` not in :meth:`partial_fit`).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (``arange(n_labels)`` for multilabel targets).
    {attributes}

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastnn.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=1e-2, max_iter=300,
    ...                     random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, n_threads=None, backend="numba", lr_schedule=None,
                 clip_norm=None, class_weight=None):
        self._set_parameters(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPClassifier
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)`` that keeps the weights and the optimizer state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            Every class of the stream; required on the first call.

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
        if continuing and hasattr(self, "classes_"):
            known = self.classes_
            if classes is not None and not np.array_equal(unique_labels(classes), known):
                raise ValueError(f"`classes={list(classes)!r}` is not the same as on last call "
                                 f"to partial_fit, was: {known!r}")
        elif incremental or continuing:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            known = unique_labels(classes)
        else:
            known = unique_labels(y)
        present = unique_labels(y)
        if continuing and self.warm_start and not incremental and not np.array_equal(
                present, known):
            raise ValueError("warm_start can only be used where `y` has the same classes as in "
                             f"the previous call to fit. Previously got {known}, `y` has "
                             f"{present}")
        if not np.isin(present, known).all():
            raise ValueError(f"Expected only labels in classes_ = {known}, but got {present}")
        row_codes = np.searchsorted(known, y)
        if len(known) <= 2:
            # one logistic unit (a single class trains it towards 0, as scikit-learn)
            return _Targets(row_codes, "sigmoid", 1, row_codes, {"classes_": known})
        return _Targets(row_codes, "softmax", len(known), row_codes, {"classes_": known})

    def _multilabel_targets(self, y, continuing, classes, dtype):
        n_labels = y.shape[1]
        labels = np.arange(n_labels)
        if classes is not None and not np.array_equal(unique_labels(classes), labels):
            raise ValueError(f"for multilabel targets with {n_labels} columns, classes must be "
                             f"arange({n_labels}); got {np.asarray(classes)!r}")
        if continuing and (self.n_outputs_ != n_labels
                           or not np.array_equal(self.classes_, labels)):
            raise ValueError(f"y is a multilabel indicator with {n_labels} labels, but the "
                             f"estimator was fitted on classes {self.classes_.tolist()!r}")
        return _Targets(np.asarray(y, dtype=dtype), "sigmoid", n_labels, None,
                        {"classes_": labels, "_label_dtype": y.dtype})

    def _row_weights(self, sample_weight, targets, incremental):
        """``sample_weight`` times the class weights; None when both are absent."""
        if self.class_weight is None:
            return sample_weight
        if not (isinstance(self.class_weight, dict) or (
                isinstance(self.class_weight, str) and self.class_weight == "balanced")):
            raise ValueError("class_weight must be None, 'balanced' or a dict {label: "
                             f"weight}}; got {self.class_weight!r}")
        if targets.codes is None:
            raise ValueError("class_weight applies to binary and multiclass targets, not to "
                             "multilabel ones")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError("class_weight='balanced' is not supported by partial_fit (one "
                             "batch does not show the class frequencies); pass a dict, e.g. "
                             "from sklearn.utils.class_weight.compute_class_weight")
        classes = targets.state["classes_"]
        factors = compute_class_weight(self.class_weight, classes=classes,
                                       y=classes[targets.codes])[targets.codes]
        return factors if sample_weight is None else sample_weight * factors

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Labels from ``classes_``; multilabel: 0/1 of the targets' dtype.
        """
        A = self._forward(X)
        if A.shape[1] > 1 and self.out_activation_ == "logistic":
            return (A > 0.5).astype(self._label_dtype)
        if A.shape[1] == 1:
            if len(self.classes_) == 1:
                return np.full(A.shape[0], self.classes_[0])
            return self.classes_[(A[:, 0] > 0.5).astype(np.intp)]
        return self.classes_[A.argmax(axis=1)]

    def predict_proba(self, X):
        """Probability estimates, shape (n_samples, n_classes), columns as ``classes_``."""
        A = self._forward(X)
        if A.shape[1] == 1:
            return np.hstack([1.0 - A, A])
        return A

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``, shape (n_samples, n_classes)."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's, trained by fastnn's kernels.

    Identity output with the squared error ``½ mean((ŷ − y)²)`` (averaged
    over the outputs, as scikit-learn), or ``loss="poisson"``: an exponential
    output with the Poisson deviance, for counts and rates.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from fastnn.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=500, n_features=5, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), learning_rate_init=1e-2, max_iter=300,
    ...                    random_state=0).fit(X, y / 100)
    >>> reg.score(X, y / 100) > 0.9
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, loss="squared_error",
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dtype=None, n_threads=None,
                 backend="numba", lr_schedule=None, clip_norm=None):
        self._set_parameters(locals())

    @property
    def _loss_name(self):
        return self.loss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)`` that keeps the weights and the optimizer state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : MLPRegressor
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _targets(self, y, continuing, incremental, classes, dtype):
        check_choice("loss", self.loss, ("squared_error", "poisson"))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if self.loss == "poisson" and (y < 0).any():
            raise ValueError("Some value(s) of y are negative which is not allowed for "
                             "Poisson regression.")
        n_targets = 1 if y.ndim == 1 else y.shape[1]
        if continuing and n_targets != self.n_outputs_:
            raise ValueError(f"y has {n_targets} target(s) but the estimator was fitted on "
                             f"{self.n_outputs_}")
        output = "exp" if self.loss == "poisson" else "identity"
        return _Targets(np.asarray(y, dtype=dtype), output, n_targets,
                        state={"_one_target": y.ndim == 1})

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        A = self._forward(X)
        return A[:, 0] if getattr(self, "_one_target", self.n_outputs_ == 1) else A


_document(MLPClassifier, "accuracy", '"logistic" or "softmax"')
_document(MLPRegressor, "R²", '"identity", or "exp" for the Poisson loss',
          loss='    loss : {"squared_error", "poisson"}, default="squared_error"\n'
               '        The loss (and the output: identity, or exp for Poisson).\n')
