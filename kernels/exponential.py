"""``exp(x)`` for ``x <= 0`` in float64, written so that LLVM vectorises a loop of it.

``np.exp`` in compiled code is a call into libm for every element (there is no
SVML here, docs/design.md rule 6), so a loop of exponentials runs one at a time.
The function below is plain arithmetic (no call, no branch, no table), so a
loop over an array of it becomes vector code: 2,000 exponentials took 6.3-6.7
µs against libm's 22.2-22.5, and the softmax step of a digits batch (200 rows
of 10 classes) 23-34 µs against 49-50 (float64, one thread, 2-core Intel
Sapphire Rapids; docs/design.md, rule 6).

The method is the usual one (Cody and Waite's reduction, as in fdlibm's
``e_exp.c``): ``x = k ln 2 + r`` with ``k = round(x / ln 2)`` and
``|r| <= ln 2 / 2``, then ``exp(x) = 2^k exp(r)``.  ``ln 2`` is split in a
high part with trailing zeros (``k · LN2_HI`` is exact) and a low part, so
``r`` keeps its low bits; ``exp(r)`` is its Taylor polynomial to degree 13
(the first term left out is below 4e-18 of the result); ``2^k`` is built from
its bits.  The rounding to ``k`` is the "shifter" trick: adding ``1.5 · 2^52``
leaves ``round(x / ln 2)`` in the low bits of the sum, whose bits then give
``2^k`` with integer additions and a shift (no float-to-integer conversion,
which AVX2 lacks for vectors).  Measured within 1 ulp of NumPy's ``np.exp``
over ``[-708, 0]`` (``tests/test_exponential.py``).

A compiled function of its own, which LLVM inlines into the softmax's loop
(:mod:`fastnn.kernels.outputs`); inlined by Numba instead, its body made the
output pass's compile no faster (2.4-3.3 s against 2.5-2.9, 3 runs each).

Only the range the softmax needs: ``x = z - max(z) <= 0``.  Below -708 the
result is 0 (``exp(-708)`` is about 3.3e-308, the smallest normal float64
is 2.2e-308: the subnormal results in between are left out); ``-inf`` gives 0
and NaN gives NaN, as ``np.exp``; ``x > 0`` is outside the contract.
"""

from numba import njit, types
from numba.extending import intrinsic

from fastnn.kernels.config import INTERNAL

#: 1 / ln 2
_INV_LN2 = 1.44269504088896338700e+00
#: ln 2 in two parts (fdlibm's ln2HI and ln2LO): LN2_HI has 32 significant
#: bits, so k · LN2_HI is exact for |k| < 2^21
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: 1.5 · 2^52: x / ln 2 + _SHIFTER, rounded to float64, is _SHIFTER + round(x / ln 2)
_SHIFTER = 6755399441055744.0
#: below this the result is subnormal or 0; 0 is returned
_SMALLEST = -708.0

#: 1 / n! for n = 13 down to 2 (Horner's order; the terms 1 + r are added last)
_C13 = 1.0 / 6227020800.0
_C12 = 1.0 / 479001600.0
_C11 = 1.0 / 39916800.0
_C10 = 1.0 / 3628800.0
_C9 = 1.0 / 362880.0
_C8 = 1.0 / 40320.0
_C7 = 1.0 / 5040.0
_C6 = 1.0 / 720.0
_C5 = 1.0 / 120.0
_C4 = 1.0 / 24.0
_C3 = 1.0 / 6.0
_C2 = 0.5


@intrinsic
def float64_bits(typingctx, value):
    """The bits of a float64 as an int64 (a bit cast: no conversion, no instruction)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def bits_float64(typingctx, value):
    """The float64 whose bits are an int64 (a bit cast)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(types.int64), codegen


@njit(**INTERNAL)
def exp_nonpositive(x):
    """``exp(x)`` for a float64 ``x <= 0`` (0 below -708), within 1 ulp of ``np.exp``.

    Parameters
    ----------
    x : float64
        At most 0, or -inf, or NaN.

    Returns
    -------
    float64
    """
    shifted = x * _INV_LN2 + _SHIFTER
    k = shifted - _SHIFTER  # round(x / ln 2), as a float
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = _C13
    p = p * r + _C12
    p = p * r + _C11
    p = p * r + _C10
    p = p * r + _C9
    p = p * r + _C8
    p = p * r + _C7
    p = p * r + _C6
    p = p * r + _C5
    p = p * r + _C4
    p = p * r + _C3
    p = p * r + _C2
    p = (p * r) * r + r + 1.0
    # the low 12 bits of shifted's bits are k's (2^51 has none there), so after
    # the shift the exponent field is k + 1023: between 2 and 1023 for x in
    # [-708, 0]; the garbage below -708 is selected away
    two_to_k = bits_float64((float64_bits(shifted) + 1023) << 52)
    result = p * two_to_k
    # selects, not branches: the loop stays one vector body
    result = result if x >= _SMALLEST else 0.0
    return result if x == x else x
