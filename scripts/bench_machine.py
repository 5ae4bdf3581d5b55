"""Thread scaling, start-up cost and memory of fit, measured on this machine.

    python scripts/bench_machine.py threads   # 1024-1024-1024-10, batch 256: 1 vs 2 threads
    python scripts/bench_machine.py startup   # a new process: import + data + first epoch
    python scripts/bench_machine.py memory    # how much fit adds to the data's memory

Each measurement runs in fresh processes (start-up with a warm and with a cold
Numba cache) and prints medians; run it on an otherwise idle machine.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

_THREADS = """
import sys, numpy as np
from fastnn import Network
rng = np.random.default_rng(0)
X = rng.random((8192, 1024), dtype=np.float32); y = rng.integers(0, 10, 8192)
net = Network([1024, 1024, 1024, 10], seed=0, n_threads=int(sys.argv[1]))
net.fit(X[:1024], y[:1024], epochs=1, batch_size=256, lr=0.01)
print(np.median(net.fit(X, y, epochs=5, batch_size=256, lr=0.01)["time"]))
"""

_STARTUP = """
import time
started = time.perf_counter()
import numpy as np
from fastnn import Network
from fastnn.datasets import load_sample
X, y = load_sample().train
net = Network([784, 200, 10], seed=0)
net.fit(X, y, epochs=1, batch_size=100, lr=0.1, momentum=float(__import__('sys').argv[1]))
first = time.perf_counter() - started
steady = np.median(net.fit(X, y, epochs=5, batch_size=100, lr=0.1)["time"])
print(first, steady)
"""

_MEMORY = """
import sys, tracemalloc, numpy as np
from fastnn import Network
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
batch, optimizer = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
X = rng.random((60000, 784), dtype=np.float32); y = rng.integers(0, 10, 60000)
net = Network([784, 200, 10], seed=0)
net.fit(X[:1000], y[:1000], epochs=1, batch_size=batch, optimizer=optimizer, lr=0.01)
before = status("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")   # reset the resident high-water mark
tracemalloc.start()
net.fit(X, y, epochs=3, batch_size=batch, optimizer=optimizer, lr=0.01)
traced = tracemalloc.get_traced_memory()[1]
print(X.nbytes, net.params.nbytes, status("VmHWM:") - before, traced)
"""


def _run(code, *args, env=None):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env,
                            capture_output=True, text=True, check=True)
    return [float(v) for v in result.stdout.split()]


def threads(rounds):
    for r in range(rounds):
        one = _run(_THREADS, 1)[0]
        two = _run(_THREADS, 2)[0]
        print(f"round {r + 1}: 1 thread {one:.3f} s, 2 threads {two:.3f} s per 8,192 rows; "
              f"speed-up {one / two:.2f}")


def startup(rounds):
    for momentum, name in ((0.0, "plain SGD"), (0.9, "SGD with momentum")):
        cold, warm, steady = [], [], []
        for _ in range(rounds):
            env = dict(os.environ, NUMBA_CACHE_DIR=tempfile.mkdtemp(prefix="fastnn-cache-"))
            cold.append(_run(_STARTUP, momentum, env=env)[0])
            first, steady_epoch = _run(_STARTUP, momentum, env=env)
            warm.append(first)
            steady.append(steady_epoch)
        print(f"{name}: cold cache {np.median(cold):.1f} s; warm cache {np.median(warm):.2f} s "
              f"(import + data + first epoch), {np.median(warm) - np.median(steady):.2f} s more "
              f"than a steady epoch ({np.median(steady):.3f} s)")


def memory(rounds):
    if not os.path.exists("/proc/self/clear_refs"):
        sys.exit("memory needs Linux /proc (clear_refs, VmHWM)")
    for batch, optimizer in ((100, "sgd"), (100, "adam"), (1, "sgd")):
        data, params, rss, traced = np.median([_run(_MEMORY, batch, optimizer)
                                               for _ in range(rounds)], axis=0)
        mb = 2 ** 20
        print(f"batch {batch} {optimizer}: data {data / mb:.0f} MB, parameters "
              f"{params / mb:.2f} MB; fit raises resident memory by {rss / mb:.1f} MB, NumPy "
              f"allocations peak at {traced / mb:.1f} MB (budget: 4 x parameters + workspace "
              f"+ 100 MB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["threads", "startup", "memory"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    {"threads": threads, "startup": startup, "memory": memory}[args.what](args.rounds)


if __name__ == "__main__":
    main()
