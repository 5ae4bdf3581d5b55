"""What the JIT costs a user: importing fastnn and running a first tiny fit.

Each measurement is a fresh interpreter (``subprocess`` with
``sys.executable``): *cold* with an empty temporary ``NUMBA_CACHE_DIR``, so
every kernel is compiled, then *cached* with that same, now filled,
directory, so the kernels are loaded from disk.  Only float32 is compiled
(the default dtype); float64 costs about the same again on first use.
"""

import os
import subprocess
import sys
import tempfile

# Timed inside the child, from before ``import fastnn`` to the end of the fit,
# so interpreter start-up and NumPy's import are left out.
_FIRST_FIT = """
import time
import numpy as np
started = time.perf_counter()
from fastnn import Network
net = Network([16, 8, 3], activation="relu", output="softmax", dtype="float32", seed=0)
X = np.random.default_rng(0).random((64, 16), dtype=np.float32)
net.fit(X, np.arange(64) % 3, epochs=1, batch_size=8)
print(time.perf_counter() - started)
"""


def _first_fit_seconds(cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", _FIRST_FIT], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the first-fit subprocess failed ({done.returncode}):\n"
                           f"{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


class ImportAndFirstFit:
    """Seconds from ``import fastnn`` to the end of a first fit in a new process."""

    params = ["cold", "cached"]
    param_names = ["numba_cache"]

    def setup_cache(self):
        # both runs share one directory: the second must find what the first wrote
        with tempfile.TemporaryDirectory(prefix="fastnn-asv-numba-cache-") as cache_dir:
            cold = _first_fit_seconds(cache_dir)
            cached = _first_fit_seconds(cache_dir)
        return {"cold": cold, "cached": cached}

    # compiling every kernel from nothing takes tens of seconds
    setup_cache.timeout = 900.0

    def track_import_and_first_fit_seconds(self, seconds, numba_cache):
        """Seconds for ``import fastnn`` plus a 64-row fit of a 16-8-3 network."""
        return seconds[numba_cache]

    track_import_and_first_fit_seconds.unit = "seconds"
