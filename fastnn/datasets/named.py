"""``load_dataset``: one entry point for the names and paths a command line takes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastnn.datasets.arrays import read_npz
from fastnn.datasets.container import Dataset, PathLike
from fastnn.datasets.idx import load_idx_dir
from fastnn.datasets.mnist import load_mnist
from fastnn.datasets.sample import load_sample

_ACCEPTED_SPECS = (
    "'sample' (the MNIST sample embedded in fastnn), "
    "'mnist' (the full MNIST cached by `fastnn fetch-mnist`), "
    "a path to a .npz file with X_train, y_train and optionally X_val, y_val, X_test, y_test, "
    "or a path to a directory of IDX files (train-images-idx3-ubyte[.gz], ...)"
)


def load_dataset(spec: PathLike) -> Dataset:
    """Load a dataset named on a command line or in a config.

    Parameters
    ----------
    spec : str or os.PathLike
        One of

        - ``"sample"``: :func:`load_sample`;
        - ``"mnist"``: :func:`load_mnist` (the cached full MNIST);
        - a path to a ``.npz`` file with arrays ``X_train, y_train`` and
          optionally the pairs ``X_val, y_val`` and ``X_test, y_test``
          (loaded with ``allow_pickle=False``);
        - a path to a directory of IDX files: :func:`load_idx_dir`.

        The names ``"sample"`` and ``"mnist"`` win over files of the same
        name in the working directory; write ``./sample`` for those.

    Returns
    -------
    Dataset
        For a ``.npz`` file: ``X`` of shape ``(n, d)``, C-contiguous, float32
        or float64 as stored (integer or bool pixels become float32,
        unscaled); ``y`` of shape ``(n,)`` or ``(n, k)``, int64 when stored as
        integers, otherwise float as stored. ``name`` is the path.

    Raises
    ------
    ValueError
        If ``spec`` is none of the accepted forms (the message lists them),
        or the file's arrays are inconsistent.
    FileNotFoundError
        For ``"mnist"`` when it was not fetched, or missing IDX files.
    """
    if isinstance(spec, str) and spec.strip().lower() == "sample":
        return load_sample()
    if isinstance(spec, str) and spec.strip().lower() == "mnist":
        return load_mnist()
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"dataset spec {spec!r} is a {type(spec).__name__}; "
                         f"expected {_ACCEPTED_SPECS}")

    path = Path(spec).expanduser()
    if path.is_dir():
        return load_idx_dir(path)
    if path.is_file() and path.suffix.lower() == ".npz":
        return _load_npz_dataset(path)
    if path.is_file():
        raise ValueError(f"dataset file {str(spec)!r} is not a .npz file; "
                         f"expected {_ACCEPTED_SPECS}")
    raise ValueError(
        f"unknown dataset {str(spec)!r} (no such file or directory); expected {_ACCEPTED_SPECS}"
    )


def _load_npz_dataset(path: Path) -> Dataset:
    """A :class:`Dataset` from a user ``.npz`` (see :func:`load_dataset`)."""
    arrays = read_npz(path)
    if "format" in arrays and "params" in arrays:
        raise ValueError(f"{path} is a fastnn model file (written by Network.save), not a data "
                         "file; data files hold X_train and y_train (and optionally X_val, "
                         "y_val, X_test, y_test)")
    splits = {}
    for split, key in (("train", "train"), ("validation", "val"), ("test", "test")):
        xk, yk = f"X_{key}", f"y_{key}"
        has_x, has_y = xk in arrays, yk in arrays
        if split == "train" and not (has_x and has_y):
            raise ValueError(
                f"{path} has arrays {sorted(arrays)}; expected at least X_train and y_train "
                "(and optionally X_val, y_val, X_test, y_test)"
            )
        if has_x != has_y:
            raise ValueError(f"{path} has {xk if has_x else yk} without {yk if has_x else xk}; "
                             "expected both or neither")
        if not has_x:
            continue
        X, y = arrays[xk], arrays[yk]
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"{path}: {xk} has shape {X.shape}; "
                             "expected a non-empty 2-D (n, d) array")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{path}: {xk} has dtype {X.dtype}; expected a real numeric array")
        # Keep float64 if the user stored it; everything else becomes float32.
        X = np.ascontiguousarray(X, dtype=X.dtype if X.dtype == np.float64 else np.float32)
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"{path}: {yk} has shape {y.shape} but {xk} has {X.shape[0]} rows; "
                "expected (n,) or (n, k) with the same n"
            )
        if y.dtype.kind in "biu":
            y = np.ascontiguousarray(y, dtype=np.int64)
        elif y.dtype.kind == "f":
            y = np.ascontiguousarray(y)
        else:
            raise ValueError(f"{path}: {yk} has dtype {y.dtype}; "
                             "expected integer labels or float targets")
        splits[split] = (X, y)
    return Dataset(name=str(path), **splits)
