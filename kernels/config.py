"""How the kernels are compiled, and their tuning constants, in one place.

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

#: networks with at most this many parameters train with each batch's rows split
#: among the threads (fastnn.kernels.row_parallel), larger ones with each layer
#: step split; measured in docs/design.md, rule 11
ROW_PARALLEL_MAX_PARAMS = 50_000


def _cache_available():
    """Whether Numba has somewhere to write the kernels' cache.

    Numba looks beside the sources (the ``__pycache__`` folders of the
    installed package), then in the user's cache folder (``~/.cache/numba``),
    or where ``NUMBA_CACHE_DIR`` says; with none of them writable,
    ``cache=True`` would make ``import fastnn.kernels`` fail.  The check is
    Numba's own search (``numba.core.caching.FunctionCache``), on a function of
    this folder.
    """
    from numba.core.caching import FunctionCache

    try:
        FunctionCache(_cache_available)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


#: whether the compiled kernels are kept on disk (see _cache_available)
CACHE = _cache_available()
if not CACHE:
    import logging

    logging.getLogger("fastnn").warning(
        "fastnn: no writable place for Numba's cache (the installed sources and ~/.cache are "
        "read-only): the kernels will be compiled in every new process; set NUMBA_CACHE_DIR "
        "to a writable directory to keep them")

#: how every kernel is compiled: cached on disk (where there is a place),
#: releasing the GIL, and with NumPy's error model, so that a division by zero
#: gives inf/NaN (caught by fit's divergence check) instead of a branch that
#: raises -- that branch kept LLVM from vectorising any loop with a division
#: (Adam's step ran scalar)
COMPILED = dict(cache=CACHE, nogil=True, error_model="numpy")

#: ... and the functions only compiled code calls (the layer steps and their
#: helpers, called through addresses or linked): no wrappers that convert
#: Python objects, which are code to compile and nothing would call
INTERNAL = dict(COMPILED, no_cpython_wrapper=True, no_cfunc_wrapper=True)
