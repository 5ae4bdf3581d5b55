"""Checkpoints: a model file plus the optimizer state and the fit's progress.

Written atomically (temporary file, then rename) by ``Network.fit(...,
checkpoint=path)``; read back by ``fit(..., checkpoint=path, resume=True)``,
which continues exactly where the checkpoint left off: same parameters,
optimizer moments and step count, shuffle-generator state, schedule and
early-stopping state, so the resumed fit ends bit-identical to one that was
never interrupted (same seed and thread count).  ``Network.load`` reads the
network out of a checkpoint too.  Like model files, checkpoints hold plain
arrays only and are read with ``allow_pickle=False``.
"""

import json
from dataclasses import dataclass

import numpy as np

from fastnn import codes
from fastnn.files import write_atomically
from fastnn.model_files import CHECKPOINT_FORMAT, fail, network_arrays, read_network
from fastnn.optim import state_rows


@dataclass
class Checkpoint:
    """What a checkpoint restores besides the network itself.

    Attributes
    ----------
    optimizer : str
    state : ndarray, shape (rows, n_params)
    step : ndarray of int64, shape (1,)
    best_params : ndarray, shape (n_params,) or (0,)
        Early stopping's best parameters so far (empty without patience).
    fit : dict
        JSON-ready: ``fingerprint``, ``epochs_done`` (within the fit),
        ``network_epochs``, ``history``, ``schedule``, ``early_stopping``, and
        from a distributed fit ``shuffle`` (each rank's shuffle generator state).
    """

    optimizer: str
    state: np.ndarray
    step: np.ndarray
    best_params: np.ndarray
    fit: dict


def write_checkpoint(path, network, checkpoint):
    """Write ``network`` and ``checkpoint`` to ``path`` atomically."""
    arrays = network_arrays(network, format_tag=CHECKPOINT_FORMAT)
    arrays.update(optimizer=np.array(checkpoint.optimizer), state=checkpoint.state,
                  step=checkpoint.step, best_params=checkpoint.best_params,
                  fit=np.array(json.dumps(checkpoint.fit)))
    write_atomically(path, lambda file: np.savez(file, **arrays))


def read_checkpoint(path):
    """Read and check a checkpoint.

    Returns
    -------
    stored : dict
        The network's fields, as :func:`fastnn.model_files.read_network` returns them.
    checkpoint : Checkpoint
    """
    stored = read_network(path)
    extra = stored.pop("extra")
    if not extra:
        fail(path, "it is a model file, not a checkpoint (no optimizer state)")
    n_params, dtype = stored["params"].shape[0], stored["params"].dtype
    optimizer = extra["optimizer"]
    if (optimizer.dtype.kind != "U" or optimizer.shape != ()
            or str(optimizer) not in codes.OPTIMIZERS):
        fail(path, f"unknown optimizer {optimizer!r}")
    optimizer = str(optimizer)
    state, step, best = extra["state"], extra["step"], extra["best_params"]
    if state.dtype != dtype or state.shape != (state_rows(optimizer), n_params):
        fail(path, f"optimizer state has dtype {state.dtype} shape {state.shape}; expected "
                   f"{dtype} shape ({state_rows(optimizer)}, {n_params})")
    if step.dtype != np.int64 or step.shape != (1,) or step[0] < 0:
        fail(path, f"step counter {step!r} is not one non-negative int64")
    if best.dtype != dtype or best.shape not in ((0,), (n_params,)):
        fail(path, f"best_params have dtype {best.dtype} shape {best.shape}; expected {dtype} "
                   f"shape (0,) or ({n_params},)")
    if not (np.isfinite(state).all() and np.isfinite(best).all()):
        fail(path, "optimizer state or best parameters contain NaN or infinite values")
    fit = extra["fit"]
    if fit.dtype.kind != "U" or fit.shape != ():
        fail(path, "fit progress is not a JSON string")
    try:
        fit = json.loads(str(fit))
    except json.JSONDecodeError as error:
        fail(path, f"fit progress is not valid JSON ({error})")
    expected = {"fingerprint", "epochs_done", "network_epochs", "history", "schedule",
                "early_stopping"}
    optional = {"shuffle"}  # every MPI rank's shuffle state, from fit_distributed
    if not isinstance(fit, dict) or not expected <= set(fit) <= expected | optional:
        fail(path, f"fit progress has keys {sorted(fit) if isinstance(fit, dict) else fit!r}; "
                   f"expected {sorted(expected)} (and optionally {sorted(optional)})")
    return stored, Checkpoint(optimizer, state.copy(), step.copy(), best.copy(), fit)
