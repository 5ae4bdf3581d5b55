"""Cold and warm first fits, per training path, each in a fresh process.

For every path (an optimizer x dtype, per-sample SGD, a streamed fit, a 2-rank
MPI fit, scikit-learn's default estimator on ``load_digits``) this runs

* *cold*: a new process with an empty ``NUMBA_CACHE_DIR``: import fastnn, fit
  one epoch, predict (every kernel the path needs is compiled, then cached);
* *warm*: a new process on the cache the cold run filled: the same, then one
  more epoch in the same process, the *steady* epoch.

and prints, per path, the cold wall time, the warm wall time and the warm
overhead (import + first fit + predict, minus a steady epoch), the median of
``--rounds``.  With ``--baseline-python`` the same is measured under another
interpreter (another environment with another fastnn commit), alternating the
two every round, and the table gets both and their ratio.

Run ``python scripts/cold_start.py`` (about a minute a round and
interpreter); ``--paths sgd-float32,sklearn`` for a subset.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

PATHS = {
    # name: (optimizer keywords, dtype, batch size, how)
    "sgd-float32": ({}, "float32", 32, "fit"),
    "sgd-float64": ({}, "float64", 32, "fit"),
    "momentum-float32": ({"momentum": 0.9}, "float32", 32, "fit"),
    "momentum-float64": ({"momentum": 0.9}, "float64", 32, "fit"),
    "nesterov-float32": ({"momentum": 0.9, "nesterov": True}, "float32", 32, "fit"),
    "adam-float32": ({"optimizer": "adam", "lr": 1e-3}, "float32", 32, "fit"),
    "adam-float64": ({"optimizer": "adam", "lr": 1e-3}, "float64", 32, "fit"),
    "adamw-float32": ({"optimizer": "adamw", "lr": 1e-3}, "float32", 32, "fit"),
    "per-sample-float32": ({}, "float32", 1, "fit"),
    "streamed-float32": ({}, "float32", 32, "stream"),
    "mpi-float32": ({}, "float32", 32, "mpi"),
    # the digits as CSR (a baseline from before sparse inputs cannot run these)
    "sparse-sgd-float32": ({}, "float32", 32, "sparse"),
    "sparse-momentum-float32": ({"momentum": 0.9}, "float32", 32, "sparse"),
    "sparse-per-sample-float32": ({}, "float32", 1, "sparse"),
    "sklearn": ({}, "float64", 0, "sklearn"),
}

# The worker: one process, one path.  It prints one JSON line.
WORKER = r"""
import json, sys, time
import numpy as np
keywords, dtype, batch, how, data_file = json.loads(sys.argv[1])
with np.load(data_file) as digits:
    X, y = digits["X"].astype(dtype), digits["y"]
started = time.perf_counter()   # from here: the import of fastnn, the first fit
def epoch(fit):
    t = time.perf_counter(); fit(); return time.perf_counter() - t
if how == "sklearn":
    from fastnn.sklearn import MLPClassifier
    model = MLPClassifier(random_state=0)
    first = epoch(lambda: model.fit(X, y))
    model.predict(X[:5])
    total = time.perf_counter() - started
    steady = epoch(lambda: model.fit(X, y))   # a whole default fit, warm
else:
    from fastnn import Network
    net = Network([64, 100, 10], seed=0, dtype=dtype)
    if how == "stream":
        import os, tempfile
        path = os.path.join(tempfile.mkdtemp(), "X.npy")
        np.save(path, X)
        data = np.load(path, mmap_mode="r")
    elif how == "sparse":
        import scipy.sparse
        data = scipy.sparse.csr_array(X)
    else:
        data = X
    if how == "mpi":
        from fastnn.distributed import fit_distributed
        from mpi4py import MPI
        from fastnn.distributed import shard
        Xs, ys = shard(X), shard(y)
        fit = lambda: fit_distributed(net, Xs, ys, epochs=1, batch_size=batch, **keywords)
    else:
        fit = lambda: net.fit(data, y, epochs=1, batch_size=batch, validation_split=0.1,
                              **keywords)
    first = epoch(fit)
    net.predict(data[:5])
    total = time.perf_counter() - started
    steady = epoch(fit)
print(json.dumps({"total": total, "first": first, "steady": steady}))
"""


def digits_file():
    """scikit-learn's digits (scaled to [0, 1]) in a file, so that workers need not import it."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    path = os.path.join(tempfile.mkdtemp(prefix="fastnn-digits-"), "digits.npz")
    np.savez(path, X=X / 16.0, y=y)
    return path


def run(python, path, cache, threads, data_file):
    keywords, dtype, batch, how = PATHS[path]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, OMP_NUM_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    command = [python, "-c", WORKER, json.dumps([keywords, dtype, batch, how, data_file])]
    if how == "mpi":
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
        command = ["mpiexec", "--oversubscribe", "--allow-run-as-root", "-n", "2", *command]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{path} under {python} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[0])
    result["wall"] = wall
    return result


def measure(python, path, threads, data_file):
    cache = tempfile.mkdtemp(prefix="fastnn-cold-")
    try:
        cold = run(python, path, cache, threads, data_file)
        warm = run(python, path, cache, threads, data_file)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"cold": cold["wall"], "warm": warm["wall"],
            "overhead": warm["total"] - warm["steady"], "steady": warm["steady"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paths", default=",".join(PATHS),
                        help="comma-separated subset of " + ", ".join(PATHS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--baseline-python", metavar="PYTHON",
                        help="also measure under this interpreter, alternating")
    args = parser.parse_args()
    paths = args.paths.split(",")
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown paths {unknown}; expected some of {list(PATHS)}")
    pythons = {"new": sys.executable}
    if args.baseline_python:
        pythons["old"] = args.baseline_python
    results = {(name, path): [] for name in pythons for path in paths}
    data_file = digits_file()
    for round_ in range(args.rounds):
        for path in paths:
            order = list(pythons) if round_ % 2 == 0 else list(reversed(pythons))
            for name in order:
                results[name, path].append(measure(pythons[name], path, args.threads, data_file))
                print(f"round {round_ + 1} {path} {name}: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in results[name, path][-1].items()),
                      file=sys.stderr, flush=True)

    def median(name, path, key):
        return statistics.median(r[key] for r in results[name, path])

    def cell(name, path, key, digits):
        return f"{median(name, path, key):.{digits}f}"

    print(f"\nmedian of {args.rounds} rounds, {args.threads} threads, seconds\n")
    if "old" in pythons:
        print("| path | cold old | cold new | new/old | warm overhead old | warm overhead new "
              "| steady epoch old | steady epoch new |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for path in paths:
            co, cn = median("old", path, "cold"), median("new", path, "cold")
            print(f"| {path} | {co:.1f} | {cn:.1f} | {cn / co:.2f} | "
                  f"{cell('old', path, 'overhead', 2)} | {cell('new', path, 'overhead', 2)} | "
                  f"{cell('old', path, 'steady', 3)} | {cell('new', path, 'steady', 3)} |")
    else:
        print("| path | cold | warm | warm overhead | steady epoch |")
        print("|---|---:|---:|---:|---:|")
        for path in paths:
            print(f"| {path} | {cell('new', path, 'cold', 1)} | {cell('new', path, 'warm', 1)} "
                  f"| {cell('new', path, 'overhead', 2)} | {cell('new', path, 'steady', 3)} |")


if __name__ == "__main__":
    main()
