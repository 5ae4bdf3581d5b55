"""What the JIT costs a user: importing fastnn and running a first fit, per path.

Each measurement is a fresh interpreter (``subprocess`` with
``sys.executable``): *cold* with an empty temporary ``NUMBA_CACHE_DIR``, so
every kernel the path needs is compiled, then *cached* with that same, now
filled, directory, so they are loaded from disk.  The paths are the ones
users meet first: plain SGD in float32 (``fastnn train``'s kind of fit,
without momentum), SGD with momentum in float32 (``fastnn train``'s own),
Adam in float64 (``fastnn.sklearn.MLPClassifier``'s default) and per-sample
SGD.  Every fit holds out validation rows and ends with a prediction, so the
evaluation kernels are part of it.
"""

import os
import subprocess
import sys
import tempfile

# Timed inside the child, from before ``import fastnn`` to the end of the
# prediction, so interpreter start-up and NumPy's import are left out.
_FIRST_FIT = """
import sys, time
import numpy as np
started = time.perf_counter()
from fastnn import Network
dtype, batch_size, options = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3])
net = Network([16, 8, 3], activation="relu", output="softmax", dtype=dtype, seed=0)
X = np.random.default_rng(0).random((64, 16), dtype=np.float32)
net.fit(X, np.arange(64) % 3, epochs=1, batch_size=batch_size, validation_split=0.25,
        **options)
net.predict(X)
print(time.perf_counter() - started)
"""

#: name -> (dtype, batch size, fit options)
PATHS = {
    "sgd-float32": ("float32", 8, {}),
    "momentum-float32": ("float32", 8, {"momentum": 0.9}),
    "adam-float64": ("float64", 16, {"optimizer": "adam", "lr": 1e-3}),
    "per-sample-float32": ("float32", 1, {}),
}


def _first_fit_seconds(cache_dir, path):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    dtype, batch_size, options = PATHS[path]
    done = subprocess.run([sys.executable, "-c", _FIRST_FIT, dtype, str(batch_size),
                           repr(options)], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the first-fit subprocess failed ({done.returncode}):\n"
                           f"{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


class ImportAndFirstFit:
    """Seconds from ``import fastnn`` to the end of a first fit and prediction."""

    params = (list(PATHS), ["cold", "cached"])
    param_names = ["path", "numba_cache"]

    def setup_cache(self):
        seconds = {}
        for path in PATHS:
            # both runs share one directory: the second must find what the first wrote
            with tempfile.TemporaryDirectory(prefix="fastnn-asv-numba-cache-") as cache_dir:
                seconds[path, "cold"] = _first_fit_seconds(cache_dir, path)
                seconds[path, "cached"] = _first_fit_seconds(cache_dir, path)
        return seconds

    # compiling a path from nothing takes seconds; four of them twice over
    setup_cache.timeout = 900.0

    def track_import_and_first_fit_seconds(self, seconds, path, numba_cache):
        """Seconds for ``import fastnn``, a 64-row fit of a 16-8-3 network, a prediction."""
        return seconds[path, numba_cache]

    track_import_and_first_fit_seconds.unit = "seconds"
