"""IDX files, the format of the original MNIST distribution (plain or gzipped)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from fastnn.datasets.arrays import as_labels, ubyte_images_to_float
from fastnn.datasets.container import Dataset, PathLike

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
        X = ubyte_images_to_float(images.reshape(images.shape[0], -1), img_path.name)
        y = as_labels(labels, lbl_path.name)
        splits[split] = (X, y)

    d_train, d_test = splits["train"][0].shape[1], splits["test"][0].shape[1]
    if d_train != d_test:
        raise ValueError(
            f"{directory}: train images have {d_train} pixels but test images {d_test}; "
            "expected the same image size"
        )
    return Dataset(train=splits["train"], test=splits["test"], name=str(directory))
