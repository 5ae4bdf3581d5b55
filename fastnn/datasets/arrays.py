"""Checks and conversions the loaders share: reading ``.npz`` files, pixels, labels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from fastnn.files import NotAnArchive, open_npz


def read_npz(path: Path) -> dict:
    """All arrays of an ``.npz`` file, never unpickling anything.

    Raises
    ------
    ValueError
        The file is not an ``.npz`` archive (the message says what it is
        instead), is damaged, or holds object arrays.
    """
    try:
        with open_npz(path) as z:
            return {k: z[k] for k in z.files}
    except NotAnArchive as exc:
        raise ValueError(f"{path}: {exc}") from None
    except ValueError as exc:  # object arrays need pickle: refused
        raise ValueError(f"{path}: {exc}; expected plain numeric arrays") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from exc


def ubyte_images_to_float(X: np.ndarray, what: str) -> np.ndarray:
    """uint8 pixels (n, d) -> float32 (n, d) in [0, 1], C-contiguous."""
    if X.dtype != np.uint8 or X.ndim != 2:
        raise ValueError(f"{what} has dtype {X.dtype} and shape {X.shape}; "
                         "expected 2-D uint8 pixels")
    out = X.astype(np.float32, order="C")
    out /= np.float32(255.0)
    return out


def as_labels(y: np.ndarray, what: str, n_classes: int | None = None) -> np.ndarray:
    """Integer labels (n,) -> int64 (n,), optionally checked to lie in 0..n_classes-1."""
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{what} has dtype {y.dtype} and shape {y.shape}; "
                         "expected 1-D integer labels")
    y = np.ascontiguousarray(y, dtype=np.int64)
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{what} has labels in {y.min()}..{y.max()}; expected 0..{n_classes - 1}"
        )
    return y


def check_pair(X: np.ndarray, y: np.ndarray, split: str) -> None:
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{split}: X has {X.shape[0]} rows but y has {y.shape[0]}; expected equal")
