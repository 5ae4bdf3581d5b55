"""Where one mini-batch's time goes: each step of a fused SGD step, timed alone.

    python scripts/bench_batch_steps.py                  # 784-200-10, batch 100, float32
    python scripts/bench_batch_steps.py --batch 256 --sizes 784,200,10

Every step of one plain-SGD mini-batch of a network with one hidden layer
(relu, softmax) is timed on its own, with the kernels' own entry points
(``fastnn.kernels``: the same code ``fit`` runs), 1 thread and all threads:
the row gather, the two forward products, bias + activation, the softmax
pass, the hidden delta, the ReLU derivative, the bias sums and the two
in-place weight updates.  Each step runs ``--repeat`` times inside one
compiled loop (no Python between calls); the best of five such loops is
reported, in microseconds per call.  The last rows compare the sum of the
steps with a whole ``fit`` epoch divided by its number of batches: the
difference is what the steps cost together and not apart (caches, waiting
threads).  Run it on an otherwise idle machine.
"""

import argparse
import time

import numba
import numpy as np
from numba import njit

from fastnn import Network, codes
from fastnn.kernels.elementwise import (
    add_bias_activate,
    column_sums,
    gather_rows,
    multiply_derivative,
)
from fastnn.kernels.matmul import matmul
from fastnn.kernels.outputs import output_pass
from fastnn.threads import thread_scope

# One compiled loop per step: `reps` calls, nothing else.


@njit
def _gather(X, order, xb, reps, n_blocks):
    n = xb.shape[0]
    for r in range(reps):
        gather_rows(X, order, (r * n) % (order.shape[0] - n), xb, n_blocks)


@njit
def _product(transa, transb, alpha, A, B, beta, C, reps, n_blocks):
    for _ in range(reps):
        matmul(transa, transb, alpha, A, B, beta, C, n_blocks)


@njit
def _activate(Z, b, reps, n_blocks):
    for _ in range(reps):
        add_bias_activate(Z, b, codes.RELU, n_blocks)


@njit
def _softmax(Z, Y, w, D, reps, n_blocks):
    total = 0.0
    for _ in range(reps):
        total += output_pass(codes.OUT_SOFTMAX, Z, Y, w, 0.01, D, True, n_blocks)[0]
    return total


@njit
def _derivative(D, A, reps, n_blocks):
    for _ in range(reps):
        multiply_derivative(D, A, codes.RELU, n_blocks)


@njit
def _bias_sums(D, out, reps, n_blocks):
    for _ in range(reps):
        column_sums(D, out)


def _best_microseconds(step, args, repeat, n_blocks):
    step(*args, 1, n_blocks)  # compile / warm up
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        step(*args, repeat, n_blocks)
        best = min(best, (time.perf_counter() - started) / repeat)
    return best * 1e6


def _steps(sizes, batch, dtype, rows, rng):
    d0, d1, d2 = sizes
    X = rng.random((rows, d0), dtype=np.float32).astype(dtype, copy=False)
    order = rng.permutation(X.shape[0])
    xb = np.empty((batch, d0), dtype)
    W1 = (rng.standard_normal((d1, d0)) * 0.05).astype(dtype)
    W2 = (rng.standard_normal((d2, d1)) * 0.05).astype(dtype)
    b1, b2 = np.zeros(d1, dtype), np.zeros(d2, dtype)
    A1 = rng.standard_normal((batch, d1)).astype(dtype)
    Z2 = np.zeros((batch, d2), dtype)
    D1 = rng.standard_normal((batch, d1)).astype(dtype)
    D2 = rng.standard_normal((batch, d2)).astype(dtype)
    Y = np.zeros((batch, d2), dtype)
    Y[np.arange(batch), rng.integers(0, d2, batch)] = 1
    w = np.ones(batch, dtype)
    lr = -1e-6  # tiny steps: the weights stay put over thousands of repeats
    return [
        ("gather rows", f"{batch} of {X.shape[0]} x {d0}", _gather, (X, order, xb)),
        ("forward 1: X W1^T", f"{batch}x{d0} . {d0}x{d1}", _product,
         (False, True, 1.0, xb, W1, 0.0, A1)),
        ("bias + relu 1", f"{batch}x{d1}", _activate, (A1, b1)),
        ("forward 2: A1 W2^T", f"{batch}x{d1} . {d1}x{d2}", _product,
         (False, True, 1.0, A1, W2, 0.0, Z2)),
        ("softmax, loss, delta 2", f"{batch}x{d2}", _softmax, (Z2, Y, w, D2)),
        ("delta 1: D2 W2", f"{batch}x{d2} . {d2}x{d1}", _product,
         (False, False, 1.0, D2, W2, 0.0, D1)),
        ("relu derivative", f"{batch}x{d1}", _derivative, (D1, A1)),
        ("update W2 -= lr D2^T A1", f"{d2}x{batch} . {batch}x{d1}", _product,
         (True, False, lr, D2, A1, 1.0, W2)),
        ("bias sums 2", f"{batch}x{d2}", _bias_sums, (D2, b2)),
        ("update W1 -= lr D1^T X", f"{d1}x{batch} . {batch}x{d0}", _product,
         (True, False, lr, D1, xb, 1.0, W1)),
        ("bias sums 1", f"{batch}x{d1}", _bias_sums, (D1, b1)),
    ]


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
    steps = _steps(sizes, args.batch, np.dtype(args.dtype), args.rows, rng)
    counts = sorted({1, numba.config.NUMBA_NUM_THREADS})
    times = {}
    for n_threads in counts:
        with thread_scope(n_threads, "numba"):
            times[n_threads] = [_best_microseconds(step, step_args, args.repeat, n_threads)
                                for _, _, step, step_args in steps]
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
