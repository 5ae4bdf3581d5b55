"""Build fastnn/data/mnist_sample.npz, the MNIST sample embedded in fastnn.

Usage (from the repository root)::

    python scripts/make_mnist_sample.py            # fetches MNIST into data_home() if needed
    python scripts/make_mnist_sample.py --source /path/to/mnist.npz --seed 0

What it makes: a stratified random subset of the real MNIST digits,

- train: 10,000 images, 1,000 per class, drawn from the 60,000 official
  training images (the 50k train + 10k validation splits of the classic
  pickle, which together are the official training set);
- test: 2,000 images, 200 per class, drawn from the 10,000 official test
  images;

each split shuffled (so a prefix is still roughly balanced and training with
``shuffle=False`` does not see one class at a time), stored with
``np.savez_compressed`` as ``X_train`` uint8 (10000, 784), ``y_train`` uint8
(10000,), ``X_test`` uint8 (2000, 784), ``y_test`` uint8 (2000,).

Pixels: the classic pickle stores each original MNIST byte ``k`` as
``k / 256`` in float32, which is exact, so ``x * 256`` recovers the original
bytes bit for bit; the script checks that and stores them.
``fastnn.datasets.load_sample`` then returns ``k / 255``, the same scaling as
``load_idx_dir`` on the original IDX files. (``round(x * 255)`` would
re-quantise instead: every byte from 128 up would drop by one and 128/129
would merge.)

The selection depends only on ``--seed`` and the data, so re-running gives
the same arrays (the zip container's timestamps differ).

MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0;
see fastnn/data/LICENSE-MNIST.txt.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from fastnn.datasets import fetch_mnist, load_mnist

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "fastnn" / "data" / "mnist_sample.npz"
N_CLASSES = 10


def to_bytes(X: np.ndarray) -> np.ndarray:
    """float32 pixels k/256 -> the original uint8 bytes k, exactly."""
    k = X * np.float32(256.0)
    if not np.array_equal(k, np.round(k)) or k.min() < 0 or k.max() > 255:
        raise SystemExit("pixels are not exact multiples of 1/256 in [0, 255/256]; "
                         "this is not the classic MNIST pickle")
    return k.astype(np.uint8)


def stratified(rng: np.random.Generator, y: np.ndarray, per_class: int) -> np.ndarray:
    """Row indices with ``per_class`` rows of each class, in a random order."""
    picks = []
    for c in range(N_CLASSES):
        rows = np.flatnonzero(y == c)
        if rows.size < per_class:
            raise SystemExit(f"class {c} has only {rows.size} rows; need {per_class}")
        picks.append(rng.choice(rows, size=per_class, replace=False))
    idx = np.concatenate(picks)
    rng.shuffle(idx)
    return idx


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=None,
                    help="mnist.npz written by fastnn.datasets.fetch_mnist (default: fetch it)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"output file (default {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--train-per-class", type=int, default=1000)
    ap.add_argument("--test-per-class", type=int, default=200)
    args = ap.parse_args(argv)

    source = args.source if args.source is not None else fetch_mnist()
    ds = load_mnist(source)
    # The official 60k training set = the pickle's train + validation.
    X_pool = np.concatenate([ds.train[0], ds.validation[0]])
    y_pool = np.concatenate([ds.train[1], ds.validation[1]])
    X_test, y_test = ds.test

    rng = np.random.default_rng(args.seed)
    tr = stratified(rng, y_pool, args.train_per_class)
    te = stratified(rng, y_test, args.test_per_class)

    arrays = {
        "X_train": to_bytes(X_pool[tr]),
        "y_train": y_pool[tr].astype(np.uint8),
        "X_test": to_bytes(X_test[te]),
        "y_test": y_test[te].astype(np.uint8),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)

    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size:,} bytes = {size / 2**20:.2f} MiB)")
    for k, a in arrays.items():
        print(f"  {k}: {a.dtype} {a.shape}")
    print("  train per class:", np.bincount(arrays["y_train"], minlength=N_CLASSES).tolist())
    print("  test per class: ", np.bincount(arrays["y_test"], minlength=N_CLASSES).tolist())
    return 0


if __name__ == "__main__":
    sys.exit(main())
