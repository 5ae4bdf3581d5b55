"""Who owns the threads during a call (docs/design.md, rule 1).

Mixing Numba's parallel loops with multi-threaded OpenBLAS made an epoch 30x
slower on the reference machine.  So under the Numba backend Numba owns the
threads and both OpenBLAS copies (NumPy's and SciPy's, which Numba's BLAS calls
use) run one thread each; under the NumPy backend BLAS owns them.  The previous
settings are restored on exit.
"""

import contextlib

import numba
from threadpoolctl import ThreadpoolController

_controller = None


def _blas():
    # Built once, on first use: scanning the loaded libraries takes milliseconds.
    # The scan finds only the libraries loaded by then, so SciPy's OpenBLAS
    # (the one the kernels call) is loaded first: built before it, the
    # controller left it uncapped, and every product inside Numba's threads ran
    # on threaded OpenBLAS (an epoch of 784-200-10 at batch 100 on two threads
    # took 20.7 s instead of 0.5).
    global _controller
    if _controller is None:
        import scipy.linalg.cython_blas  # noqa: F401 - loads SciPy's OpenBLAS

        _controller = ThreadpoolController()
    return _controller


def available_threads():
    """Threads Numba may use in this process (``NUMBA_NUM_THREADS``)."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def thread_scope(n_threads, backend):
    """Run the body with ``n_threads`` threads owned by ``backend``'s engine.

    Parameters
    ----------
    n_threads : int
        At most :func:`available_threads`.
    backend : {"numba", "numpy"}
    """
    previous = numba.get_num_threads()
    blas_threads = 1 if backend == "numba" else n_threads
    numba.set_num_threads(n_threads)
    try:
        with _blas().limit(limits=blas_threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
