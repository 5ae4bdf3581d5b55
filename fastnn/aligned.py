"""Buffers whose first element starts a 64-byte cache line.

NumPy aligns a large array to 16 bytes, and where in a cache line it starts
depends on the allocator's history: the parameter buffer of the same network
started 16 bytes into a line in one process and at a line's start in the
next. The kernels read rows of the weights and workspaces as whole 64-byte
vectors (AVX-512) or pairs of 32-byte ones, and a row that straddles lines
costs two loads a vector: an epoch of 784-200-10 on MNIST as CSR (float32,
batch 100, 2-core Intel Sapphire Rapids) took 0.174-0.188 s with the buffers
aligned and 0.186-0.232 s 16, 32 or 48 bytes in (3 epochs each, 2 processes
for each offset). So the training buffers (parameters, gradient, optimizer
state, workspaces) are allocated here.
"""

import numpy as np

#: bytes: a cache line of x86-64, and the width of an AVX-512 register
ALIGNMENT = 64


def aligned_zeros(shape, dtype):
    """Zeros of ``shape`` (C order) and ``dtype``, the first element at a multiple of
    :data:`ALIGNMENT` bytes.

    Parameters
    ----------
    shape : int or tuple of int
    dtype : numpy dtype

    Returns
    -------
    ndarray
        A view into a slightly larger byte buffer (its ``base``); C-contiguous.
    """
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(size + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + size].view(dtype).reshape(shape)


def aligned_zeros_like(array):
    """Aligned zeros of ``array``'s shape and dtype (see :func:`aligned_zeros`)."""
    return aligned_zeros(array.shape, array.dtype)


def aligned_copy(array):
    """An aligned C-ordered copy of ``array`` (see :func:`aligned_zeros`)."""
    array = np.asarray(array)
    out = aligned_zeros_like(array)
    out[...] = array
    return out
