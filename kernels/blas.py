"""General matrix multiply on row-major arrays, straight into scipy's BLAS.

``np.dot(a, b, out)`` inside ``@njit`` reaches the same sgemm/dgemm but hides
``alpha`` and ``beta``; with them a gradient can be accumulated, scaled or
applied to the weights in the same pass that computes it.  Calling
``scipy.linalg.cython_blas`` directly also accepts strided sub-blocks (a
leading dimension larger than the width), which is how the parallel kernels
hand each thread its own slice of a product without copying.
"""

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic, overload, register_jitable

# Compiled code calls BLAS through a named symbol, not a ctypes pointer: a
# pointer is a "dynamic global" that forbids cache=True, whereas a symbol is
# resolved again each time a cached kernel is loaded (registered here, on import).
for _name in ("sgemm", "dgemm"):
    llvm.add_symbol("fastnn_" + _name,
                    get_cython_function_address("scipy.linalg.cython_blas", _name))

_NO_TRANSPOSE = np.uint8(ord("N"))
_TRANSPOSE = np.uint8(ord("T"))


def _blas_call(symbol):
    """An intrinsic calling the Fortran routine ``symbol`` with 13 by-reference arguments.

    Integer arguments (array ``.ctypes.data`` addresses) become pointers.
    """
    @intrinsic
    def call(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        arg_types = (transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t] * 13)
            fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
            pointers = [builder.inttoptr(v, cgutils.voidptr_t) if isinstance(t, types.Integer) else v
                        for v, t in zip(args, arg_types)]
            builder.call(fn, pointers)
        return types.void(*arg_types), codegen
    return call


_sgemm = _blas_call("fastnn_sgemm")
_dgemm = _blas_call("fastnn_dgemm")


@intrinsic
def _by_reference(typingctx, value):
    """Address of a stack copy of a scalar, for BLAS's by-reference arguments.

    A stack slot rather than a scratch array keeps the call allocation-free and
    safe to make from several threads at once.
    """
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, cgutils.voidptr_t)
    return types.voidptr(value), codegen


@register_jitable(inline="always")
def _leading_dimension(M):
    # the distance between rows, in elements; BLAS wants at least the width
    return max(M.strides[0] // M.itemsize, M.shape[1], 1)


def gemm(transa, transb, alpha, A, B, beta, C):
    """``C ← alpha · op(A) · op(B) + beta · C`` on row-major matrices.

    Callable only from compiled code.

    Parameters
    ----------
    transa, transb : bool
        ``op(A) = A.T`` when ``transa`` (likewise for ``B``).
    alpha, beta : float
        Converted to the array dtype.  With ``beta == 0`` the old ``C`` is not
        read (it may hold NaN).
    A : ndarray, shape (m, k), or (k, m) when ``transa``
    B : ndarray, shape (k, n), or (n, k) when ``transb``
    C : ndarray, shape (m, n)
        Updated in place.  All three must have unit stride along their last
        axis; the row stride may be larger (a column slice of a wider matrix).
    """
    raise NotImplementedError("fastnn.kernels.blas.gemm is callable from @njit code only")


@overload(gemm)
def _gemm_overload(transa, transb, alpha, A, B, beta, C):
    if A.dtype == types.float32:
        routine, scalar = _sgemm, np.float32
    elif A.dtype == types.float64:
        routine, scalar = _dgemm, np.float64
    else:
        return None

    def impl(transa, transb, alpha, A, B, beta, C):
        m, n = C.shape
        k = A.shape[0] if transa else A.shape[1]
        if m == 0 or n == 0:
            return
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a
        # row-major buffer read column-major is its own transpose: so pass B
        # first, with the transpose flags as given.
        routine(
            _by_reference(_TRANSPOSE if transb else _NO_TRANSPOSE),
            _by_reference(_TRANSPOSE if transa else _NO_TRANSPOSE),
            _by_reference(np.int32(n)),
            _by_reference(np.int32(m)),
            _by_reference(np.int32(k)),
            _by_reference(scalar(alpha)),
            B.ctypes.data,
            _by_reference(np.int32(_leading_dimension(B))),
            A.ctypes.data,
            _by_reference(np.int32(_leading_dimension(A))),
            _by_reference(scalar(beta)),
            C.ctypes.data,
            _by_reference(np.int32(_leading_dimension(C))),
        )

    return impl
