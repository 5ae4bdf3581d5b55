"""Tuning constants of the kernels, in one place.

Waking the threads for a parallel loop costs a few microseconds; below these
sizes a piece of work runs on the calling thread instead.
"""

#: element-wise loops over fewer elements than this run serially
MIN_PARALLEL_ELEMENTS = 8192

#: matrix products with fewer multiply-adds than this are one BLAS call
MIN_PARALLEL_MULTIPLY_ADDS = 1 << 18

#: how every kernel is compiled: cached on disk, releasing the GIL, and with
#: NumPy's error model, so that a division by zero gives inf/NaN (caught by
#: fit's divergence check) instead of a branch that raises -- that branch kept
#: LLVM from vectorising any loop with a division (Adam's step ran scalar)
COMPILED = dict(cache=True, nogil=True, error_model="numpy")
