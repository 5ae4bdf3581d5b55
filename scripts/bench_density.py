"""At which density does a CSR X train faster than the same X dense?  A sweep, side by side.

For each density, the same seeded rows (values uniform in (0, 1] at random
columns, the rest zero) train one epoch dense and one epoch as CSR, the two
alternating round by round in this one process, and the table gives the
medians of ``history["time"]`` (the compiled epoch alone: the input checks and
the conversion are outside it) and their ratio.  It also times what converting
the dense array to CSR costs (``scipy.sparse.csr_array(X)``), against the dense
epoch: what a fit would pay to switch by itself.

The network is MNIST's 784-200-10 relu/softmax in float32 with plain SGD
(lr 0.1) at batch 100 by default; ``--batch-size 1`` gives per-sample SGD.

Reproduce (2 cores, about 3 minutes)::

    python scripts/bench_density.py --rounds 3

Smoke test::

    python scripts/bench_density.py --quick
"""

import argparse
import platform
import statistics
import time

import numpy as np


def sparse_rows(n_rows, n_features, density, seed):
    """``X`` float32 (n_rows, n_features), a fraction ``density`` of it non-zero, and labels
    ``y`` (n_rows,) in 0..9 from a seeded linear rule (learnable)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n_rows, n_features), dtype=np.float32)
    mask = rng.random((n_rows, n_features)) < density
    X[mask] = rng.random(int(mask.sum()), dtype=np.float32) + np.float32(1e-3)
    y = (X @ rng.standard_normal((n_features, 10))).argmax(axis=1)
    return X, y


def one_epoch(X, y, batch_size, n_threads, seed=0):
    """Seconds of one compiled epoch (``history["time"]``) of a fresh 784-200-10 network."""
    from fastnn import Network

    net = Network([X.shape[1], 200, 10], dtype="float32", seed=seed, n_threads=n_threads)
    history = net.fit(X, y, epochs=1, batch_size=batch_size, lr=0.1)
    return history["time"][0]


def sweep(densities, rows, batch_size, rounds, n_threads):
    """``{density: (dense seconds, sparse seconds, conversion seconds)}``, medians."""
    import scipy.sparse

    results = {}
    for density in densities:
        X, y = sparse_rows(rows, 784, density, seed=1)
        Xs = scipy.sparse.csr_array(X)
        one_epoch(X[:200], y[:200], batch_size, n_threads)  # compile or load, both paths
        one_epoch(Xs[:200], y[:200], batch_size, n_threads)
        dense, sparse, convert = [], [], []
        for _ in range(rounds):
            dense.append(one_epoch(X, y, batch_size, n_threads))
            sparse.append(one_epoch(Xs, y, batch_size, n_threads))
            started = time.perf_counter()
            scipy.sparse.csr_array(X)
            convert.append(time.perf_counter() - started)
        results[density] = tuple(statistics.median(v) for v in (dense, sparse, convert))
    return results


def table(results, rows, batch_size, n_threads):
    lines = [f"{rows:,} rows x 784, 784-200-10 relu/softmax, float32, plain SGD, batch "
             f"{batch_size}, {n_threads} thread(s), {platform.processor() or platform.machine()}",
             "", "| density | dense epoch | CSR epoch | CSR / dense "
             "| CSR conversion / dense epoch |",
             "|---:|---:|---:|---:|---:|"]
    for density, (dense, sparse, convert) in results.items():
        lines.append(f"| {density:.1%} | {dense:.3f} s | {sparse:.3f} s | {sparse / dense:.2f} | "
                     f"{convert / dense:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", default="0.005,0.01,0.02,0.05,0.1,0.2,0.3,0.5")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="Numba threads (default: all)")
    parser.add_argument("--quick", action="store_true", help="a smoke test: 1,000 rows, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rounds, args.densities = 1000, 1, "0.05,0.2"
    from fastnn.threads import available_threads

    n_threads = args.threads or available_threads()
    densities = [float(d) for d in args.densities.split(",")]
    print(table(sweep(densities, args.rows, args.batch_size, args.rounds, n_threads), args.rows,
                args.batch_size, n_threads))


if __name__ == "__main__":
    main()
