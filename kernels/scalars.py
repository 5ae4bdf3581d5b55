"""Scalars in an array's dtype, inside compiled code.

Float32 kernels must do float32 arithmetic, as the reference does: a float64
scalar would promote every product (and silently change the rounding).
"""

from numba import types
from numba.extending import intrinsic


@intrinsic
def cast_like(typingctx, array, value):
    """``value`` converted to the dtype of ``array`` (an array or a float scalar).

    An intrinsic, not an overload: Numba types and lowers it in place, a few
    milliseconds where an overload compiled a function of its own per use.
    """
    dtype = array if isinstance(array, types.Float) else array.dtype
    sig = dtype(array, value)

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[1], signature.args[1], dtype)
    return sig, codegen
