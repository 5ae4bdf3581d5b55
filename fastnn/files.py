"""Files on disk: atomic writes, and ``.npz`` archives opened without pickle.

Model files, checkpoints, the cached MNIST and users' data files are all
``.npz`` archives of plain arrays.  They are written through
:func:`write_atomically`, so a crash never leaves a truncated file, and read
through :func:`open_npz`, which refuses pickled members and says in plain words
what a file is when it is not an archive (NumPy itself answers a text file
with advice about ``allow_pickle``).
"""

import contextlib
import os
import secrets
import zipfile

import numpy as np

#: the first bytes of a zip archive (an .npz is one) and of a single-array .npy file
_ZIP_MAGIC = b"PK"
_NPY_MAGIC = b"\x93NUMPY"


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash mid-write leaves the old file (or none), never a truncated one.
    The temporary file sits in the target's directory so the rename is atomic
    (one file system); it is opened with ``O_EXCL`` under a random name, so
    concurrent writers never share it, and with the umask-derived mode any
    other file would get (``mkstemp`` would make it 0600).

    Parameters
    ----------
    path : str or path-like
    write : callable
        ``write(file)`` writes the whole content to a binary file object.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        # writing through a file object also stops numpy appending ".npz"
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class NotAnArchive(ValueError):
    """A file that cannot be read as an ``.npz`` archive; the message says what it is."""


def _not_an_archive(head):
    """Why a file starting with the bytes ``head`` is not an .npz archive (None if it may be)."""
    if head.startswith(_ZIP_MAGIC):
        return None
    if head.startswith(_NPY_MAGIC):
        return "it holds a single array (an .npy file), not an .npz archive"
    if not head:
        return "it is empty, not an .npz archive"
    return ("it is not an .npz archive (a zip file of NumPy arrays, as numpy.savez writes); "
            f"its first bytes are {head[:8]!r}")


def open_npz(path):
    """Open an ``.npz`` archive for reading, never unpickling anything.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    numpy.lib.npyio.NpzFile
        Use it as a context manager; its members are loaded with
        ``allow_pickle=False`` (an object array raises ``ValueError`` when read).

    Raises
    ------
    FileNotFoundError
        There is no such file.
    NotAnArchive
        The file is not a zip archive (text, a single ``.npy`` array, empty) or
        a damaged one; the message says which.
    """
    with open(path, "rb") as file:
        problem = _not_an_archive(file.read(len(_NPY_MAGIC)))
    if problem is not None:
        raise NotAnArchive(problem)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise NotAnArchive(f"it is a damaged .npz archive ({error})") from None
