"""A cold first fit says that it compiles, once, and its epochs do not count it;
``fastnn compile`` fills the cache ahead of time.

Each case runs fresh processes with an empty ``NUMBA_CACHE_DIR`` of its own.
"""

import os
import subprocess
import sys

_FIT = r"""
import logging, sys
import numpy as np
from fastnn import Network
if sys.argv[1] == "quiet":
    logging.getLogger("fastnn").setLevel(logging.ERROR)
net = Network([6, 5, 3], seed=0)
X = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3
history = net.fit(X, y, epochs=2, batch_size=8, momentum=0.9)
print(history.compile_time, max(history["time"]))
"""


def _env(tmp_path):
    return dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))


def _run(command, env):
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, done.stderr


def test_cold_fit_says_it_compiles_once_and_epochs_exclude_it(tmp_path):
    env = _env(tmp_path)
    out, err = _run([sys.executable, "-c", _FIT, "loud"], env)
    compile_time, slowest_epoch = map(float, out.split())
    # (a small network's fit on two threads names its row-split kernels too)
    assert err.count("fastnn: compiling the float32 SGD-with-momentum/Adam ") == 1, err
    assert err.count("kernels (first use on this machine; cached afterwards)") == 1, err
    assert compile_time > 1.0 > slowest_epoch  # the seconds of compiling are not an epoch's
    out, err = _run([sys.executable, "-c", _FIT, "loud"], env)
    assert float(out.split()[0]) == 0.0 and "compiling" not in err


def test_the_notice_can_be_silenced(tmp_path):
    out, err = _run([sys.executable, "-c", _FIT, "quiet"], _env(tmp_path))
    assert float(out.split()[0]) > 0 and "compiling" not in err


def test_fastnn_compile_fills_the_cache(tmp_path):
    env = _env(tmp_path)
    command = [sys.executable, "-m", "fastnn", "compile", "--dtype", "float32",
               "--optimizer", "momentum"]
    out, err = _run(command, env)
    assert "float32: compiled in" in out and "fastnn: compiling the float32" in err
    out, err = _run(command, env)
    assert "float32: all cached already" in out and "compiling" not in err
    # fastnn train's default fit (float32, momentum) then finds everything cached
    out, err = _run([sys.executable, "-m", "fastnn", "train", "--epochs", "1",
                     "--no-progress"], env)
    assert "compiling" not in err and "compiling" not in out
    assert "test error" in out


_SPARSE_FIT = r"""
import numpy as np, scipy.sparse
from fastnn import Network
X = scipy.sparse.random_array((60, 30), density=0.2, format="csr", rng=0)
y = np.arange(60) % 3
history = Network([30, 5, 3], seed=0).fit(X, y, epochs=1, batch_size=8, validation_split=0.2)
print(history.compile_time)
"""


def test_fastnn_compile_sparse_fills_the_cache_of_a_sparse_fit(tmp_path):
    env = _env(tmp_path)
    _run([sys.executable, "-m", "fastnn", "compile", "--dtype", "float32", "--optimizer", "sgd",
          "--sparse"], env)
    out, err = _run([sys.executable, "-c", _SPARSE_FIT], env)
    assert float(out.split()[0]) == 0.0 and "compiling" not in err
