"""Data-parallel training of 784-200-10 on MNIST over MPI.

    mpiexec -n 2 python -m mpi4py scripts/train_mpi.py               # the embedded sample
    mpiexec -n 2 python -m mpi4py scripts/train_mpi.py --data mnist  # the full set (fetched once)

(``python -m mpi4py`` makes an uncaught error on one rank abort the job
instead of leaving the other ranks waiting; plain ``python`` works too.)

Every rank loads the dataset, keeps its own shard of the training rows
(``fastnn.distributed.shard``) and trains with ``fit_distributed``; rank 0
prints the per-epoch loss, the test error and the time.  ``--batch-size`` is
the global batch size; ``--checkpoint PATH`` makes the job restartable.
``--threads`` defaults to the cores this rank may use divided by the ranks
sharing them (see ``fastnn.distributed.threads_per_rank``).
"""

import argparse
import os
import time

import numpy as np
from mpi4py import MPI

from fastnn import Network
from fastnn.datasets import load_dataset
from fastnn.distributed import fit_distributed, shard, threads_per_rank


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="sample",
                        help="'sample' (embedded, default), 'mnist' (cached full set), or a "
                             ".npz / IDX directory as fastnn.datasets.load_dataset takes")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100, help="global batch size")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--hidden", type=int, default=200)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None,
                        help="Numba threads per rank (default: cores per rank)")
    parser.add_argument("--shard", default="contiguous", choices=["contiguous", "strided"])
    parser.add_argument("--no-shuffle", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="write a checkpoint every epoch and resume from it if it exists "
                             "(a job that lost a rank continues where it left off)")
    args = parser.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    threads = args.threads if args.threads is not None else threads_per_rank(comm)

    dataset = load_dataset(args.data)
    X, y = dataset.train
    X_local, y_local = shard(X, comm, args.shard), shard(y, comm, args.shard)
    net = Network([X.shape[1], args.hidden, int(y.max()) + 1], activation="relu",
                  output="softmax", dtype=args.dtype, seed=args.seed, n_threads=threads)
    if rank == 0:
        print(f"{dataset.name}: {X.shape[0]} training rows on {size} rank(s) "
              f"({X_local.shape[0]} on rank 0), {threads} thread(s) per rank, "
              f"affinity of rank 0: {sorted(os.sched_getaffinity(0))}, "
              f"global batch {args.batch_size}", flush=True)
    comm.Barrier()
    started = time.perf_counter()
    history = fit_distributed(net, X_local, y_local, comm, epochs=args.epochs,
                              batch_size=args.batch_size, lr=args.lr, momentum=args.momentum,
                              shuffle=not args.no_shuffle, checkpoint=args.checkpoint,
                              resume=args.checkpoint is not None,
                              verbose=1 if rank == 0 else 0)
    total = time.perf_counter() - started
    if rank == 0:
        times = np.array(history["time"])
        X_test, y_test = dataset.test
        error = 1.0 - net.score(X_test, y_test)
        print(f"test error {error:.2%}; epoch time median {np.median(times):.3f} s "
              f"(epochs 2+: {np.median(times[1:]) if times.size > 1 else times[0]:.3f} s); "
              f"total {total:.2f} s", flush=True)


if __name__ == "__main__":
    main()
