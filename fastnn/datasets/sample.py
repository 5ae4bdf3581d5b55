"""The MNIST sample shipped inside the package: 10,000 training and 2,000 test digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastnn.datasets.arrays import as_labels, check_pair, ubyte_images_to_float
from fastnn.datasets.container import Dataset

# Where the embedded sample lives. The directory is deliberately not a Python
# package: it is shipped as package data of ``fastnn``.
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist_sample.npz"
#: digits 0..9
N_CLASSES = 10


def load_sample() -> Dataset:
    """Load the MNIST sample embedded in the package (no network needed).

    The sample is a stratified, seeded subset of the real MNIST digits made
    by ``scripts/make_mnist_sample.py``: 1,000 training images per class
    drawn from the 60,000 official training images, and 200 test images per
    class drawn from the 10,000 official test images. It is stored as
    ``uint8`` (about 2 MB) and converted here.

    Returns
    -------
    Dataset
        ``name="mnist-sample"``, with

        - ``train``: ``X`` float32 ``(10000, 784)`` in ``[0, 1]``,
          C-contiguous; ``y`` int64 ``(10000,)`` in ``0..9``.
        - ``test``: ``X`` float32 ``(2000, 784)``; ``y`` int64 ``(2000,)``.
        - ``validation``: ``None``.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its data file.

    Notes
    -----
    Each call returns fresh arrays, so callers may modify them in place.
    MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA
    3.0; see ``fastnn/data/LICENSE-MNIST.txt``.
    """
    if not SAMPLE_PATH.is_file():
        raise FileNotFoundError(
            f"the embedded MNIST sample {SAMPLE_PATH} is missing; the fastnn "
            "installation is incomplete (package data fastnn/data/*.npz was not installed)"
        )
    with np.load(SAMPLE_PATH, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("X_train", "y_train", "X_test", "y_test")}
    splits = {}
    for split in ("train", "test"):
        X = ubyte_images_to_float(arrays[f"X_{split}"], f"X_{split}")
        y = as_labels(arrays[f"y_{split}"], f"y_{split}", n_classes=N_CLASSES)
        check_pair(X, y, split)
        splits[split] = (X, y)
    return Dataset(train=splits["train"], test=splits["test"], name="mnist-sample")
