"""During a fit on the Numba backend every BLAS pool runs one thread (docs/design.md,
rule 1): Numba's threads call BLAS, and threaded BLAS inside them oversubscribes
the cores (an epoch took 40 times as long when SciPy's OpenBLAS was left
threaded).  Checked in a fresh process where fastnn is imported before
anything has loaded SciPy's OpenBLAS, as in a user's script."""

import json
import os
import subprocess
import sys

_CHILD = r"""
import json
import numpy as np
from fastnn import Network
from threadpoolctl import threadpool_info

seen = []
def record(network, history):
    seen.extend((p["internal_api"], p["filepath"], p["num_threads"])
                for p in threadpool_info() if p["user_api"] == "blas")
net = Network([6, 5, 3], seed=0, n_threads=2)
X = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3
net.fit(X, y, epochs=1, batch_size=8, callbacks=[record])
print(json.dumps(seen))
"""


def test_every_blas_pool_has_one_thread_during_fit():
    env_threads = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, **env_threads))
    assert done.returncode == 0, done.stderr[-3000:]
    pools = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("scipy" in path for _, path, _ in pools), pools  # SciPy's OpenBLAS was seen
    assert all(threads == 1 for _, _, threads in pools), pools


def test_small_network_fits_in_two_python_threads_keep_their_own_scratch():
    """Two fits of small networks (rows split among Numba's threads, with per-thread
    scratch kept between epochs) in two Python threads at once: each gets the
    parameters it gets alone, though the kernels release the GIL."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from fastnn import Network
    from fastnn.threads import available_threads

    threads = min(2, available_threads())
    rng = np.random.default_rng(0)
    # the same shapes: the same scratch, were it shared
    data = [(rng.random((3000, 12)), rng.integers(0, 3, 3000)) for _ in range(2)]

    def fit(i):
        X, y = data[i]
        net = Network([12, 16, 3], dtype="float64", seed=i, n_threads=threads)
        net.fit(X, y, epochs=3, batch_size=40, lr=0.1, momentum=0.9)
        return net.params

    alone = [fit(0), fit(1)]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(fit, [0, 1]))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
