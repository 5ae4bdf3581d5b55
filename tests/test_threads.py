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
