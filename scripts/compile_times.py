"""Where a cold first fit's compile time goes, per compiled function.

    python scripts/compile_times.py            # default path: float32 plain SGD, batch 100
    python scripts/compile_times.py --optimizer adam --dtype float64 --batch-size 200
    python scripts/compile_times.py --all                 # one cold process per path, a summary
    python scripts/compile_times.py --sparse --sizes 784,200,10   # a CSR X: the sparse path

Each path runs in a fresh interpreter with an empty ``NUMBA_CACHE_DIR``, so
everything it needs is compiled.  Numba broadcasts a ``numba:compile`` event
around each function it compiles (never around a cache load); the child
records them and prints, per function and signature, the *inclusive* time (the
event's span) and the *exclusive* time (the span less the spans of functions
compiled while it was open: Numba compiles a callee the first time the caller
is typed).  The passes of each compile (``numba:run_pass``) are added up too,
which tells the front end (typing, parfor lowering) from LLVM.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, time
from collections import defaultdict
started = time.perf_counter()
import numpy as np
from numba.core import event

spec = json.loads(sys.argv[1])
stack, rows, passes = [], [], defaultdict(float)
by_function = defaultdict(lambda: defaultdict(float))


class Compiles(event.Listener):
    def on_start(self, ev):
        # dispatcher, signature, start, nested compile time, LLVM time (exclusive)
        stack.append([ev.data["dispatcher"], ev.data["args"], time.perf_counter(), 0.0, 0.0])

    def on_end(self, ev):
        dispatcher, args, t0, nested, llvm = stack.pop()
        span = time.perf_counter() - t0
        if stack:
            stack[-1][3] += span
        rows.append({"function": f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__name__}",
                     "parallel": bool(dispatcher.targetoptions.get("parallel")),
                     "args": len(args), "inclusive": span, "exclusive": span - nested,
                     "llvm": llvm, "depth": len(stack)})


class Llvm(event.Listener):
    # the LLVM lock is held while LLVM optimises and emits code
    def on_start(self, ev):
        self.t0 = time.perf_counter()

    def on_end(self, ev):
        if stack:
            stack[-1][4] += time.perf_counter() - self.t0


class Passes(event.Listener):
    def on_start(self, ev):
        self.t0 = time.perf_counter()

    def on_end(self, ev):
        # "nopython_type_inference [function]": summed per kind of pass
        seconds = time.perf_counter() - self.t0
        name = ev.data["name"].split(" [")[0]
        passes[name] += seconds
        by_function[ev.data["qualname"]][name] += seconds


event.register("numba:compile", Compiles())
event.register("numba:run_pass", Passes())
event.register("numba:llvm_lock", Llvm())

from fastnn import Network
rng = np.random.default_rng(0)
n, sizes = spec["rows"], spec["sizes"]
X = rng.random((n, sizes[0]))
if spec["sparse"]:
    import scipy.sparse
    X[X < 0.8] = 0  # about a fifth of the entries stored, as MNIST
    X = scipy.sparse.csr_matrix(X)
y = rng.integers(0, sizes[-1], n)
net = Network(sizes, dtype=spec["dtype"], seed=0, n_threads=spec["threads"])
imported = time.perf_counter()
options = dict(epochs=1, batch_size=spec["batch_size"], optimizer=spec["optimizer"],
               lr=1e-3 if spec["optimizer"] != "sgd" else 0.1, momentum=spec["momentum"])
if spec["validation"]:
    options["validation_split"] = 0.1
net.fit(X, y, **options)
fitted = time.perf_counter()
net.predict(X[:10])
print(json.dumps({"rows": rows, "passes": passes, "by_function": by_function,
                  "import": imported - started, "fit": fitted - imported,
                  "total": time.perf_counter() - started}))
"""


