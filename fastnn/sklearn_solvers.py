"""scikit-learn's training procedures for its MLP, run on a :class:`fastnn.Network`.

:mod:`fastnn.sklearn` turns scikit-learn's parameters into these calls; here
is what its solvers do, with scikit-learn's meaning:

- ``"sgd"``, ``"adam"`` (and fastnn's ``"adamw"``): :meth:`fastnn.Network.fit`
  over ``max_iter`` epochs, with an epoch callback (:class:`EpochRule`) that
  keeps scikit-learn's records (``loss_curve_``, ``t_``, ``best_loss_``,
  ``validation_scores_``) and its stopping rule (``tol``,
  ``n_iter_no_change``, the validation score when ``early_stopping``), and a
  :class:`LearningRate` that gives ``learning_rate="invscaling"`` and
  ``"adaptive"`` their rates;
- ``"lbfgs"``: ``scipy.optimize.minimize(method="L-BFGS-B")`` over the flat
  parameter buffer, one fused loss-and-gradient pass per evaluation
  (:class:`fastnn.full_batch.FullBatchObjective`).

scikit-learn's loss is fastnn's up to constants: its squared error averages
over the outputs where fastnn's sums (``factor = 1 / d_L``; its gradients,
though, are those of the sum, and so are these), and its penalty ``α/2 ‖W‖²``
is divided by the weight sum of each batch (fastnn's ``weight_decay`` is
``α / (batch_size · w̄)``).
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.optimize import _check_optimize_result

from fastnn import metrics
from fastnn.full_batch import FullBatchObjective, weight_squares
from fastnn.training import DivergenceError

#: scikit-learn's message for parameters that blew up (its tests match it)
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
              "values and need to be preprocessed.")


class LearningRate:
    """The rate of the next epoch, as scikit-learn's ``SGDOptimizer`` keeps it.

    ``"constant"``: ``learning_rate_init``; ``"invscaling"``: after each epoch
    ``learning_rate_init / (t + 1) ** power_t`` with ``t`` the rows seen so far
    (``t_``); ``"adaptive"``: divided by 5 each time the stopping rule fires,
    until it falls below 1e-6.  Adam's rate is constant (``schedule="constant"``).
    A fastnn ``lr_schedule`` (``Network.fit``) calls it with the epoch.

    Attributes
    ----------
    learning_rate : float
        The rate of the next epoch (scikit-learn's ``_optimizer.learning_rate``).
    """

    def __init__(self, learning_rate_init, schedule="constant", power_t=0.5):
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.schedule, self.power_t = schedule, float(power_t)

    def __call__(self, epoch):
        return self.learning_rate

    def iteration_ends(self, time_step):
        """After an epoch: ``time_step`` rows seen in all (``t_``)."""
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, message, verbose):
        """The stopping rule fired: whether to stop (else the rate was lowered)."""
        if self.schedule != "adaptive":
            if verbose:
                print(message + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self.learning_rate:f}")
        return False


@dataclass
class Records:
    """What scikit-learn records over a stochastic fit (kept across warm starts).

    Attributes mirror the estimator's: ``loss_curve`` is ``loss_curve_`` and
    so on; ``no_improvement_count`` is scikit-learn's ``_no_improvement_count``.
    """

    early_stopping: bool
    loss_curve: list = field(default_factory=list)
    t: int = 0
    no_improvement_count: int = 0
    best_loss: float = np.inf
    validation_scores: list = field(default_factory=list)
    best_validation_score: float = -np.inf


@dataclass
class Validation:
    """The held-out rows of ``early_stopping``: converted X, targets, row weights (or None)."""

    X: np.ndarray
    Y: np.ndarray
    weights: object


class EpochRule:
    """The epoch callback of a stochastic fit: scikit-learn's records and stopping rule.

    Parameters
    ----------
    records : Records
    rate : LearningRate
    n_rows : int
        Training rows (``t_`` grows by this each epoch).
    n_batches : int
        Batches per epoch (scikit-learn adds the penalty ``α/2 ‖W‖² / batch
        rows`` to each batch's loss, rows-weighted into the epoch's).
    alpha, factor : float
        scikit-learn's ``α``, and the scale of the data loss (see the module).
    tol, n_iter_no_change : float
    validation : Validation or None
        With ``early_stopping``: the rows scored after every epoch.
    verbose : bool
    """

    def __init__(self, records, rate, n_rows, n_batches, alpha, factor, tol, n_iter_no_change,
                 validation, verbose):
        self.records, self.rate = records, rate
        self.n_rows, self.n_batches = n_rows, n_batches
        self.alpha, self.factor = alpha, factor
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.validation, self.verbose = validation, verbose
        self.epochs = 0
        self.best_params = None
        self._dense_Y = None  # the held-out targets as the metrics take them

    def penalty(self, network):
        """The L2 term scikit-learn adds to an epoch's loss (with the epoch's last weights)."""
        return 0.5 * self.alpha * weight_squares(network) * self.n_batches / self.n_rows

    def __call__(self, network, history):
        records = self.records
        self.epochs += 1
        loss = float(history["loss"][-1]) * self.factor + self.penalty(network)
        records.loss_curve.append(loss)
        records.t += self.n_rows
        if self.verbose:
            print(f"Iteration {len(records.loss_curve)}, loss = {loss:.8f}")
        self.update_no_improvement(network, loss)
        self.rate.iteration_ends(records.t)
        if records.no_improvement_count > self.n_iter_no_change:
            if self.validation is not None:
                message = ("Validation score did not improve more than "
                           f"tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs.")
            else:
                message = ("Training loss did not improve more than "
                           f"tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs.")
            if self.rate.trigger_stopping(message, self.verbose):
                return True
            records.no_improvement_count = 0
        return False

    def update_no_improvement(self, network, loss):
        records = self.records
        if self.validation is not None:
            score = self.score(network)
            records.validation_scores.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < records.best_validation_score + self.tol:
                records.no_improvement_count += 1
            else:
                records.no_improvement_count = 0
            if score > records.best_validation_score:
                records.best_validation_score = score
                self.best_params = network.params.copy()
        else:
            if loss > records.best_loss - self.tol:
                records.no_improvement_count += 1
            else:
                records.no_improvement_count = 0
            records.best_loss = min(records.best_loss, loss)

    def score(self, network):
        """Accuracy or R² on the held-out rows (one forward pass); NaN when the outputs
        are not finite, as scikit-learn's."""
        v = self.validation
        if self._dense_Y is None:
            self._dense_Y = network.architecture.targets(v.Y, v.X.shape[0])
        A = network.forward(v.X)
        if not np.isfinite(A).all():
            return float("nan")
        return float(metrics.score(network.output, A, self._dense_Y, v.weights))


