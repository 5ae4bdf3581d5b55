"""Where each weight matrix and bias vector lives inside the flat buffers.

All parameters live in one flat C-contiguous array so that an update is one
loop over one buffer, saving is one array and an all-reduce is one call.  Layer
``l`` (1-based in the maths, 0-based here) stores ``W_l`` row-major with shape
``(d_l, d_{l-1})`` followed by ``b_l`` with shape ``(d_l,)``.

The same table also places each layer's block in the activation and delta
workspaces, which hold ``capacity`` rows per layer.

The span functions (where a block starts, and its shape) are plain Python
written in the subset Numba compiles: :mod:`fastnn.kernels` compiles these
very functions, so the kernels and the reference read the buffers through one
definition.
"""

import numpy as np

#: columns of the layer table
FAN_IN, FAN_OUT, W_OFFSET, B_OFFSET, UNIT_OFFSET = range(5)


def layer_table(sizes):
    """Offsets of every layer's parameters and workspace block.

    Parameters
    ----------
    sizes : sequence of int, length L + 1
        Layer widths ``d_0, ..., d_L``.

    Returns
    -------
    table : ndarray of int64, shape (L, 5)
        Row ``l`` holds ``fan_in = d_l``, ``fan_out = d_{l+1}``, the offset of
        ``W`` and of ``b`` in the parameter buffer, and the number of units in
        all earlier layers (the block offset, in rows of ``capacity``, of this
        layer inside the activation/delta workspace).
    """
    sizes = [int(s) for s in sizes]
    table = np.zeros((len(sizes) - 1, 5), dtype=np.int64)
    offset = 0
    units = 0
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        table[l] = (fan_in, fan_out, offset, offset + fan_in * fan_out, units)
        offset += fan_in * fan_out + fan_out
        units += fan_out
    return table


def n_params(table):
    """Length of the flat parameter buffer described by ``table``."""
    return table[-1, B_OFFSET] + table[-1, FAN_OUT]


def n_units(table):
    """Units in layers 1..L: the workspace holds this many columns per row."""
    return table[-1, UNIT_OFFSET] + table[-1, FAN_OUT]


def weight_span(table, layer):
    """``(start, rows, cols)`` of ``W`` of ``layer`` (0-based) in a flat parameter buffer."""
    return table[layer, W_OFFSET], table[layer, FAN_OUT], table[layer, FAN_IN]


def bias_span(table, layer):
    """``(start, length)`` of ``b`` of ``layer`` (0-based) in a flat parameter buffer."""
    return table[layer, B_OFFSET], table[layer, FAN_OUT]


def weight_view(flat, table, layer):
    """``W`` of ``layer`` (0-based) as a (d_out, d_in) view into ``flat``."""
    start, rows, cols = weight_span(table, layer)
    return flat[start:start + rows * cols].reshape(rows, cols)


def bias_view(flat, table, layer):
    """``b`` of ``layer`` (0-based) as a (d_out,) view into ``flat``."""
    start, length = bias_span(table, layer)
    return flat[start:start + length]


def parameter_views(flat, table):
    """Per-layer views ``W_l`` (d_l, d_{l-1}) and ``b_l`` (d_l,) into ``flat``.

    Parameters
    ----------
    flat : ndarray, shape (n_params,)
        A parameter-shaped buffer (parameters, gradient or optimiser state).
    table : ndarray of int64, shape (L, 5)

    Returns
    -------
    weights, biases : list of ndarray
        Writable views; writing through them writes ``flat``.
    """
    layers = range(table.shape[0])
    return ([weight_view(flat, table, l) for l in layers],
            [bias_view(flat, table, l) for l in layers])


def workspace_span(size, table, layer, n_rows):
    """``(start, rows, cols)`` of ``layer``'s block in a workspace of ``size`` elements."""
    # n_units(table) spelled out: Numba compiles this function and cannot call plain Python
    capacity = size // (table[-1, UNIT_OFFSET] + table[-1, FAN_OUT])
    return capacity * table[layer, UNIT_OFFSET], n_rows, table[layer, FAN_OUT]


def workspace_block(buffer, table, layer, n_rows):
    """View of ``layer``'s rows inside a flat activation or delta workspace.

    Parameters
    ----------
    buffer : ndarray, shape (capacity * n_units(table),)
    table : ndarray of int64, shape (L, 5)
    layer : int
        0-based layer index (0 is the first hidden layer).
    n_rows : int
        Rows in the current batch, at most the workspace capacity.

    Returns
    -------
    ndarray, shape (n_rows, d_{layer+1})
        C-contiguous view.
    """
    start, rows, cols = workspace_span(buffer.shape[0], table, layer, n_rows)
    return buffer[start:start + rows * cols].reshape(rows, cols)
