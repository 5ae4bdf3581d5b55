"""Tuning constants of the kernels, in one place.

Waking the threads for a parallel loop costs a few microseconds; below these
sizes a piece of work runs on the calling thread instead.
"""

#: element-wise loops over fewer elements than this run serially
MIN_PARALLEL_ELEMENTS = 8192

#: matrix products with fewer multiply-adds than this are one BLAS call
#: (100 x 200 x 10, the second layer of a 784-200-10 net at batch 100:
#: 8.4 µs as one call, 6.9 µs split in two; its weight update 18.6 and 11.3 µs)
MIN_PARALLEL_MULTIPLY_ADDS = 1 << 16

#: ... and so are products with an inner size below this: with k = 10 the two
#: halves took longer than the whole (11.5 against 8.1 µs)
MIN_PARALLEL_INNER = 32

#: how every kernel is compiled: cached on disk, releasing the GIL, and with
#: NumPy's error model, so that a division by zero gives inf/NaN (caught by
#: fit's divergence check) instead of a branch that raises -- that branch kept
#: LLVM from vectorising any loop with a division (Adam's step ran scalar)
COMPILED = dict(cache=True, nogil=True, error_model="numpy")

#: ... and the functions only compiled code calls (the layer steps and their
#: helpers, called through addresses or linked): no wrappers that convert
#: Python objects, which are code to compile and nothing would call
INTERNAL = dict(COMPILED, no_cpython_wrapper=True, no_cfunc_wrapper=True)
