"""Out-of-core throughput: the same 784-200-10 epoch from memory and from a memmap.

    python scripts/bench_streaming.py                    # 60,000 MNIST-shaped rows
    python scripts/bench_streaming.py --rows 120000 --blocks 2000 20000 --cold

Writes the MNIST sample, tiled to ``--rows`` rows (float32, 3,136 bytes a
row), to a ``.npy`` file, then trains one network per configuration -- the
array in memory, and the file opened with ``np.load(mmap_mode="r")`` and
streamed with each ``--blocks`` size (``0``: the default, about 64 MiB) --
one epoch at a time, taking the configurations in turn each round so that
they share whatever else the machine is doing.  Round 0 (compilation, the
first read of the file) is not counted.  Prints the median seconds per epoch
and rows per second of each, side by side.

``--cold`` drops the file from the page cache before every streamed epoch
(``posix_fadvise(DONTNEED)``), so the blocks come from the disk rather than
from memory; without it the file is read from the page cache after round 0,
as happens whenever it fits in RAM.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fastnn import Network
from fastnn.datasets import load_sample


def drop_from_page_cache(path):
    """Ask the kernel to forget the file's cached pages (clean pages only: no root needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--blocks", type=int, nargs="+", default=[2_000, 10_000, 0],
                        help="block sizes in rows to stream with (0: fit's default)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4, help="epochs per configuration, "
                                                              "after round 0")
    parser.add_argument("--threads", type=int, default=None, help="Numba threads (default all)")
    parser.add_argument("--cold", action="store_true",
                        help="drop the file from the page cache before each streamed epoch")
    parser.add_argument("--dir", default=None, help="where to write the .npy file")
    args = parser.parse_args()

    X_sample, y_sample = load_sample().train
    reps = -(-args.rows // X_sample.shape[0])
    X = np.tile(X_sample, (reps, 1))[:args.rows]
    y = np.tile(y_sample, reps)[:args.rows]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "X.npy"
        np.save(path, X)
        configs = [("in memory", None)] + [
            (f"memmap, block_rows={b or 'default'}", b or None) for b in args.blocks]
        nets = [Network([784, 200, 10], dtype="float32", seed=0, n_threads=args.threads)
                for _ in configs]
        times = [[] for _ in configs]
        for round_ in range(args.rounds + 1):
            for (name, block_rows), net, spent in zip(configs, nets, times):
                if name == "in memory":
                    data = X
                else:
                    # opened afresh each epoch: the kernel keeps pages that are still
                    # mapped, so only an unmapped file can be dropped from the cache
                    if args.cold:
                        drop_from_page_cache(path)
                    data = np.load(path, mmap_mode="r")
                started = time.perf_counter()
                net.fit(data, y, epochs=1, batch_size=args.batch_size, lr=0.05, momentum=0.9,
                        block_rows=block_rows, warm_start=round_ > 0)
                if round_ > 0:
                    spent.append(time.perf_counter() - started)
                del data
        threads = nets[0].n_threads
    print(f"784-200-10 float32, batch {args.batch_size}, {args.rows} rows "
          f"({X.nbytes / 2**20:.0f} MiB), {threads} Numba thread(s), "
          f"{'cold (page cache dropped each epoch)' if args.cold else 'warm page cache'}, "
          f"median of {args.rounds} epochs (load average at the end: "
          f"{os.getloadavg()[0]:.2f})")
    print(f"| {'input':<32} | s / epoch | rows / s | vs in memory |")
    print(f"|{'-' * 34}|-----------|----------|--------------|")
    base = statistics.median(times[0])
    for (name, _), spent in zip(configs, times):
        median = statistics.median(spent)
        print(f"| {name:<32} | {median:9.3f} | {args.rows / median:8.0f} | "
              f"{median / base:11.2f}x |")


if __name__ == "__main__":
    main()
