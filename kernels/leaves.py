"""The compiled functions that do the work, compiled on first use, and their addresses.

The entry points (:mod:`fastnn.kernels.epoch_loop` and the others) call the
layer steps, their parallel split and the output pass through an address
table (:mod:`fastnn.kernels.native_calls`); :func:`address_table` builds it,
compiling (or loading from Numba's cache) only the functions a call can
reach: a plain-SGD fit never compiles the optimizer steps, a one-thread fit
never compiles the parallel split.
"""

import numba
import numpy as np

from fastnn.kernels.layer_steps import STEP_FUNCTIONS, parallel_step
from fastnn.kernels.native_calls import (
    N_LEAVES,
    OUTPUT_LEAF,
    PARALLEL_LEAF,
    address_of,
    output_signature,
    parallel_signature,
    step_signature,
)
from fastnn.kernels.outputs import output_pass

_addresses = {}  # (dtype, slot) -> address


def _compiled(dtype, slot):
    """``(dispatcher, signature)`` of the function in ``slot`` for ``dtype``."""
    float_type = numba.from_dtype(dtype)
    if slot == PARALLEL_LEAF:
        return parallel_step, parallel_signature(float_type)
    if slot == OUTPUT_LEAF:
        return output_pass, output_signature(float_type)
    return STEP_FUNCTIONS[slot], step_signature(float_type)


def address_table(dtype, slots):
    """The address table for ``dtype`` with ``slots`` filled (the others are 0).

    Parameters
    ----------
    dtype : numpy.dtype
        float32 or float64.
    slots : iterable of int
        Slots of :mod:`fastnn.kernels.native_calls` that the call will use.

    Returns
    -------
    ndarray of int64, shape (N_LEAVES,)
    """
    table = np.zeros(N_LEAVES, dtype=np.int64)
    dtype = np.dtype(dtype)
    for slot in slots:
        key = (dtype, slot)
        if key not in _addresses:
            _addresses[key] = address_of(*_compiled(dtype, slot))
        table[slot] = _addresses[key]
    return table


def unit_list(dtype, slots):
    """``[(dispatcher, signature)]`` of the functions in ``slots`` for ``dtype``
    (what :func:`fastnn.kernels.compiler.prepare` takes)."""
    return [(dispatcher, signature.args)
            for dispatcher, signature in (_compiled(np.dtype(dtype), slot) for slot in slots)]
