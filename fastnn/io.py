"""Saving and loading networks as ``.npz`` files, without pickle.

A model file holds plain arrays only (numbers and fixed-width strings) and is
read with ``allow_pickle=False``, so loading a file never runs code.  Every
member is checked against the stored layer sizes before a network is built.
"""

import contextlib
import json
import os
import secrets
import zipfile

import numpy as np

from fastnn import codes
from fastnn.layout import layer_table, n_params
from fastnn.validation import DTYPES

FORMAT = "fastnn-network"
VERSION = 1
_MEMBERS = {"format", "version", "sizes", "activation", "output", "dtype", "init",
            "params", "rng_state"}


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``.

    A crash mid-write leaves the old file (or none), never a truncated one.
    The temporary file sits in the target's directory so the rename is atomic
    (one file system); it is opened with ``O_EXCL`` under a random name, so
    concurrent writers never share it, and with the umask-derived mode any
    other file would get (``mkstemp`` would make it 0600).
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


def save_network(network, path):
    """Write ``network`` to ``path`` (the name is used as given; no suffix is added)."""
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "sizes": np.array(network.sizes, dtype=np.int64),
        "activation": np.array(network.activation, dtype=str).reshape(-1),
        "output": np.array(network.output),
        "dtype": np.array(network.dtype.name),
        "init": np.array(network.init),
        "params": network.params,
        "rng_state": np.array(json.dumps(network._shuffle_rng.bit_generator.state)),
    }
    write_atomically(path, lambda file: np.savez(file, **arrays))


class ModelFileError(ValueError):
    """A file that is not a valid fastnn model (damaged, foreign or crafted)."""


def _fail(path, problem):
    raise ModelFileError(f"{os.fspath(path)!s} is not a valid fastnn model file: {problem}")


def _scalar_string(path, data, key):
    value = data[key]
    if value.dtype.kind != "U" or value.shape != ():
        _fail(path, f"member {key!r} should be a string, found dtype {value.dtype} "
                    f"shape {value.shape}")
    return str(value)


def read_network(path):
    """Read and check a model file.

    Returns
    -------
    dict
        ``sizes, activation, output, dtype, init, params, rng_state`` ready for
        :class:`fastnn.Network`.
    """
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        _fail(path, f"cannot read it as .npz ({error})")
    if not isinstance(data, np.lib.npyio.NpzFile):
        _fail(path, "it holds a single array, not an .npz archive")
    with data:
        found = set(data.files)
        if found != _MEMBERS:
            _fail(path, f"members {sorted(found)}, expected {sorted(_MEMBERS)}")
        try:
            if _scalar_string(path, data, "format") != FORMAT:
                _fail(path, f"format tag is not {FORMAT!r}")
            version = data["version"]
            if version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
                _fail(path, f"format version {version!r} is not supported (this fastnn reads "
                            f"version {VERSION})")
            sizes = data["sizes"]
            if sizes.ndim != 1 or sizes.size < 2 or sizes.dtype.kind not in "iu" or (sizes < 1).any():
                _fail(path, f"layer sizes {sizes!r} are not at least two positive integers")
            sizes = tuple(int(s) for s in sizes)
            activation = data["activation"]
            if activation.dtype.kind != "U" or activation.shape != (len(sizes) - 2,):
                _fail(path, f"activation names {activation!r} do not match {len(sizes) - 2} "
                            "hidden layers")
            activation = [str(a) for a in activation]
            for name in activation:
                if name not in codes.ACTIVATIONS:
                    _fail(path, f"unknown activation {name!r}")
            output = _scalar_string(path, data, "output")
            if output not in codes.OUTPUTS:
                _fail(path, f"unknown output {output!r}")
            dtype = _scalar_string(path, data, "dtype")
            if dtype not in DTYPES:
                _fail(path, f"unsupported dtype {dtype!r}")
            init = _scalar_string(path, data, "init")
            params = data["params"]
            expected = int(n_params(layer_table(sizes)))
            if params.dtype != np.dtype(dtype) or params.shape != (expected,):
                _fail(path, f"params have dtype {params.dtype} shape {params.shape}; layer "
                            f"sizes {list(sizes)} need dtype {dtype} shape ({expected},)")
            if not np.isfinite(params).all():
                _fail(path, "params contain NaN or infinite values")
            try:
                rng_state = json.loads(_scalar_string(path, data, "rng_state"))
            except json.JSONDecodeError as error:
                _fail(path, f"rng_state is not valid JSON ({error})")
        except ModelFileError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            _fail(path, f"a member is damaged ({error})")
    return dict(sizes=sizes, activation=activation, output=output, dtype=dtype, init=init,
                params=params, rng_state=rng_state)
