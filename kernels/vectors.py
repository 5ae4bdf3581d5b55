"""64-byte vector registers in compiled code: sums that stay in registers across a loop.

LLVM vectorises a loop along the elements it writes, so a sum over many rows
of a matrix (a CSR row's entries, each adding ``v · W_1^T[j]``) keeps its
running total in memory: each entry loads and stores the total again, and
the kernel is bound by those loads and stores rather than by its
multiply-adds.  LLVM does not keep a block of such totals in registers by
itself (written as sixteen scalar locals, it kept them scalar).  So the
sparse first layer (:mod:`fastnn.kernels.sparse_input`) holds them in values
of LLVM's vector type, through the intrinsics here: one :class:`VectorType`
value is 64 bytes of the dtype (16 float32 or 8 float64, one AVX-512 register
or two AVX2 ones).

Every load and store takes an array and an element offset into its buffer
(C order) and touches one whole vector there; a row's last, partial vector
is the caller's (a plain loop).  Nothing here checks bounds: the callers
compute offsets inside the arrays.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.extending import intrinsic, models, register_model
from numba.np.arrayobj import make_array

#: bytes in one vector
VECTOR_BYTES = 64


class VectorType(types.Type):
    """A vector of ``dtype`` (float32 or float64) held in registers: 64 bytes, or 32
    (``half``, for a row's last columns)."""

    def __init__(self, dtype, half=False):
        self.dtype = dtype
        self.lanes = (VECTOR_BYTES // (2 if half else 1)) // (4 if dtype == types.float32 else 8)
        super().__init__(name=f"Vector({dtype}, {self.lanes})")


@register_model(VectorType)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(),
                                                     fe_type.lanes))


def _vector_type(array_type, half=False):
    return VectorType(array_type.dtype, half)


def _pointer(context, builder, array_type, array, offset, vector):
    data = make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(data, [offset]), vector.as_pointer())


def _element_bytes(context, array_type):
    return context.get_abi_sizeof(context.get_value_type(array_type.dtype))


def _load(context, builder, array_type, array, offset, vector_type):
    vector = context.get_value_type(vector_type)
    pointer = _pointer(context, builder, array_type, array, offset, vector)
    return builder.load(pointer, align=_element_bytes(context, array_type))


@intrinsic
def vector_zeros(typingctx, like):
    """A vector of zeros of ``like``'s dtype (``like`` an array)."""
    return _zeros(_vector_type(like), like)


@intrinsic
def half_vector_zeros(typingctx, like):
    """A 32-byte vector of zeros of ``like``'s dtype."""
    return _zeros(_vector_type(like, half=True), like)


def _zeros(vector_type, like):
    def codegen(context, builder, signature, args):
        return ir.Constant(context.get_value_type(vector_type), [0.0] * vector_type.lanes)
    return vector_type(like), codegen


@intrinsic
def vector_add_product(typingctx, total, scale, array, offset):
    """``total + scale · array.flat[offset:offset + lanes]``, in fused multiply-adds."""
    sig = total(total, total.dtype, array, types.intp)

    def codegen(context, builder, signature, args):
        total_value, scale_value, array_value, offset_value = args
        loaded = _load(context, builder, signature.args[2], array_value, offset_value, total)
        lanes = total.lanes
        spread = builder.insert_element(ir.Constant(loaded.type, ir.Undefined), scale_value,
                                        ir.Constant(ir.IntType(32), 0))
        spread = builder.shuffle_vector(spread, ir.Constant(loaded.type, ir.Undefined),
                                        ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                    [0] * lanes))
        element = "f32" if total.dtype == types.float32 else "f64"
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(loaded.type, [loaded.type] * 3),
            f"llvm.fma.v{lanes}{element}")
        return builder.call(fma, [spread, loaded, total_value])
    return sig, codegen


def _storing(add):
    # the codegen of vector_store (add False) and vector_add_to (add True)
    def codegen(context, builder, signature, args):
        array_value, offset_value, vector_value = args
        array_type, vector_type = signature.args[0], signature.args[2]
        if add:
            vector_value = builder.fadd(_load(context, builder, array_type, array_value,
                                              offset_value, vector_type), vector_value)
        pointer = _pointer(context, builder, array_type, array_value, offset_value,
                           vector_value.type)
        builder.store(vector_value, pointer, align=_element_bytes(context, array_type))
        return context.get_dummy_value()
    return codegen


@intrinsic
def vector_store(typingctx, array, offset, value):
    """``array.flat[offset:offset + lanes] ← value``."""
    return types.void(array, types.intp, value), _storing(False)


@intrinsic
def vector_add_to(typingctx, array, offset, value):
    """``array.flat[offset:offset + lanes] += value``."""
    return types.void(array, types.intp, value), _storing(True)


@intrinsic
def vector_lanes(typingctx, like):
    """Elements of ``like``'s dtype in one vector (a compile-time constant)."""
    lanes = _vector_type(like).lanes

    def codegen(context, builder, signature, args):
        return ir.Constant(ir.IntType(64), lanes)
    return types.intp(like), codegen
