"""Scalars in an array's dtype, inside compiled code.

Float32 kernels must do float32 arithmetic, as the reference does: a float64
scalar would promote every product (and silently change the rounding).
"""

import numpy as np
from numba import types
from numba.extending import overload


def cast_like(array, value):
    """``value`` converted to ``array``'s dtype; callable from compiled code only."""
    raise NotImplementedError("fastnn.kernels.scalars.cast_like is callable from @njit code only")


@overload(cast_like)
def _cast_like_overload(array, value):
    if array.dtype == types.float32:
        def impl(array, value):
            return np.float32(value)
    else:
        def impl(array, value):
            return np.float64(value)
    return impl
