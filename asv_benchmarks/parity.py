"""How far the Numba kernels drift from the NumPy reference over a training epoch."""

import numpy as np

from .common import DTYPES, SEED, THREADS, require_threads, synthetic_mnist

PARITY_ROWS = 10_000
BATCH_SIZE = 32


class NumbaVsReference:
    """Both backends train the same 784-200-10 network for one epoch, same seed and data.

    docs/design.md, section 6, promises agreement to ~1e-12 relative (float64) and ~1e-5
    (float32); the tests check single kernels, this tracks what a whole epoch
    of 313 mini-batch steps accumulates.
    """

    params = [DTYPES, THREADS]
    param_names = ["dtype", "n_threads"]
    timeout = 300.0

    def setup(self, dtype, n_threads):
        require_threads(n_threads)
        self.X, self.y = synthetic_mnist(PARITY_ROWS)

    def track_max_relative_param_difference_after_one_epoch(self, dtype, n_threads):
        """``max |θ_numba − θ_numpy| / max |θ_numpy|`` over all parameters.

        The same measure as the parity tests' ``relative_error`` (an
        element-wise ratio would blow up on parameters near zero).  Plain SGD,
        lr 0.1, batch size 32, shuffled with the network's seed.
        """
        from fastnn import Network

        trained = {}
        for backend in ("numba", "numpy"):
            net = Network([784, 200, 10], activation="relu", output="softmax", dtype=dtype,
                          seed=SEED, backend=backend, n_threads=n_threads)
            net.fit(self.X, self.y, epochs=1, batch_size=BATCH_SIZE, lr=0.1)
            trained[backend] = net.params.astype(np.float64)
        reference = trained["numpy"]
        return float(np.abs(trained["numba"] - reference).max() / np.abs(reference).max())

    track_max_relative_param_difference_after_one_epoch.unit = "relative difference"
