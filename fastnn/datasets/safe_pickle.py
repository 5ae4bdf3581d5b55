"""An unpickler that can rebuild NumPy arrays and nothing else.

The classic MNIST file is a pickle; unpickling is code execution unless the
set of callables a pickle may name is closed.
"""

import io
import pickle

import numpy as np

# Unpickling is code execution unless the set of callables the pickle may
# name is closed. The MNIST pickle only needs to rebuild ndarrays and dtypes,
# so exactly those globals are allowed, under both the NumPy 1.x module path
# (``numpy.core``; the file was written by Python 2 / NumPy 1) and the NumPy
# 2.x one (``numpy._core``). The callables are taken from NumPy's own
# ``__reduce__`` results rather than imported by name, which works on either
# major version without touching the deprecated ``numpy.core`` alias.
_reconstruct = np.empty(0).__reduce__()[0]
_scalar = np.float64(0).__reduce__()[0]
_frombuffer = np.empty(0).__reduce_ex__(5)[0]  # protocol-5 (out-of-band) array pickles
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild NumPy arrays, dtypes and scalars, and nothing else.

    Any other global (``os.system``, ``builtins.eval``, ``numpy.load`` ...)
    raises :class:`pickle.UnpicklingError` before it is imported or called.
    Plain containers (tuples, lists, dicts), numbers and strings need no
    globals and load as usual.
    """

    def find_class(self, module: str, name: str):
        try:
            return _SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name} from a pickle: only the "
                "NumPy array reconstruction functions are allowed"
            ) from None


def load(fileobj) -> object:
    """Unpickle ``fileobj`` allowing only NumPy arrays, dtypes and scalars.

    ``encoding="latin1"`` is what NumPy documents for Python 2 pickles: the
    raw array bytes were pickled as ``str`` and latin-1 maps them back to the
    same bytes.
    """
    return _NumpyOnlyUnpickler(fileobj, encoding="latin1").load()


def loads(data: bytes) -> object:
    """:func:`load` on an in-memory pickle."""
    return load(io.BytesIO(data))
