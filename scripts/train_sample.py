"""Train a 784-200-10 relu/softmax network on the MNIST sample shipped with fastnn.

Usage: python scripts/train_sample.py [--epochs 5] [--backend numba]
"""

import argparse
import time

from fastnn import Network
from fastnn.datasets import load_sample


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backend", choices=["numba", "numpy"], default="numba")
    args = parser.parse_args()

    data = load_sample()
    X, y = data.train
    X_test, y_test = data.test
    net = Network([784, 200, 10], activation="relu", output="softmax", seed=0,
                  backend=args.backend)
    started = time.perf_counter()
    history = net.fit(X, y, epochs=args.epochs, batch_size=100, lr=0.1, momentum=0.9)
    total = time.perf_counter() - started
    for epoch, loss, error, seconds in zip(history.epoch, history["loss"], history["error"],
                                           history["time"]):
        print(f"epoch {epoch + 1:2d}  loss {loss:.4f}  train error {error:6.2%}  {seconds:.2f} s")
    print(f"test error {1 - net.score(X_test, y_test):.2%} on {len(y_test)} digits; "
          f"{total:.1f} s in fit (the first epoch includes compiling the kernels)")


if __name__ == "__main__":
    main()
