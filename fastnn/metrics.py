"""Scores of predictions against targets: accuracy, R² and the confusion matrix."""

import numpy as np

from fastnn import codes


def score(output, A, Y, weights=None):
    """A network's score: R² for the regression outputs (identity, exp, as scikit-learn's
    regressors), accuracy for the others (softmax, sigmoid: every label of a row right).

    Parameters
    ----------
    output : str
    A, Y : ndarray, shape (n, d_L)
        Outputs and dense targets.
    weights : ndarray, shape (n,), optional
    """
    if output in codes.REGRESSION_OUTPUTS:
        return r2_score(A, Y, weights)
    return accuracy(output, A, Y, weights)


def accuracy(output, A, Y, weights=None):
    """Fraction of rows predicted right (weighted by ``weights`` when given).

    Parameters
    ----------
    output : {"softmax", "sigmoid"}
    A : ndarray, shape (n, d_L)
        Output activations.
    Y : ndarray, shape (n, d_L)
        Dense targets (one-hot/probabilities, or 0/1 labels).
    weights : ndarray, shape (n,), optional

    Returns
    -------
    float
        softmax: arg-max agreement; sigmoid: every label of the row right
        (subset accuracy, as scikit-learn scores multilabel problems).
    """
    if output == "softmax":
        right = A.argmax(axis=1) == Y.argmax(axis=1)
    else:
        right = ((A > 0.5) == (Y > 0.5)).all(axis=1)
    return float(np.average(right, weights=weights))


def r2_score(A, Y, weights=None):
    """Coefficient of determination, averaged uniformly over the outputs.

    Parameters
    ----------
    A, Y : ndarray, shape (n, d_L)
        Predictions and targets.
    weights : ndarray, shape (n,), optional
        Row weights.

    Returns
    -------
    float
        As scikit-learn's ``r2_score`` (``multioutput="uniform_average"``): an
        output whose targets are constant scores 1 if predicted exactly, else 0.
    """
    A = A.astype(np.float64)
    Y = Y.astype(np.float64)
    w = np.ones(Y.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    residual = w @ (Y - A) ** 2
    total = w @ (Y - np.average(Y, axis=0, weights=w)) ** 2
    return _r2(residual, total)


def _r2(residual, total):
    """R² averaged over the outputs, from per-output residual and total sums of squares."""
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1),
                      np.where(residual == 0, 1.0, 0.0))
    return float(scores.mean())


class R2Accumulator:
    """R² of data seen block by block: the same number as :func:`r2_score` on the whole.

    The targets' spread about their overall mean is merged from each block's
    mean and sum of squares (Chan et al.), which stays accurate where
    ``Σy² − nȳ²`` loses the precision of targets far from zero.
    """

    def __init__(self):
        self.count, self.mean, self.m2, self.residual = 0, 0.0, 0.0, 0.0

    def add(self, A, Y):
        """Take one block: predictions and targets, shape (rows, d_L)."""
        Y64 = Y.astype(np.float64)
        rows = Y64.shape[0]
        block_mean = Y64.mean(axis=0)
        block_m2 = ((Y64 - block_mean) ** 2).sum(axis=0)
        delta = block_mean - self.mean
        total = self.count + rows
        self.mean = self.mean + delta * rows / total
        self.m2 = self.m2 + block_m2 + delta ** 2 * self.count * rows / total
        self.count = total
        self.residual = self.residual + ((Y64 - A) ** 2).sum(axis=0)

    def score(self):
        """R² over every block added so far, averaged uniformly over the outputs."""
        return _r2(self.residual, self.m2)


def confusion_matrix(y_true, y_pred, n_classes):
    """Counts of (true class, predicted class) pairs.

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
        Labels in ``0..n_classes-1``.
    n_classes : int

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
        Entry ``[i, j]`` counts the rows of true class ``i`` predicted as ``j``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)
