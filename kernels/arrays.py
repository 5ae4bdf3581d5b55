"""Views into the flat buffers, and addresses of their elements, inside compiled code.

Numba compiles ``flat[a:b].reshape(rows, cols)`` through its general slicing
and reshaping code: about 60 ms of compile time each time a kernel writes
one (a kernel writes dozens).  These intrinsics build the same C-contiguous
view directly (its data pointer, shape and strides, sharing the buffer's
memory), or give the address of an element for BLAS, at a few milliseconds
each.  They check nothing: the offsets come from :mod:`fastnn.layout`.
"""

from numba import errors, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def _view(context, builder, flat_type, flat, start, shape, view_type):
    src = make_array(flat_type)(context, builder, flat)
    out = make_array(view_type)(context, builder)
    itemsize = src.itemsize
    strides = [itemsize]  # C order: each axis steps over the whole of the axes after it
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(strides[0], extent))
    populate_array(out, data=builder.gep(src.data, [start]),
                   shape=cgutils.pack_array(builder, shape),
                   strides=cgutils.pack_array(builder, strides),
                   itemsize=itemsize, meminfo=src.meminfo, parent=src.parent)
    return impl_ret_borrowed(context, builder, view_type, out._getvalue())


@intrinsic
def matrix(typingctx, flat, start, rows, cols):
    """``flat[start:start + rows * cols].reshape(rows, cols)``, a view (flat is 1-D, C order)."""
    view_type = types.Array(flat.dtype, 2, "C")
    sig = view_type(flat, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        flat_value, start_value, rows_value, cols_value = args
        return _view(context, builder, signature.args[0], flat_value, start_value,
                     [rows_value, cols_value], view_type)
    return sig, codegen


@intrinsic
def vector(typingctx, flat, start, length):
    """``flat[start:start + length]``, a view (flat is C-contiguous, of any number of
    dimensions: its buffer is taken as 1-D)."""
    if flat.layout != "C":
        # a strided array's buffer is not its elements in order: refused when
        # the caller is compiled, not a wrong view at run time
        raise errors.TypingError(f"vector() takes a C-contiguous array, got {flat}")
    view_type = types.Array(flat.dtype, 1, "C")
    sig = view_type(flat, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        flat_value, start_value, length_value = args
        return _view(context, builder, signature.args[0], flat_value, start_value,
                     [length_value], view_type)
    return sig, codegen


@intrinsic
def address(typingctx, array, offset):
    """The address of element ``offset`` of ``array``'s buffer (C order), as an integer."""
    sig = types.intp(array, types.intp)

    def codegen(context, builder, signature, args):
        array_value, offset_value = args
        data = make_array(signature.args[0])(context, builder, array_value).data
        return builder.ptrtoint(builder.gep(data, [offset_value]),
                                context.get_value_type(types.intp))
    return sig, codegen


@intrinsic
def row_segment(typingctx, M, row, start, stop):
    """``M[row, start:stop]`` of a C-contiguous matrix, as a 1-D view.

    The block loops run over such segments, from 0 to their length: with the
    bounds of a block inside the loop (``for j in range(c0, c1)`` over a row)
    LLVM could not tell the rows of the parameters, the gradient and the
    optimizer state apart, and left the optimizer's loops scalar (8 times
    slower: 650 against 85 µs for Adam's step of 200 x 784 float32).
    """
    view_type = types.Array(M.dtype, 1, "C")
    sig = view_type(M, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        matrix_value, row_value, start_value, stop_value = args
        src = make_array(signature.args[0])(context, builder, matrix_value)
        cols = cgutils.unpack_tuple(builder, src.shape, 2)[1]
        first = builder.add(builder.mul(row_value, cols), start_value)
        out = make_array(view_type)(context, builder)
        populate_array(out, data=builder.gep(src.data, [first]),
                       shape=cgutils.pack_array(builder, [builder.sub(stop_value, start_value)]),
                       strides=cgutils.pack_array(builder, [src.itemsize]),
                       itemsize=src.itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, view_type, out._getvalue())
    return sig, codegen
