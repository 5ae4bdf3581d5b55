"""Where one mini-batch's time goes: each layer step of a fused SGD step, timed alone.

    python scripts/bench_batch_steps.py                  # 784-200-10, batch 100, float32
    python scripts/bench_batch_steps.py --batch 256 --sizes 784,200,10

One plain-SGD mini-batch of a network with one hidden layer (relu, softmax)
is the plan ``FORWARD 0, FORWARD 1, OUTPUT, DELTA 1, SGD 1, SGD 0``
(:mod:`fastnn.kernels.plans`), after the gather of its rows.  Each of them
runs on its own, as a one-row plan through the kernels' own entry point, 1
thread and all threads; the gather is an empty plan over shuffled rows.
Each step runs ``--repeat`` times inside one compiled loop (no Python between
calls); the best of five such loops is reported, in microseconds per call.
The last rows compare the sum of the steps with a whole ``fit`` epoch divided
by its number of batches: the difference is what the steps cost together and
not apart (caches, waiting threads).  Run it on an otherwise idle machine.
"""

import argparse
import time

import numba
import numpy as np
from numba import njit

from fastnn import Network, codes
from fastnn.kernels import address_table, plans
from fastnn.kernels.layer_steps import DELTA, FORWARD, SGD
from fastnn.kernels.native_calls import (
    DELTA_LEAF,
    FORWARD_LEAF,
    OUTPUT_LEAF,
    PARALLEL_LEAF,
    SGD_LEAF,
)
from fastnn.layout import layer_table, n_params, n_units
from fastnn.optim import step_settings
from fastnn.threads import thread_scope


@njit
def _repeat(reps, leaves, plan, params, grad, state, table, hidden, output, X, Y, weights,
            scale, order, batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas,
            batch_stats, n_blocks):
    # `reps` runs of one plan, nothing else between them
    for _ in range(reps):
        plans.run_plan(leaves, plan, params, grad, state, table, hidden, output, X, Y, weights,
                       scale, order, batch_size, settings, step, xbuf, ybuf, wbuf, acts, deltas,
                       batch_stats, n_blocks)


class _Batch:
    """A batch of a one-hidden-layer network, ready for one-row plans."""

    def __init__(self, sizes, batch, dtype, rows, rng):
        self.dtype = np.dtype(dtype)
        self.table = layer_table(sizes)
        self.hidden = np.array([codes.RELU], dtype=np.int64)
        self.params = (rng.standard_normal(n_params(self.table)) * 0.05).astype(dtype)
        self.grad = np.zeros_like(self.params)
        self.state = np.zeros((1, self.params.size), dtype)
        self.X_all = rng.random((rows, sizes[0]), dtype=np.float32).astype(dtype, copy=False)
        self.Y_all = np.zeros((rows, sizes[-1]), dtype)
        self.Y_all[np.arange(rows), rng.integers(0, sizes[-1], rows)] = 1
        self.w_all = np.ones(rows, dtype)
        self.X = self.X_all[:batch].copy()
        self.Y = self.Y_all[:batch].copy()
        self.w = self.w_all[:batch].copy()
        self.acts = rng.random(batch * n_units(self.table)).astype(dtype)
        self.deltas = rng.standard_normal(batch * n_units(self.table)).astype(dtype)
        self.order = rng.permutation(rows)[:batch]
        self.batch = batch
        # tiny steps: the weights stay put over thousands of repeats
        self.settings = step_settings(dtype, lr=1e-6)

    def args(self, plan, shuffled, n_blocks):
        leaves = address_table(self.dtype, (FORWARD_LEAF, DELTA_LEAF, SGD_LEAF, OUTPUT_LEAF)
                               + ((PARALLEL_LEAF,) if n_blocks > 1 else ()))
        plan = np.array(plan, dtype=np.int64).reshape(-1, 2)
        xbuf, ybuf, wbuf = np.empty_like(self.X), np.empty_like(self.Y), np.empty_like(self.w)
        if shuffled:
            X, Y, w, order = self.X_all, self.Y_all, self.w_all, self.order
        else:
            X, Y, w, order = self.X, self.Y, self.w, np.empty(0, dtype=np.int64)
        return (leaves, plan, self.params, self.grad, self.state, self.table, self.hidden,
                codes.OUT_SOFTMAX, X, Y, w, 1.0 / self.batch, order, self.batch, self.settings,
                np.zeros(1, dtype=np.int64), xbuf, ybuf, wbuf, self.acts, self.deltas,
                np.empty((1, 3)), n_blocks)


