"""Run by tests/test_distributed.py under ``mpiexec -n 2 python -m mpi4py``.

    mpi_worker.py DATA_DIR OUT_DIR
    mpi_worker.py resume DATA_DIR OUT_DIR CHECKPOINT
    mpi_worker.py sparse DATA_DIR OUT_DIR BACKEND

Reads ``X.npy``, ``y.npy`` and ``w.npy`` from DATA_DIR (memmapped: each rank
reads only its shard).  The first form trains the cases below with
``fastnn.distributed.fit_distributed`` and writes, per rank,
``OUT_DIR/rank{r}.npz`` with each case's parameters and loss history, and the
message every rank got for the bad-input and the disagreeing-settings cases.

The second form trains the RESUME case with checkpoints in CHECKPOINT,
resuming from it if it exists.  With ``FASTNN_TEST_KILL_AFTER=K`` in the
environment, rank 1 kills itself (SIGKILL, as a lost node vanishes) in its
K-th gradient all-reduce, and the job dies with it; without it, the fit runs
to the end, then the same fit runs again from scratch without a checkpoint,
and each rank writes ``OUT_DIR/resume{r}.npz`` with both results.

The third form reads ``X.npz`` (a scipy.sparse CSR matrix), ``y.npy`` and
``w.npy`` and trains the STRIDED and SPARSE_SPLIT cases on each rank's CSR rows
and on the same rows dense, with BACKEND (numba or numpy), writing
``OUT_DIR/sparse{r}.npz``.

The settings are imported by the test, which computes the single-process
equivalents.
"""

import os
import signal
import sys
from pathlib import Path

import numpy as np

#: the network of every case
SIZES = [6, 7, 3]
#: case "strided": rank r takes rows r::2, so global batch s is rows s·B..(s+1)·B-1
STRIDED = dict(epochs=4, batch_size=8, lr=0.05, momentum=0.9, nesterov=True,
               weight_decay=1e-3, shuffle=False, class_weight="balanced")
#: case "uneven": rank 0 takes rows :SPLIT, rank 1 the rest (its steps outnumber rank 0's)
UNEVEN = dict(epochs=3, batch_size=6, lr=0.01, optimizer="adamw", weight_decay=1e-2,
              clip_norm=0.5, shuffle=True)
SPLIT = 40
#: case "resume": contiguous shards of 50 and 51 rows, 10 of each held out for
#: validation, global batch 8 (4 rows a rank): 11 steps an epoch
RESUME = dict(epochs=5, batch_size=8, lr=0.05, momentum=0.9, shuffle=True,
              validation_split=0.2, class_weight="balanced", eval_every=3, patience=10,
              checkpoint_every=1)

#: case "sparse split": each shard's last rows held out (rank 0 stacks them, CSR when X
#: is), early stopping and mid-epoch validation
SPARSE_SPLIT = dict(epochs=4, batch_size=8, lr=0.05, momentum=0.9, shuffle=True,
                    validation_split=0.2, patience=10, eval_every=3)


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
    # a progress bar on rank 0 alone: the steps come in chunks on every rank
    net = network()
    fit_distributed(net, shard(X, comm, "strided"), shard(y, comm, "strided"), comm,
                    sample_weight=shard(w, comm, "strided"), progress=rank == 0, **STRIDED)
    out["progress_params"] = net.params

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


class DyingComm:
    """``comm``, except that this rank kills itself in its ``after``-th gradient all-reduce.

    The gradient is the only reduced buffer with one entry per parameter.
    """

    def __init__(self, comm, after, n_params):
        self._comm, self._after, self._n_params = comm, after, n_params
        self._gradients = 0

    def __getattr__(self, name):
        return getattr(self._comm, name)

    def Allreduce(self, sendbuf, recvbuf, op):
        if getattr(recvbuf, "size", None) == self._n_params:
            self._gradients += 1
            if self._gradients == self._after:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return self._comm.Allreduce(sendbuf, recvbuf, op=op)


def resume_main(data_dir, out_dir, checkpoint):
    from mpi4py import MPI

    from fastnn.distributed import fit_distributed, shard

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    X = np.load(Path(data_dir) / "X.npy", mmap_mode="r")
    y = np.load(Path(data_dir) / "y.npy", mmap_mode="r")
    X_local, y_local = shard(X, comm), shard(y, comm)
    kill_after = os.environ.get("FASTNN_TEST_KILL_AFTER")

    net = network()
    train_comm = comm
    if kill_after is not None and rank == 1:
        train_comm = DyingComm(comm, int(kill_after), net.n_params)
    trained = []  # the epochs this job trained itself

    def record(network, history):
        trained.append(history.epoch[-1])

    history = fit_distributed(net, X_local, y_local, train_comm, checkpoint=checkpoint,
                              resume=True, callbacks=[record], verbose=1 if rank == 0 else 0,
                              **RESUME)
    if kill_after is not None:
        raise SystemExit(f"rank {rank}: FASTNN_TEST_KILL_AFTER={kill_after} but the fit ended")

    uninterrupted = network()
    full = fit_distributed(uninterrupted, X_local, y_local, comm, **RESUME)
    np.savez(Path(out_dir) / f"resume{rank}.npz", resumed_params=net.params,
             full_params=uninterrupted.params, resumed_loss=history["loss"],
             full_loss=full["loss"], resumed_val_loss=history["val_loss"],
             full_val_loss=full["val_loss"], resumed_steps=history.iterations["step"],
             full_steps=full.iterations["step"], resumed_epochs=history.epoch,
             full_epochs=full.epoch, trained_after_resume=trained)


def sparse_main(data_dir, out_dir, backend):
    import scipy.sparse
    from mpi4py import MPI

    from fastnn.distributed import fit_distributed, shard

    comm = MPI.COMM_WORLD
    X = scipy.sparse.load_npz(Path(data_dir) / "X.npz")
    y = np.load(Path(data_dir) / "y.npy")
    w = np.load(Path(data_dir) / "w.npy")
    out = {}
    for form, inputs in (("sparse", X), ("dense", X.toarray())):
        for case, settings in (("strided", STRIDED), ("split", SPARSE_SPLIT)):
            net = network()
            net.backend = backend
            weights = shard(w, comm, "strided") if case == "strided" else None
            history = fit_distributed(net, shard(inputs, comm, "strided"),
                                      shard(y, comm, "strided"), comm, sample_weight=weights,
                                      **settings)
            out[f"{form}_{case}_params"] = net.params
            out[f"{form}_{case}_loss"] = np.array(history["loss"])
            if case == "split":
                out[f"{form}_{case}_val_loss"] = np.array(history.validations["val_loss"])
    np.savez(Path(out_dir) / f"sparse{comm.Get_rank()}.npz", **out)


if __name__ == "__main__":
    if sys.argv[1] == "resume":
        resume_main(*sys.argv[2:])
    elif sys.argv[1] == "sparse":
        sparse_main(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
