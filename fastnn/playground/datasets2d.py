"""The playground's toy data: points in the plane, the features computed from them.

The six datasets of the TensorFlow Playground, with its formulas: four for
classification (``circle``, ``xor``, ``gauss``, ``spiral``: labels 0 and 1,
the original's -1 and +1) and two for regression (``plane``,
``multi_gauss``: targets in [-1, 1]).  The points lie in about
[-6, 6] x [-6, 6], the square the page draws (:data:`EXTENT`).

``noise`` is the original's fraction in [0, 0.5] (the page's 0-50 %).  As in
the original it moves the points of ``gauss`` and ``spiral``, but for
``circle``, ``xor`` and the regressions it jitters the place where the label
is read and keeps the point where it was, so that noise shows as wrong labels
near the boundary.

Only NumPy; nothing here touches a network.
"""

import numpy as np

#: half the side of the square the page shows: x1 and x2 run over [-EXTENT, EXTENT]
EXTENT = 6.0

CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("plane", "multi_gauss")
DATASETS = {"classification": CLASSIFICATION, "regression": REGRESSION}

#: the feature inputs the original offers, by name, as functions of (x1, x2)
FEATURES = {
    "x1": lambda x1, x2: x1,
    "x2": lambda x1, x2: x2,
    "x1_squared": lambda x1, x2: x1 * x1,
    "x2_squared": lambda x1, x2: x2 * x2,
    "x1_x2": lambda x1, x2: x1 * x2,
    "sin_x1": lambda x1, x2: np.sin(x1),
    "sin_x2": lambda x1, x2: np.sin(x2),
}


def problem_of(dataset):
    """``"classification"`` or ``"regression"``: the problem ``dataset`` belongs to."""
    return "classification" if dataset in CLASSIFICATION else "regression"


def _uniform(rng, low, high, n):
    return rng.uniform(low, high, n)


def _circle(n, noise, rng):
    radius = 5.0
    half = n // 2
    # inner disc (label 1) and outer ring (label 0), a gap between them
    r = np.concatenate([_uniform(rng, 0, 0.5 * radius, half),
                        _uniform(rng, 0.7 * radius, radius, n - half)])
    angle = _uniform(rng, 0, 2 * np.pi, n)
    x1, x2 = r * np.sin(angle), r * np.cos(angle)
    read1 = x1 + _uniform(rng, -radius, radius, n) * noise
    read2 = x2 + _uniform(rng, -radius, radius, n) * noise
    labels = (np.hypot(read1, read2) < 0.5 * radius).astype(np.int64)
    return np.column_stack([x1, x2]), labels


def _xor(n, noise, rng):
    padding = 0.3  # keeps the points off the axes, where the label flips
    x1 = _uniform(rng, -5, 5, n)
    x2 = _uniform(rng, -5, 5, n)
    x1 += np.where(x1 > 0, padding, -padding)
    x2 += np.where(x2 > 0, padding, -padding)
    read1 = x1 + _uniform(rng, -5, 5, n) * noise
    read2 = x2 + _uniform(rng, -5, 5, n) * noise
    labels = (read1 * read2 >= 0).astype(np.int64)
    return np.column_stack([x1, x2]), labels


def _gauss(n, noise, rng):
    # the variance grows linearly from 0.5 (no noise) to 4 (noise 0.5)
    variance = 0.5 + noise / 0.5 * 3.5
    half = n // 2
    centres = np.array([[2.0, 2.0]] * half + [[-2.0, -2.0]] * (n - half))
    points = centres + rng.normal(0.0, np.sqrt(variance), (n, 2))
    labels = np.r_[np.ones(half, dtype=np.int64), np.zeros(n - half, dtype=np.int64)]
    return points, labels


def _spiral(n, noise, rng):
    half = n // 2
    arms = []
    for count, turn, label in ((half, 0.0, 1), (n - half, np.pi, 0)):
        i = np.arange(count) / max(count, 1)
        r = 5 * i
        t = 1.75 * i * 2 * np.pi + turn
        x1 = r * np.sin(t) + _uniform(rng, -1, 1, count) * noise
        x2 = r * np.cos(t) + _uniform(rng, -1, 1, count) * noise
        arms.append((np.column_stack([x1, x2]), np.full(count, label, dtype=np.int64)))
    return np.concatenate([a[0] for a in arms]), np.concatenate([a[1] for a in arms])


