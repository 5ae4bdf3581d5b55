"""The buffer layout of :mod:`fastnn.layout`, as views inside compiled code.

The offsets are the very functions the reference uses, compiled by Numba, so
the two backends cannot disagree about where a layer lives; the views are
built by :mod:`fastnn.kernels.arrays` (cheaper to compile than slicing).
"""

from numba import njit

from fastnn import layout
from fastnn.kernels.arrays import matrix, vector
from fastnn.kernels.config import INTERNAL

# Compiled functions of their own, not inlined: Numba compiles an inlined
# function again at every call site (60-80 ms each; a layer step has a dozen
# views), a called one once, and LLVM inlines such small code anyway.
#: ``(start, rows, cols)`` of a layer's ``W`` in a flat buffer
weight_span = njit(**INTERNAL)(layout.weight_span)
#: ``(start, length)`` of a layer's ``b`` in a flat buffer
bias_span = njit(**INTERNAL)(layout.bias_span)
_workspace_span = njit(**INTERNAL)(layout.workspace_span)


@njit(**INTERNAL)
def weight_view(flat, table, layer):
    """``W`` of ``layer`` (0-based) as a (d_out, d_in) view into ``flat``."""
    start, rows, cols = weight_span(table, layer)
    return matrix(flat, start, rows, cols)


@njit(**INTERNAL)
def bias_view(flat, table, layer):
    """``b`` of ``layer`` (0-based) as a (d_out,) view into ``flat``."""
    start, length = bias_span(table, layer)
    return vector(flat, start, length)


@njit(**INTERNAL)
def bias_row(flat, table, layer):
    """``b`` of ``layer`` as a (1, d_out) view, for the block loops."""
    start, length = bias_span(table, layer)
    return matrix(flat, start, 1, length)


@njit(**INTERNAL)
def workspace_block(buffer, table, layer, n_rows):
    """View of ``layer``'s rows in a flat workspace, shape (n_rows, d_{layer+1})."""
    start, rows, cols = _workspace_span(buffer.shape[0], table, layer, n_rows)
    return matrix(buffer, start, rows, cols)
