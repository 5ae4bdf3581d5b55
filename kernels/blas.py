"""General matrix multiply on row-major blocks, straight into scipy's BLAS.

``np.dot(a, b, out)`` inside ``@njit`` reaches the same sgemm/dgemm but hides
``alpha`` and ``beta``; with them a gradient can be accumulated, scaled or
applied to the weights in the same pass that computes it.  The call takes
element offsets and leading dimensions rather than sub-arrays, so a thread
can be handed its own block of a product without slicing (slices are costly
to compile, and a block of columns is not contiguous anyway).
"""

import llvmlite.binding as llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from fastnn.kernels.arrays import address
from fastnn.kernels.config import INTERNAL

# Compiled code calls BLAS through a named symbol, not a ctypes pointer: a
# pointer is a "dynamic global" that forbids cache=True, whereas a symbol is
# resolved again each time a cached kernel is loaded (registered here, on import).
for _name in ("sgemm", "dgemm"):
    llvm.add_symbol("fastnn_" + _name,
                    get_cython_function_address("scipy.linalg.cython_blas", _name))


@intrinsic
def _fortran_gemm(typingctx, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Call ``?gemm`` (column-major, every argument by reference); ``a``, ``b``, ``c``
    are addresses, the routine is sgemm or dgemm by the type of ``alpha``."""
    symbol = "fastnn_sgemm" if alpha == types.float32 else "fastnn_dgemm"
    arg_types = (types.boolean, types.boolean, types.int32, types.int32, types.int32, alpha,
                 types.intp, types.int32, types.intp, types.int32, alpha, types.intp,
                 types.int32)
    sig = types.void(*arg_types)

    def codegen(context, builder, signature, args):
        byte = cgutils.int8_t
        flags = [builder.select(flag, byte(ord("T")), byte(ord("N"))) for flag in args[:2]]
        by_reference = []
        for value, arg_type in zip(flags + list(args[2:]), ("flag", "flag") + arg_types[2:]):
            if arg_type == types.intp:
                by_reference.append(builder.inttoptr(value, cgutils.voidptr_t))
            else:
                # a stack slot: no allocation, and safe to use from several threads
                slot = cgutils.alloca_once_value(builder, value)
                by_reference.append(builder.bitcast(slot, cgutils.voidptr_t))
        fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t] * 13)
        fn = cgutils.get_or_insert_function(builder.module, fnty, symbol)
        builder.call(fn, by_reference)
        return context.get_dummy_value()
    return sig, codegen


@njit(inline="always")
def _gemm(transa, transb, m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start, ldc):
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T, and a
    # row-major buffer read column-major is its own transpose: so pass B
    # first, with the transpose flags as given.
    if m == 0 or n == 0:
        return
    _fortran_gemm(transb, transa, n, m, k, alpha, address(B, b_start), ldb, address(A, a_start),
                  lda, beta, address(C, c_start), ldc)


# One function for each pair of transposes the layer steps use: flags passed
# as arguments would be literals at the call sites, and every literal value
# compiles another specialisation.

@njit(**INTERNAL)
def gemm_nt(m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start, ldc):
    """``C ← alpha · A · Bᵀ + beta · C`` on row-major blocks.

    Parameters
    ----------
    m, n, k : int
        ``A`` is (m, k), ``Bᵀ`` (k, n), the block of ``C`` (m, n).
    alpha, beta : scalars of the dtype
        With ``beta == 0`` the old ``C`` is not read (it may hold NaN).
    A, B, C : ndarray
        C-contiguous arrays holding the blocks; ``a_start``, ``b_start`` and
        ``c_start`` are the offsets (in elements) of each block's first
        element, ``lda``, ``ldb``, ``ldc`` the distances between their rows.
        ``C`` is updated in place.
    """
    _gemm(False, True, m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start,
          ldc)


@njit(**INTERNAL)
def gemm_nn(m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start, ldc):
    """``C ← alpha · A · B + beta · C``; as :func:`gemm_nt`, ``B`` is (k, n)."""
    _gemm(False, False, m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C,
          c_start, ldc)


@njit(**INTERNAL)
def gemm_tn(m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start, ldc):
    """``C ← alpha · Aᵀ · B + beta · C``; as :func:`gemm_nt`, ``A`` is (k, m)."""
    _gemm(True, False, m, n, k, alpha, A, a_start, lda, B, b_start, ldb, beta, C, c_start,
          ldc)
