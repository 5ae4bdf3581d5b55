"""Run by tests/test_distributed.py under ``mpiexec -n 2 python -m mpi4py``.

    mpi_worker.py DATA_DIR OUT_DIR

Reads ``X.npy``, ``y.npy`` and ``w.npy`` from DATA_DIR (memmapped: each rank
reads only its shard), trains the cases below with
``fastnn.distributed.fit_distributed`` and writes, per rank,
``OUT_DIR/rank{r}.npz`` with each case's parameters and loss history, and the
message every rank got for the bad-input and the disagreeing-settings cases.
The settings are imported by the test, which computes the single-process
equivalents.
"""

import sys
from pathlib import Path

import numpy as np

#: the network of every case
SIZES = [6, 7, 3]
#: case "strided": rank r takes rows r::2, so global batch s is rows s·B..(s+1)·B-1
STRIDED = dict(epochs=4, batch_size=8, lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3, shuffle=False)
#: case "uneven": rank 0 takes rows :SPLIT, rank 1 the rest (its steps outnumber rank 0's)
UNEVEN = dict(epochs=3, batch_size=6, lr=0.01, optimizer="adamw", weight_decay=1e-2,
              clip_norm=0.5, shuffle=True)
SPLIT = 40


def network():
    from fastnn import Network
    return Network(SIZES, activation="tanh", dtype="float64", seed=3, n_threads=1)


def main(data_dir, out_dir):
    from mpi4py import MPI

    from fastnn.distributed import fit_distributed, shard

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    X = np.load(Path(data_dir) / "X.npy", mmap_mode="r")
    y = np.load(Path(data_dir) / "y.npy", mmap_mode="r")
    w = np.load(Path(data_dir) / "w.npy", mmap_mode="r")
    out = {}

    net = network()
    history = fit_distributed(net, shard(X, comm, "strided"), shard(y, comm, "strided"), comm,
                              sample_weight=shard(w, comm, "strided"), **STRIDED)
    out["strided_params"], out["strided_loss"] = net.params, np.array(history["loss"])

    rows = slice(0, SPLIT) if rank == 0 else slice(SPLIT, None)
    net = network()
    history = fit_distributed(net, X[rows], y[rows], comm, **UNEVEN)
    out["uneven_params"], out["uneven_loss"] = net.params, np.array(history["loss"])

    bad = np.array(X[rows])
    if rank == 1:
        bad[5, 2] = np.nan
    try:
        fit_distributed(network(), bad, y[rows], comm, epochs=1, batch_size=4)
        out["bad_message"] = np.array("no error")
    except ValueError as error:
        out["bad_message"] = np.array(str(error))
    try:
        fit_distributed(network(), X[rows], y[rows], comm, epochs=1, batch_size=4,
                        lr=0.1 if rank == 0 else 0.2)
        out["disagree_message"] = np.array("no error")
    except ValueError as error:
        out["disagree_message"] = np.array(str(error))
    np.savez(Path(out_dir) / f"rank{rank}.npz", **out)


if __name__ == "__main__":
    main(*sys.argv[1:])