def fit_stochastic(network, X, Y, weights, records, rate, *, optimizer, batch_size, max_iter,
                   alpha, factor, momentum, nesterov, betas, epsilon, tol, n_iter_no_change,
                   shuffle, validation, incremental, continue_optimizer, lr_schedule, clip_norm,
                   verbose):
    """Train ``network`` in place with a stochastic solver; returns the epochs run.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0); Y : ndarray, shape (n, d_L); weights : ndarray (n,) or None
        The training rows (converted: dense, or the kernels' CSR), without the held-out ones.
    records : Records
        Updated in place.
    rate : LearningRate
        Updated in place (its rate carries over to the next ``partial_fit``).
    optimizer : {"sgd", "adam", "adamw"}
    batch_size : int
        Already clipped to ``[1, n]``.
    max_iter : int
        Epochs at most (1 with ``incremental``).
    alpha : float
        scikit-learn's L2 penalty.  fastnn's kernels decay by a fixed ``λ`` per
        step; scikit-learn divides ``α`` by the weight sum of each batch, so
        ``λ = α / (batch_size · w̄)`` (``w̄`` the mean row weight) is exact for
        full-batch training and for every full batch of unweighted rows (the
        last, smaller batch of an epoch is decayed by the same ``λ``; with
        "adamw", ``α`` is AdamW's decoupled decay rate).
    factor : float
        1, or ``1 / d_L`` for scikit-learn's squared error, which averages the
        recorded loss over the outputs (its steps follow the gradient of the
        sum, as fastnn's do: only the records are scaled).
    validation : Validation or None
    incremental : bool
        ``partial_fit``: one epoch, no ConvergenceWarning.
    continue_optimizer : bool
        Keep the momentum or Adam moments of the previous call (``partial_fit``).
    lr_schedule : fastnn schedule, callable or None
        fastnn's schedule instead of ``rate`` (then ``learning_rate`` is ignored).

    Returns
    -------
    int
        Epochs run (``n_iter_``).
    """
    n = X.shape[0]
    rule = EpochRule(records, rate, n, math.ceil(n / batch_size), alpha, factor, tol,
                     n_iter_no_change, validation, verbose)
    sgd = optimizer == "sgd"
    if optimizer == "adamw":
        decay = alpha
    else:
        # scikit-learn divides α by each batch's weight sum: B rows of mean weight w̄
        mean_weight = 1.0 if weights is None else float(np.mean(weights))
        decay = alpha / (batch_size * mean_weight)
    schedule = lr_schedule if lr_schedule is not None else rate
    try:
        network.fit(X, Y, epochs=1 if incremental else max_iter, batch_size=batch_size,
                    lr=rate.learning_rate, momentum=momentum if sgd else 0.0,
                    nesterov=bool(nesterov) and sgd and momentum > 0, weight_decay=decay,
                    shuffle=shuffle, optimizer=optimizer, betas=betas,
                    eps=epsilon, lr_schedule=schedule,
                    clip_norm=clip_norm, sample_weight=weights, callbacks=[rule],
                    warm_start=continue_optimizer, verbose=0)
    except DivergenceError:
        # Network.fit left the parameters of the last finite epoch; scikit-learn
        # keeps training on NaN and either restores the best validated epoch or
        # fails on the non-finite weights: both, without the NaN epochs
        if validation is None:
            raise ValueError(NON_FINITE) from None
        rule.epochs += 1
        records.validation_scores.append(float("nan"))
        records.loss_curve.append(float("nan"))
    if validation is not None and rule.best_params is not None:
        network.params = rule.best_params
    if not incremental and rule.epochs == max_iter:
        warnings.warn(f"Stochastic Optimizer: Maximum iterations ({max_iter}) reached and the "
                      "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
    return rule.epochs


def fit_lbfgs(network, X, Y, weights, *, alpha, factor, max_iter, max_fun, tol):
    """Full-batch L-BFGS-B on scikit-learn's objective; returns ``(loss, n_iter)``.

    Parameters
    ----------
    network : fastnn.Network
        Trained in place from its current parameters.
    X, Y, weights : the rows, their targets (as ``Network.fit`` takes them) and row
        weights (ones when unweighted)
    alpha, factor : float
        As for :func:`fit_stochastic`; the objective is
        :class:`fastnn.full_batch.FullBatchObjective`'s.
    max_iter, max_fun : int
        scipy's ``maxiter`` and ``maxfun``; ``tol`` is its ``gtol``.

    A ConvergenceWarning (scikit-learn's) when scipy stops on a limit.
    """
    architecture = network.architecture
    objective = FullBatchObjective(network, architecture.features(X),
                                   architecture.targets(Y, X.shape[0]),
                                   np.asarray(weights, dtype=network.dtype), alpha, factor)
    start = network.params.astype(np.float64)
    with network.thread_scope():
        result = scipy.optimize.minimize(objective, start, method="L-BFGS-B", jac=True,
                                         options={"maxfun": max_fun, "maxiter": max_iter,
                                                  "gtol": tol})
    network.params = result.x
    if not np.isfinite(network.params).all():
        raise ValueError(NON_FINITE)
    n_iter = _check_optimize_result("lbfgs", result, max_iter)
    return float(result.fun), n_iter