def measure(spec):
    """Run one cold first fit in a new process; returns the child's record."""
    with tempfile.TemporaryDirectory(prefix="fastnn-compile-times-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the child failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(record, limit, show_passes=0):
    rows = sorted(record["rows"], key=lambda r: -r["exclusive"])
    total = sum(r["exclusive"] for r in rows)
    parallel = sum(r["exclusive"] for r in rows if r["parallel"])
    print(f"{len(rows)} compiles ({sum(r['parallel'] for r in rows)} parallel=True), "
          f"{total:.1f} s compiling ({parallel:.1f} s in parallel=True functions); "
          f"import {record['import']:.1f} s, first fit {record['fit']:.1f} s, "
          f"in all {record['total']:.1f} s")
    print(f"LLVM (optimising, emitting code) {sum(r['llvm'] for r in rows):.1f} s of it")
    print(f"{'exclusive s':>11}  {'of it LLVM':>10}  {'inclusive s':>11}  par  function")
    for r in rows[:limit]:
        print(f"{r['exclusive']:11.2f}  {r['llvm']:10.2f}  {r['inclusive']:11.2f}  "
              f"{'yes' if r['parallel'] else '   '}  {r['function']}")
    passes = sorted(record["passes"].items(), key=lambda kv: -kv[1])
    print("\ncompiler passes (seconds, summed over every compile; nested compiles count twice):")
    for name, seconds in passes[:12]:
        print(f"{seconds:8.2f}  {name}")
    if show_passes:
        print("\nthe costliest passes of each of the costliest functions (seconds):")
        for r in rows[:show_passes]:
            name = r["function"].rsplit(".", 1)[1]
            spent = sorted(record["by_function"].get(name, {}).items(), key=lambda kv: -kv[1])
            print(f"  {name}: " + ", ".join(f"{p} {t:.2f}" for p, t in spent[:6]))


PATHS = [  # (label, optimizer, momentum, dtype, batch size)
    ("float32 SGD batch 100", "sgd", 0.0, "float32", 100),
    ("float32 momentum batch 100", "sgd", 0.9, "float32", 100),
    ("float32 Adam batch 100", "adam", 0.0, "float32", 100),
    ("float32 per-sample SGD", "sgd", 0.0, "float32", 1),
    ("float64 SGD batch 100", "sgd", 0.0, "float64", 100),
    ("float64 momentum batch 100", "sgd", 0.9, "float64", 100),
    ("float64 Adam batch 200", "adam", 0.0, "float64", 200),
    ("float64 per-sample SGD", "sgd", 0.0, "float64", 1),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam", "adamw"])
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--sizes", default="64,32,10")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--validation", action="store_true",
                        help="hold out a tenth as validation data (compiles the evaluation too)")
    parser.add_argument("--sparse", action="store_true",
                        help="fit a CSR X (a fifth of its entries stored): the sparse path")
    parser.add_argument("--limit", type=int, default=25, help="rows of the table")
    parser.add_argument("--all", action="store_true", help="every common path, a summary")
    parser.add_argument("--passes", type=int, default=0,
                        help="also list the costliest passes of this many functions")
    args = parser.parse_args()
    base = {"sizes": [int(s) for s in args.sizes.split(",")], "rows": args.rows,
            "threads": args.threads, "validation": args.validation, "sparse": args.sparse}
    if not args.all:
        record = measure(dict(base, optimizer=args.optimizer, momentum=args.momentum,
                              dtype=args.dtype, batch_size=args.batch_size))
        print_table(record, args.limit, args.passes)
        return
    print(f"{'path':<28} {'compiles':>8} {'parallel':>8} {'compiling s':>11} {'first fit s':>11}")
    for label, optimizer, momentum, dtype, batch in PATHS:
        record = measure(dict(base, optimizer=optimizer, momentum=momentum, dtype=dtype,
                              batch_size=batch))
        rows = record["rows"]
        print(f"{label:<28} {len(rows):8d} {sum(r['parallel'] for r in rows):8d} "
              f"{sum(r['exclusive'] for r in rows):11.1f} {record['import'] + record['fit']:11.1f}",
              flush=True)


if __name__ == "__main__":
    main()
