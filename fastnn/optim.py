"""Optimizer settings and state, as the kernels take them.

The kernels receive every hyperparameter of a step in one
:class:`StepSettings` named tuple (Numba compiles named tuples as plain
structs), with every real number already cast to the network's dtype, so that
no call compiles a new specialisation (docs/design.md, rule 4).  Optimizer state lives
in one ``(rows, n_params)`` array beside the parameters: SGD keeps its
velocity in row 0, Adam/AdamW their first and second moments in rows 0 and 1.
"""

from collections import namedtuple

import numpy as np

from fastnn import codes
from fastnn.aligned import aligned_zeros

#: Everything one optimizer step needs besides the buffers.
#: ``code`` is ``codes.SGD``/``ADAM``/``ADAMW``; ``clip_norm`` 0 means no clipping.
StepSettings = namedtuple("StepSettings", ["code", "lr", "momentum", "nesterov", "weight_decay",
                                           "beta1", "beta2", "eps", "clip_norm"])


def step_settings(dtype, optimizer="sgd", lr=0.1, momentum=0.0, nesterov=False,
                  weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, clip_norm=None):
    """A :class:`StepSettings` with its reals cast to ``dtype`` (inputs already checked)."""
    cast = np.dtype(dtype).type
    return StepSettings(
        code=np.int64(codes.OPTIMIZERS[optimizer]),
        lr=cast(lr),
        momentum=cast(momentum),
        nesterov=bool(nesterov),
        weight_decay=cast(weight_decay),
        beta1=cast(betas[0]),
        beta2=cast(betas[1]),
        eps=cast(eps),
        clip_norm=cast(0.0 if clip_norm is None else clip_norm),
    )


def state_rows(optimizer):
    """Rows of optimizer state: SGD's velocity, or Adam's two moments."""
    return 1 if optimizer == "sgd" else 2


def new_state(optimizer, n_params, dtype):
    """Zeroed optimizer state, shape (state_rows, n_params), and a zero step counter.

    Returns
    -------
    state : ndarray, shape (rows, n_params)
    step : ndarray of int64, shape (1,)
        Steps taken so far (Adam's bias correction uses it); updated in place.
    """
    return aligned_zeros((state_rows(optimizer), n_params), dtype), np.zeros(1, dtype=np.int64)


def kernel_path(settings, batch_size):
    """Which compiled training loop these settings run (see :mod:`fastnn.kernels`).

    ``"per-sample"`` (plain SGD one row at a time), ``"sgd"`` (plain SGD, the
    step inside the products), ``"clipped"`` (the whole gradient first), or
    ``"step"`` (momentum, Nesterov, Adam, AdamW: each block of the gradient
    stepped as it is computed).  The numbers are the same on every path; what
    differs is what a fit compiles.
    """
    plain = settings.code == codes.SGD and settings.momentum == 0 and settings.clip_norm == 0
    if plain:
        return "per-sample" if batch_size == 1 else "sgd"
    return "clipped" if settings.clip_norm != 0 else "step"
