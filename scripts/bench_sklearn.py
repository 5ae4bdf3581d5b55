"""fastnn.sklearn against scikit-learn's MLP with the same parameters: fit time and accuracy.

Two problems: scikit-learn's digits (1,797 x 64, 10 classes, the estimators'
defaults) and a 100,000-row tabular problem (``make_classification``, 40
features, 5 classes; ``max_iter`` capped, see ``--tabular-max-iter``, so that
scikit-learn's side stays within minutes).  For each solver (adam, sgd, lbfgs)
the two libraries fit alternately, ``--rounds`` times, each fit in this one
process after a warm-up fit (fastnn's kernels compiled, both libraries'
imports done); the table gives the median fit time, the ratio of the medians,
the median of each round's own ratio (its two fits back to back) with its
range, and the test accuracy.  Both use every core (fastnn's threads,
scikit-learn's BLAS).

Every timed fit starts after ``--gap`` seconds of idle time.  Without it a
fit that follows the other library's inherits its threads: NumPy's OpenBLAS
keeps its worker threads spinning for about 0.1 s after each call (its
``OPENBLAS_THREAD_TIMEOUT``), so on two cores a digits fit of fastnn that
starts right after scikit-learn's took 0.26-0.30 s against 0.19-0.21 s after
0.3 s of rest or after another fastnn fit (Sapphire Rapids, Dec 2026).

Run ``python scripts/bench_sklearn.py`` (about 10 minutes on 2 cores).
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as ScikitLearnMLP
from sklearn.preprocessing import StandardScaler

from fastnn.sklearn import MLPClassifier as FastnnMLP


def problems(tabular_rows, tabular_max_iter):
    X, y = load_digits(return_X_y=True)
    yield "digits", X / 16.0, y, {}
    X, y = make_classification(n_samples=tabular_rows, n_features=40, n_informative=20,
                               n_classes=5, class_sep=1.0, random_state=0)
    yield (f"tabular {tabular_rows:,} x 40", StandardScaler().fit_transform(X), y,
           {"max_iter": tabular_max_iter})


def timed_fit(estimator, X_train, y_train, X_test, y_test, gap=0.0):
    time.sleep(gap)  # both libraries' idle threads have gone to sleep
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    seconds = time.perf_counter() - started
    return seconds, estimator.score(X_test, y_test), estimator.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tabular-rows", type=int, default=100_000)
    parser.add_argument("--tabular-max-iter", type=int, default=20)
    parser.add_argument("--solvers", default="adam,sgd,lbfgs")
    parser.add_argument("--gap", type=float, default=0.5,
                        help="idle seconds before each timed fit (default 0.5)")
    args = parser.parse_args()
    rows = []
    for name, X, y, extra in problems(args.tabular_rows, args.tabular_max_iter):
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        for solver in args.solvers.split(","):
            params = dict(solver=solver, random_state=0, **extra)
            # warm-up: compile fastnn's kernels for this path, load both libraries
            small = slice(0, 500)
            for cls in (FastnnMLP, ScikitLearnMLP):
                timed_fit(cls(**{**params, "max_iter": 2}), X_train[small], y_train[small],
                          X_test, y_test)
            times = {"fastnn": [], "scikit-learn": []}
            last = {}
            for round_ in range(args.rounds):
                order = [("fastnn", FastnnMLP), ("scikit-learn", ScikitLearnMLP)]
                for label, cls in order if round_ % 2 == 0 else order[::-1]:
                    seconds, accuracy, n_iter = timed_fit(cls(**params), X_train, y_train,
                                                          X_test, y_test, args.gap)
                    times[label].append(seconds)
                    last[label] = (accuracy, n_iter)
                    print(f"{name} {solver} {label}: {seconds:.2f} s, accuracy {accuracy:.4f}, "
                          f"{n_iter} iterations", flush=True)
            ours, theirs = (statistics.median(times[k]) for k in ("fastnn", "scikit-learn"))
            # each round's two fits ran back to back: their ratio sees the same state of
            # the host, which drifts between rounds (docs/design.md, rule 11)
            by_round = [t / o for t, o in zip(times["scikit-learn"], times["fastnn"])]
            rows.append((name, solver, theirs, ours, theirs / ours, by_round,
                         last["scikit-learn"], last["fastnn"]))
    print(f"\nmedian of {args.rounds} fits each, alternating\n")
    print("| problem | solver | scikit-learn s | fastnn s | speed-up | round by round "
          "| accuracy scikit-learn (iterations) | accuracy fastnn (iterations) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, solver, theirs, ours, ratio, by_round, (acc_s, it_s), (acc_f, it_f) in rows:
        spread = (f"{statistics.median(by_round):.1f}x ({min(by_round):.1f}-"
                  f"{max(by_round):.1f})")
        print(f"| {name} | {solver} | {theirs:.2f} | {ours:.2f} | {ratio:.1f}x | {spread} | "
              f"{acc_s:.4f} ({it_s}) | {acc_f:.4f} ({it_f}) |")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
