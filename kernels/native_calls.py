"""Calls from one compiled kernel to another through its address, instead of linking it in.

When a Numba function calls another, the callee's code is linked into the
caller and LLVM optimises and emits it again there, and again in the caller's
caller: a cold first fit spent 41 s of 110 in LLVM, most of it on the same
layer-step code re-optimised inside every function above it.  So the kernels
that do the work (the layer steps, their parallel split, the output pass) are
compiled once each, on their own, and the others call them through their
addresses, passed in at run time as a table of integers (``leaves``): a
caller is compiled without its callees' code, and an address read at run time
(not baked into the code) keeps ``cache=True`` working.

Each callee has one signature per dtype (:func:`step_signature` and the
others below); the call sites pass their arguments as one tuple, which is
cast to that signature (a literal integer becomes an int64; an array of
another layout is a typing error, never a call with the wrong layout).
"""

import numpy as np
from numba import typeof, types
from numba.core import cgutils
from numba.extending import intrinsic

from fastnn.kernels.update_rules import StepScalars

#: slots of the address table ``leaves``
(FORWARD_LEAF, DELTA_LEAF, SGD_LEAF, GRADIENT_LEAF, PARALLEL_LEAF, OUTPUT_LEAF,
 GATHER_LEAF) = range(7)
N_LEAVES = 7


def _scalar(dtype):
    return types.float32 if dtype == types.float32 else types.float64


def scalars_type(dtype):
    """The Numba type of :class:`StepScalars` in ``dtype`` (a Numba float type)."""
    cast = np.float32 if _scalar(dtype) == types.float32 else np.float64
    return typeof(StepScalars(np.int64(0), False, *[cast(0)] * 12))


def buffers_type(dtype):
    """The Numba type of the buffers a layer step reads, one tuple:
    ``(params, grad, state, table, hidden, X, acts, deltas, source, order)``
    (see :func:`fastnn.kernels.layer_steps.forward_step`)."""
    f = _scalar(dtype)
    vector, matrix = types.Array(f, 1, "C"), types.Array(f, 2, "C")
    index_vector, index_matrix = types.Array(types.int64, 1, "C"), types.Array(types.int64, 2, "C")
    return types.Tuple((vector, vector, matrix, index_matrix, index_vector, matrix, vector,
                        vector, matrix, index_vector))


def step_signature(dtype):
    """``void(kind, layer, n, buffers, s, r0, r1, c0, c1)``: every layer step of
    :mod:`fastnn.kernels.layer_steps`."""
    i = types.int64
    return types.void(i, i, i, buffers_type(dtype), scalars_type(dtype), i, i, i, i)


def parallel_signature(dtype):
    """``void(step_address, kind, layer, n, buffers, s, n_blocks)``: the parallel split."""
    i = types.int64
    return types.void(i, i, i, i, buffers_type(dtype), scalars_type(dtype), i)


def output_signature(dtype):
    """``(float64, float64)(output, Z, Y, weights, scale, out, mode)``: the output pass."""
    f = _scalar(dtype)
    matrix = types.Array(f, 2, "C")
    return types.UniTuple(types.float64, 2)(types.int64, matrix, matrix, types.Array(f, 1, "C"),
                                            types.float64, matrix, types.int64)


def _caller(signature_for, dtype_of):
    """An intrinsic ``call(address, args)``: the compiled function at ``address``, whose
    signature is ``signature_for(dtype_of(args))``, applied to the tuple ``args``."""
    @intrinsic
    def call(typingctx, address, args):
        dtype = dtype_of(args)
        callee = signature_for(dtype)
        sig = callee.return_type(types.intp, types.Tuple(callee.args))

        def codegen(context, builder, signature, llargs):
            address_value, packed = llargs
            values = [builder.extract_value(packed, i) for i in range(len(callee.args))]
            fnty = context.call_conv.get_function_type(callee.return_type, callee.args)
            pointer = builder.inttoptr(address_value, fnty.as_pointer())
            status, result = context.call_conv.call_function(builder, pointer, callee.return_type,
                                                             callee.args, values)
            with cgutils.if_unlikely(builder, status.is_error):
                context.call_conv.return_status_propagate(builder, status)
            return result
        return sig, codegen
    return call


#: ``call_step(address, (kind, layer, n, buffers, s, r0, r1, c0, c1))``
call_step = _caller(step_signature, lambda args: args.types[3].types[0].dtype)
#: ``call_parallel(address, (step_address, kind, layer, n, buffers, s, n_blocks))``
call_parallel = _caller(parallel_signature, lambda args: args.types[4].types[0].dtype)
#: ``call_output(address, (output, Z, Y, weights, scale, out, mode))``
call_output = _caller(output_signature, lambda args: args.types[1].dtype)


def address_of(dispatcher, signature):
    """Compile ``dispatcher`` for ``signature`` (or load it from the cache); its address."""
    dispatcher.compile(signature.args)
    compiled = dispatcher.overloads[signature.args]
    return compiled.library.get_pointer_to_function(compiled.fndesc.llvm_func_name)
