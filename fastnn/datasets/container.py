"""The :class:`Dataset` every loader returns: named ``(X, y)`` splits."""

from __future__ import annotations

import dataclasses
import os
from typing import Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]
Split = tuple[np.ndarray, np.ndarray]


# eq=False: the generated __eq__ would compare arrays with ``==`` and fail on
# the ambiguous truth value; repr=False: the generated repr would print pixels.
@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A named set of ``(X, y)`` splits.

    Parameters
    ----------
    train, validation, test : tuple of (ndarray, ndarray) or None
        Each split is ``(X, y)`` with ``X`` of shape ``(n, d)`` (``float32``
        for the MNIST loaders, C-contiguous) and ``y`` of shape ``(n,)``
        (``int64`` class labels), or ``None`` when the source has no such
        split.
    name : str
        Where the data came from, e.g. ``"mnist-sample"`` or a file path.

    Examples
    --------
    >>> from fastnn.datasets import load_sample
    >>> ds = load_sample()
    >>> X, y = ds.train
    >>> X.shape, X.dtype, y.dtype
    ((10000, 784), dtype('float32'), dtype('int64'))
    """

    train: Split | None = None
    validation: Split | None = None
    test: Split | None = None
    name: str = ""

    def __repr__(self) -> str:
        def describe(split: Split | None) -> str:
            if split is None:
                return "None"
            X, y = split
            return f"(X{X.shape} {X.dtype}, y{y.shape} {y.dtype})"

        return (
            f"Dataset(name={self.name!r}, train={describe(self.train)}, "
            f"validation={describe(self.validation)}, test={describe(self.test)})"
        )