def _read_with_noise(n, noise, rng, label_of):
    radius = EXTENT
    x1 = _uniform(rng, -radius, radius, n)
    x2 = _uniform(rng, -radius, radius, n)
    read1 = x1 + _uniform(rng, -radius, radius, n) * noise
    read2 = x2 + _uniform(rng, -radius, radius, n) * noise
    return np.column_stack([x1, x2]), label_of(read1, read2)


def plane_target(x1, x2):
    """The ``plane`` dataset's target: ``(x1 + x2) / 10``, in [-1.2, 1.2] on the square."""
    return (x1 + x2) / 10.0


#: ``multi_gauss``: six bumps (centre x1, centre x2, sign)
_BUMPS = ((-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1))


def multi_gauss_target(x1, x2):
    """The ``multi_gauss`` target: the strongest of six signed bumps of radius 2."""
    target = np.zeros(np.broadcast(x1, x2).shape)
    for c1, c2, sign in _BUMPS:
        bump = sign * np.clip(1 - np.hypot(x1 - c1, x2 - c2) / 2, 0, 1)
        target = np.where(np.abs(bump) > np.abs(target), bump, target)
    return target


_MAKERS = {
    "circle": _circle,
    "xor": _xor,
    "gauss": _gauss,
    "spiral": _spiral,
    "plane": lambda n, noise, rng: _read_with_noise(n, noise, rng, plane_target),
    "multi_gauss": lambda n, noise, rng: _read_with_noise(n, noise, rng, multi_gauss_target),
}


def make_points(dataset, n, noise, seed):
    """``n`` points of ``dataset``, in random order.

    Parameters
    ----------
    dataset : str
        A name from :data:`CLASSIFICATION` or :data:`REGRESSION` (checked by the caller).
    n : int
        Number of points, at least 2.
    noise : float
        In [0, 0.5], the original's scale.
    seed : int
        Seeds the points and their order.

    Returns
    -------
    points : ndarray of float64, shape (n, 2)
        ``(x1, x2)``.
    labels : ndarray, shape (n,)
        int64 0/1 for classification, float64 in [-1.2, 1.2] for regression.
    """
    rng = np.random.default_rng(seed)
    points, labels = _MAKERS[dataset](n, noise, rng)
    order = rng.permutation(n)  # the split takes the first rows: mix the classes first
    return points[order], labels[order]


def split(points, labels, train_percent):
    """The first ``train_percent`` % of the (shuffled) points for training, the rest for test.

    Returns
    -------
    (points, labels), (points, labels)
        Training and test parts, each with at least one point.
    """
    n = points.shape[0]
    cut = min(max(int(n * train_percent / 100), 1), n - 1)
    return (points[:cut], labels[:cut]), (points[cut:], labels[cut:])


def features(points, names, dtype="float32"):
    """The network's inputs: the named :data:`FEATURES` of each point.

    Parameters
    ----------
    points : ndarray, shape (n, 2)
    names : sequence of str
        Keys of :data:`FEATURES`, in the order of the columns.
    dtype : str, default "float32"

    Returns
    -------
    ndarray, shape (n, len(names)), C-contiguous
    """
    x1, x2 = points[:, 0], points[:, 1]
    return np.ascontiguousarray(np.column_stack([FEATURES[name](x1, x2) for name in names]),
                                dtype=dtype)


def grid(size):
    """The centres of a ``size`` x ``size`` grid of cells over the square, row by row.

    Row 0 is the top of the picture (x2 = +EXTENT), column 0 its left (x1 = -EXTENT).

    Returns
    -------
    ndarray of float64, shape (size * size, 2)
    """
    centres = -EXTENT + (np.arange(size) + 0.5) * (2 * EXTENT / size)
    x1, x2 = np.meshgrid(centres, centres[::-1])
    return np.column_stack([x1.ravel(), x2.ravel()])
