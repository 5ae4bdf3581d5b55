"""Saving and loading networks as ``.npz`` files, without pickle.

A model file holds plain arrays only (numbers and fixed-width strings) and is
read with ``allow_pickle=False``, so loading a file never runs code.  Every
member is checked against the stored layer sizes before a network is built.
"""

import json
import os
import zipfile

import numpy as np

from fastnn import codes
from fastnn.files import NotAnArchive, open_npz, write_atomically
from fastnn.layout import layer_table, n_params
from fastnn.validation import DTYPES

FORMAT = "fastnn-network"
#: a checkpoint is a model file plus the optimizer state and the fit's progress
CHECKPOINT_FORMAT = "fastnn-checkpoint"
VERSION = 1
_MEMBERS = {"format", "version", "sizes", "activation", "output", "dtype", "init",
            "params", "rng_state"}
CHECKPOINT_MEMBERS = {"optimizer", "state", "step", "best_params", "fit"}


def network_arrays(network, format_tag=FORMAT):
    """The members of a model file describing ``network``."""
    fields = network.architecture.fields()
    return {
        "format": np.array(format_tag),
        "version": np.array(VERSION, dtype=np.int64),
        "sizes": np.array(fields["sizes"], dtype=np.int64),
        "activation": np.array(fields["activation"], dtype=str).reshape(-1),
        "output": np.array(fields["output"]),
        "dtype": np.array(fields["dtype"]),
        "init": np.array(network.init),
        "params": network.params,
        "rng_state": np.array(json.dumps(network.training_state.rng_state)),
    }


def architecture_fields(stored):
    """The :meth:`fastnn.architecture.Architecture.fields` of what :func:`read_network` read."""
    return {"sizes": list(stored["sizes"]), "activation": list(stored["activation"]),
            "output": stored["output"], "dtype": stored["dtype"]}


def save_network(network, path):
    """Write ``network`` to ``path`` (the name is used as given; no suffix is added)."""
    arrays = network_arrays(network)
    write_atomically(path, lambda file: np.savez(file, **arrays))


class ModelFileError(ValueError):
    """A file that is not a valid fastnn model (damaged, foreign or crafted)."""


def fail(path, problem):
    raise ModelFileError(f"{os.fspath(path)!s} is not a valid fastnn model file: {problem}")


def scalar_string(path, data, key):
    value = data[key]
    if value.dtype.kind != "U" or value.shape != ():
        fail(path, f"member {key!r} should be a string, found dtype {value.dtype} "
                    f"shape {value.shape}")
    return str(value)


def read_network(path):
    """Read and check a model file (or the network inside a checkpoint).

    Returns
    -------
    dict
        ``sizes, activation, output, dtype, init, params, rng_state`` ready for
        :class:`fastnn.Network`, and ``extra``: a checkpoint's own members,
        loaded but not yet checked (see :mod:`fastnn.checkpoint`); empty for a
        model file.
    """
    try:
        data = open_npz(path)
    except NotAnArchive as error:
        fail(path, str(error))
    with data:
        found = set(data.files)
        try:
            if "format" not in found:
                looks_like = (" (a data file, as fastnn.datasets.load_dataset reads, not a "
                              "model)" if "X_train" in found else "")
                fail(path, f"it has no format tag, so Network.save did not write it; its "
                           f"members are {sorted(found)}{looks_like}")
            format_tag = scalar_string(path, data, "format")
            if format_tag not in (FORMAT, CHECKPOINT_FORMAT):
                fail(path, f"format tag {format_tag!r} is neither {FORMAT!r} nor "
                            f"{CHECKPOINT_FORMAT!r}")
            expected = _MEMBERS | (CHECKPOINT_MEMBERS if format_tag == CHECKPOINT_FORMAT else set())
            if found != expected:
                fail(path, f"members {sorted(found)}, expected {sorted(expected)}")
            version = data["version"]
            if version.shape != () or version.dtype.kind not in "iu" or int(version) != VERSION:
                fail(path, f"format version {version!r} is not supported (this fastnn reads "
                            f"version {VERSION})")
            sizes = data["sizes"]
            if (sizes.ndim != 1 or sizes.size < 2 or sizes.dtype.kind not in "iu"
                    or (sizes < 1).any()):
                fail(path, f"layer sizes {sizes!r} are not at least two positive integers")
            sizes = tuple(int(s) for s in sizes)
            activation = data["activation"]
            if activation.dtype.kind != "U" or activation.shape != (len(sizes) - 2,):
                fail(path, f"activation names {activation!r} do not match {len(sizes) - 2} "
                            "hidden layers")
            activation = [str(a) for a in activation]
            for name in activation:
                if name not in codes.ACTIVATIONS:
                    fail(path, f"unknown activation {name!r}")
            output = scalar_string(path, data, "output")
            if output not in codes.OUTPUTS:
                fail(path, f"unknown output {output!r}")
            dtype = scalar_string(path, data, "dtype")
            if dtype not in DTYPES:
                fail(path, f"unsupported dtype {dtype!r}")
            init = scalar_string(path, data, "init")
            params = data["params"]
            expected = int(n_params(layer_table(sizes)))
            if params.dtype != np.dtype(dtype) or params.shape != (expected,):
                fail(path, f"params have dtype {params.dtype} shape {params.shape}; layer "
                            f"sizes {list(sizes)} need dtype {dtype} shape ({expected},)")
            if not np.isfinite(params).all():
                fail(path, "params contain NaN or infinite values")
            try:
                rng_state = json.loads(scalar_string(path, data, "rng_state"))
            except json.JSONDecodeError as error:
                fail(path, f"rng_state is not valid JSON ({error})")
            extra = {key: data[key] for key in found & CHECKPOINT_MEMBERS}
        except ModelFileError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            fail(path, f"a member is damaged ({error})")
    return dict(sizes=sizes, activation=activation, output=output, dtype=dtype, init=init,
                params=params, rng_state=rng_state, extra=extra)