def _steps(sizes, batch):
    """``[(name, shape, plan rows, shuffled)]`` of one batch, in the order it runs."""
    d0, d1, d2 = sizes
    return [
        ("gather rows", f"{batch} of the rows x {d0}", [], True),
        ("forward 1: X W1^T, bias + relu", f"{batch}x{d0} . {d0}x{d1}", [(FORWARD, 0)], False),
        ("forward 2: A1 W2^T, bias", f"{batch}x{d1} . {d1}x{d2}", [(FORWARD, 1)], False),
        ("softmax, loss, delta 2", f"{batch}x{d2}", [(plans.OUTPUT, 0)], False),
        ("delta 1: D2 W2, relu derivative", f"{batch}x{d2} . {d2}x{d1}", [(DELTA, 1)], False),
        ("update W2, b2 (fused SGD)", f"{d2}x{batch} . {batch}x{d1}", [(SGD, 1)], False),
        ("update W1, b1 (fused SGD)", f"{d1}x{batch} . {batch}x{d0}", [(SGD, 0)], False),
    ]


def _best_microseconds(args, repeat):
    _repeat(1, *args)  # compile / warm up
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        _repeat(repeat, *args)
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def _epoch_per_batch(sizes, batch, dtype, n_threads, rows, rng):
    X = rng.random((rows, sizes[0]), dtype=np.float32).astype(dtype, copy=False)
    y = rng.integers(0, sizes[-1], X.shape[0])
    net = Network(list(sizes), dtype=dtype, seed=0, n_threads=n_threads)
    net.fit(X[:2 * batch], y[:2 * batch], epochs=1, batch_size=batch, lr=0.1)
    epoch = np.median(net.fit(X, y, epochs=3, batch_size=batch, lr=0.1)["time"])
    return epoch / -(-X.shape[0] // batch) * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784,200,10",
                        help="layer sizes of a one-hidden-layer network (default 784,200,10)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--rows", type=int, default=60_000,
                        help="rows of the synthetic data (default 60,000, MNIST's)")
    parser.add_argument("--repeat", type=int, default=600,
                        help="calls per timed loop (default 600, one epoch's batches)")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.rows < 2 * args.batch:
        parser.error("--rows must be at least twice --batch")
    if len(sizes) != 3:
        parser.error("--sizes takes three sizes: inputs, hidden units, outputs")
    rng = np.random.default_rng(0)
    batch = _Batch(sizes, args.batch, args.dtype, args.rows, rng)
    steps = _steps(sizes, args.batch)
    counts = sorted({1, numba.config.NUMBA_NUM_THREADS})
    times = {}
    for n_threads in counts:
        with thread_scope(n_threads, "numba"):
            times[n_threads] = [_best_microseconds(batch.args(plan, shuffled, n_threads),
                                                   args.repeat)
                                for _, _, plan, shuffled in steps]
    epochs = {n: _epoch_per_batch(sizes, args.batch, args.dtype, n, args.rows, rng)
              for n in counts}

    header = "| step | shape | " + " | ".join(f"{n} thread{'s' * (n > 1)} (µs)"
                                                for n in counts) + " |"
    print(f"One plain-SGD mini-batch of {'-'.join(map(str, sizes))} relu/softmax, "
          f"batch {args.batch}, {args.dtype}; best of 5 loops of {args.repeat} calls.\n")
    print(header)
    print("|---|---|" + "---:|" * len(counts))
    for i, (name, shape, _, _) in enumerate(steps):
        print(f"| {name} | {shape} | " + " | ".join(f"{times[n][i]:.1f}" for n in counts) + " |")
    print("| sum of the steps | | " + " | ".join(f"{sum(times[n]):.1f}" for n in counts) + " |")
    print("| fit epoch / batches | | " + " | ".join(f"{epochs[n]:.1f}" for n in counts) + " |")


if __name__ == "__main__":
    main()
