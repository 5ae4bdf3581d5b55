"""The one training loop: :meth:`fastnn.Network.fit`, streamed and distributed fits.

Inputs arrive here checked and converted (:mod:`fastnn.validation`); the
settings arrive as one :class:`FitPlan`.  A :class:`TrainingRun` allocates
every buffer once, then per epoch: draws the row order, runs the backend's
``train_epoch`` over it (in chunks when the validation set is to be evaluated
every few steps or a progress bar drawn; otherwise in one call), and back in
Python records the epoch, evaluates the validation set, steps the schedule,
checks early stopping and the callbacks, and writes a checkpoint
(docs/design.md, "The data flow").

Subclasses change only how an epoch visits the data:
:class:`fastnn.streaming.StreamRun` (blocks read from disk) and
:class:`fastnn.distributed.DistributedRun` (the gradients of MPI ranks summed
every step); each hook they override is marked as such below.

Faults: an epoch that leaves a non-finite loss or parameter raises
:class:`DivergenceError` with the parameters restored to the start of that
epoch; Ctrl-C restores the last completed epoch and ends the fit normally
with ``history.stop_reason == "interrupted"``.
"""

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from fastnn import codes, model_files
from fastnn.aligned import aligned_zeros_like
from fastnn.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from fastnn.evaluation import validation_metrics
from fastnn.history import History
from fastnn.optim import kernel_path, step_settings
from fastnn.progress import Progress
from fastnn.schedules import Schedule, as_schedule
from fastnn.validation import (
    check_callbacks,
    check_checkpoint,
    check_clip_norm,
    check_optimizer,
    check_training,
    check_validation_options,
    check_verbosity,
    is_sparse,
)


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch : int
        The epoch that diverged, counted over the network's life from 0 (as
        ``History.epoch`` counts); the parameters are restored to its start.
    epoch_in_fit : int
        The same epoch counted within the fit from 1, as the progress lines and
        the message count it.
    epochs : int
        The epochs the fit was to run.
    lr : float
        The learning rate of the diverging epoch.
    history : History
        What was recorded up to the last good epoch.
    """

    def __init__(self, epoch, epoch_in_fit, epochs, lr, history):
        super().__init__(
            f"training diverged in epoch {epoch_in_fit} of {epochs} (the loss or a parameter "
            f"became NaN or infinite) with learning rate {lr:.3g}; the parameters are restored "
            "to the start of that epoch. Try a smaller learning rate, gradient clipping "
            "(clip_norm), or a smaller weight_decay or momentum.")
        self.epoch = epoch
        self.epoch_in_fit = epoch_in_fit
        self.epochs = epochs
        self.lr = lr
        self.history = history


@dataclass(frozen=True)
class FitPlan:
    """The checked settings of one fit (see :meth:`fastnn.Network.fit`)."""

    epochs: int
    batch_size: int
    shuffle: bool
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    betas: tuple
    eps: float
    clip_norm: float
    schedule: Schedule
    patience: int
    eval_every: int
    callbacks: tuple
    checkpoint: object
    checkpoint_every: int
    resume: bool
    progress: bool
    verbose: int
    validation_split: float = None

    #: the arguments of ``fit`` and ``fit_distributed`` that make up a plan
    ARGUMENTS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay",
                 "shuffle", "optimizer", "betas", "eps", "lr_schedule", "clip_norm",
                 "patience", "eval_every", "callbacks", "checkpoint", "checkpoint_every",
                 "resume", "progress", "verbose", "validation_data", "validation_split")

    @classmethod
    def from_arguments(cls, arguments, **overrides):
        """:meth:`checked` on the :data:`ARGUMENTS` found in ``arguments`` (a fit's own
        ``locals()``), with ``overrides`` replacing some of them."""
        return cls.checked(**({name: arguments[name] for name in cls.ARGUMENTS} | overrides))

    @classmethod
    def checked(cls, *, epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle,
                optimizer, betas, eps, lr_schedule, clip_norm, patience, eval_every,
                callbacks, checkpoint, checkpoint_every, resume, progress, verbose,
                validation_data, validation_split):
        """Check every setting of a fit (the arguments of :meth:`fastnn.Network.fit`).

        ``validation_data`` is only looked at (is it a pair, is it there for
        ``patience``); its arrays are converted by the caller.

        Raises
        ------
        ValueError, TypeError
            The first bad setting, saying what was expected.
        """
        epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle = check_training(
            epochs, batch_size, lr, momentum, nesterov, weight_decay, shuffle)
        betas, eps = check_optimizer(optimizer, momentum, nesterov, betas, eps)
        validation_split, patience, eval_every = check_validation_options(
            validation_data, validation_split, patience, eval_every)
        checkpoint, checkpoint_every, resume = check_checkpoint(checkpoint, checkpoint_every,
                                                                resume)
        progress, verbose = check_verbosity(progress, verbose)
        return cls(epochs=epochs, batch_size=batch_size, shuffle=shuffle, optimizer=optimizer,
                   lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                   betas=betas, eps=eps, clip_norm=check_clip_norm(clip_norm),
                   schedule=as_schedule(lr_schedule), patience=patience,
                   eval_every=eval_every, callbacks=check_callbacks(callbacks),
                   checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
                   progress=progress, verbose=verbose, validation_split=validation_split)

    def fingerprint(self, n_rows, n_features, n_validation):
        """The settings a resumed fit must share with the one that wrote the checkpoint."""
        return {"rows": n_rows, "features": n_features, "validation_rows": n_validation,
                "batch_size": self.batch_size, "shuffle": self.shuffle,
                "optimizer": self.optimizer, "lr": self.lr, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay,
                "betas": list(self.betas), "eps": self.eps, "clip_norm": self.clip_norm,
                "schedule": repr(self.schedule), "patience": self.patience,
                "eval_every": self.eval_every}


class EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss; keep the best."""

    def __init__(self, patience, n_params, dtype):
        self.patience = patience
        self.best_loss = math.inf
        self.best_epoch = None
        self.wait = 0
        self.best_params = np.empty(n_params, dtype=dtype)

    def update(self, val_loss, epoch, params):
        """Returns True when training should stop."""
        if val_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.wait = val_loss, epoch, 0
            self.best_params[...] = params
            return False
        self.wait += 1
        return self.wait >= self.patience

    def state(self):
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "wait": self.wait}

    def restore(self, state, best_params):
        self.best_loss, self.best_epoch, self.wait = (state["best_loss"], state["best_epoch"],
                                                      state["wait"])
        if self.best_epoch is not None:
            self.best_params[...] = best_params


class TrainingRun:
    """One fit: the buffers, the loop and its bookkeeping.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0), or scipy.sparse.csr_array
    Y : ndarray, shape (n, d_L)
    weights : ndarray, shape (n,)
        Converted inputs (dense or CSR), dense targets and row weights (sample
        and class weights combined).
    validation : tuple (X_val, Y_val) or None
        Converted like ``X`` and ``Y``.
    plan : FitPlan
    warm_start : bool
        Keep the optimizer state of the previous fit (same optimizer).

    Subclasses change how an epoch visits the data (:meth:`_train_epoch`):
    :class:`fastnn.streaming.StreamRun` reads it in blocks,
    :class:`fastnn.distributed.DistributedRun` sums the gradients of MPI ranks.
    """

    #: Ctrl-C ends the fit after the last completed epoch (an MPI job cannot: the
    #: other ranks would wait forever in their next collective)
    handles_interrupt = True

    def __init__(self, network, X, Y, weights, validation, plan, warm_start):
        self.net, self.X, self.Y, self.weights = network, X, Y, weights
        self.validation = validation
        self.plan = plan
        self.kernels = network.kernels
        self.architecture = network.architecture
        self.state = network.training_state
        self.batch, self.n_batches = self._batching(X.shape[0])
        self.moments, self.step = self.state.optimizer_buffers(plan.optimizer, warm_start)
        # every buffer allocated once; the epochs allocate nothing in compiled code
        self.grad = aligned_zeros_like(network.params)
        self.workspace = self.architecture.workspace(self.batch, gather=True,
                                                     sparse=self._sparse_inputs())
        self.batch_stats = np.empty((self.n_batches, 3), dtype=np.float64)
        self.history = History()
        self.first_epoch = 0
        self.early = (EarlyStopping(plan.patience, network.params.size, network.dtype)
                      if plan.patience else None)
        self.fingerprint = self._fingerprint()
        if plan.resume and self._checkpoint_exists():
            self._resume()
        self.steps_done = self.first_epoch * self.n_batches

    # ------------------------------------------------------------ hooks of the subclasses

    @property
    def shuffle_rng(self):
        """The generator each epoch's row order is drawn from (distributed: the rank's own)."""
        return self.state.rng

    @property
    def has_validation(self):
        """Whether validation metrics are recorded (distributed: rank 0 holds the data)."""
        return self.validation is not None

    def _sparse_inputs(self):
        """Whether the rows are CSR, so no dense gather buffer is allocated (streamed: the
        reader's blocks)."""
        return is_sparse(self.X)

    def _batching(self, n_rows):
        """``(rows per mini-batch, mini-batches per epoch)`` (distributed: the rank's share)."""
        batch = min(self.plan.batch_size, n_rows)
        return batch, -(-n_rows // batch)

    def _fingerprint(self):
        n_val = 0 if self.validation is None else self.validation[0].shape[0]
        return self.plan.fingerprint(self.X.shape[0], self.X.shape[1], n_val)

    def _params_finite(self):
        return bool(np.isfinite(self.net.params).all())

    def _evaluate(self):
        """Validation metrics of the current parameters."""
        return validation_metrics(self.net, *self.validation)

    def _callbacks_stop(self):
        """Run the callbacks; whether any asked to stop."""
        stop = False
        for callback in self.plan.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            result = hook(self.net, self.history) if hook is not None else callback(
                self.net, self.history)
            stop = stop or bool(result)
        return stop

    def _progress(self):
        return Progress(self.plan.progress, self.plan.verbose, self.n_batches, self.plan.epochs)

    def _settings(self, lr):
        """The optimizer step's settings with learning rate ``lr``."""
        plan = self.plan
        return step_settings(self.net.dtype, plan.optimizer, lr, plan.momentum, plan.nesterov,
                             plan.weight_decay, plan.betas, plan.eps, plan.clip_norm)

    def _validation_is_sparse(self):
        """Whether the validation inputs are CSR (streamed: rows of a sparse array)."""
        X_val = self.validation[0]
        return is_sparse(getattr(X_val, "array", X_val))

    def _evaluation_paths(self, training_covers_it):
        """The forward pass the validation data needs, unless the training path compiles it
        (a dense plan's does, but per-sample SGD's and the CSR paths' do not)."""
        if not self.has_validation:
            return []
        if self._validation_is_sparse():
            return ["sparse-forward"]
        return [] if training_covers_it else ["forward"]

    def _kernel_paths(self, settings):
        """The compiled paths of the kernels this fit runs (distributed: its own)."""
        if self._sparse_inputs():
            # the CSR paths compile no forward pass of their own for the validation data
            return ["sparse-" + kernel_path(settings, self.batch)] + self._evaluation_paths(False)
        paths = self.kernels.training_paths(settings, self.batch, self.net.params.size)
        return paths + self._evaluation_paths(self.batch != 1)

    def _prepare_kernels(self, settings):
        """Compile (or load from the cache) every kernel the fit runs, before the first
        epoch: compile time is never counted as training time (an epoch's time, the
        progress bar's rate and estimate).  Returns the seconds spent compiling."""
        return self.kernels.prepare(self.net.dtype, self._kernel_paths(settings))

    # ------------------------------------------------------------ checkpoints

    def _checkpoint_exists(self):
        return os.path.exists(self.plan.checkpoint)

    def _read_checkpoint(self):
        """``(stored, checkpoint)`` as :func:`fastnn.checkpoint.read_checkpoint` returns them."""
        return read_checkpoint(self.plan.checkpoint)

    def _resume(self):
        stored, saved = self._read_checkpoint()
        written = saved.fit["fingerprint"]
        keys = list(self.fingerprint) + [key for key in written if key not in self.fingerprint]
        mismatch = [f"{key}: {written.get(key)!r} in the checkpoint, "
                    f"{self.fingerprint.get(key)!r} now" for key in keys
                    if written.get(key) != self.fingerprint.get(key)]
        if model_files.architecture_fields(stored) != self.architecture.fields():
            mismatch.append("the network's architecture or dtype")
        if mismatch:
            raise ValueError(f"cannot resume from {self.plan.checkpoint}: it was written by a "
                             "different fit (" + "; ".join(mismatch) + ")")
        self.net.params[...] = stored["params"]
        self.state.rng_state = stored["rng_state"]
        self.state.epochs_done = saved.fit["network_epochs"]
        self.moments[...] = saved.state
        self.step[...] = saved.step
        self.history = History.from_dict(saved.fit["history"])
        self.plan.schedule.restore(saved.fit["schedule"])
        if self.early is not None:
            self.early.restore(saved.fit["early_stopping"], saved.best_params)
        self.first_epoch = saved.fit["epochs_done"]
        self._resume_shuffle(saved.fit.get("shuffle"))

    def _resume_shuffle(self, states):
        """Restore shuffle generators beside the network's (distributed: one a rank)."""

    def _progress_record(self, epochs_done):
        """The fit's progress as a checkpoint stores it (JSON-ready)."""
        early = self.early
        return {"fingerprint": self.fingerprint, "epochs_done": epochs_done,
                "network_epochs": self.state.epochs_done, "history": self.history.to_dict(),
                "schedule": self.plan.schedule.state(),
                "early_stopping": None if early is None else early.state()}

    def _write_checkpoint(self, epochs_done):
        early = self.early
        best = (early.best_params if early is not None and early.best_epoch is not None
                else np.empty(0, dtype=self.net.dtype))
        write_checkpoint(self.plan.checkpoint, self.net,
                         Checkpoint(self.plan.optimizer, self.moments, self.step, best,
                                    self._progress_record(epochs_done)))

    # ------------------------------------------------------------ one epoch

    def _chunk_batches(self):
        """Mini-batches per call of train_epoch: run whole epochs unless someone watches."""
        if self.plan.eval_every is not None:
            return self.plan.eval_every
        if self.plan.progress:
            return max(1, -(-self.n_batches // 50))
        return self.n_batches

    def _chunk_end(self, first, stop):
        """Where the chunk starting at mini-batch ``first`` ends: where the step count
        reaches a multiple of the chunk length (of eval_every), or at ``stop``."""
        chunk = self._chunk_batches()
        return min(stop, first + chunk - self.steps_done % chunk)

    def _train_epoch(self, settings, progress):
        """Run one epoch (overridden by the subclasses); fills batch_stats."""
        n = self.X.shape[0]
        order = self.shuffle_rng.permutation(n) if self.plan.shuffle else np.arange(n)
        self._train_batches(self.X, self.Y, self.weights, order, 0, self.n_batches, settings,
                            progress)

    def _train_batches(self, X, Y, weights, order, first, stop, settings, progress):
        """Run the epoch's mini-batches ``first..stop-1`` over the rows ``X[order]``.

        ``order`` starts at batch ``first``; out-of-core training
        (:mod:`fastnn.streaming`) calls this once per block of rows.
        """
        net, arch, ws = self.net, self.architecture, self.workspace
        offset = first
        while first < stop:
            last = self._chunk_end(first, stop)
            self.kernels.train_epoch(
                net.params, self.grad, self.moments, arch.table, arch.hidden, arch.output_code,
                X, Y, weights, order[(first - offset) * self.batch:(last - offset) * self.batch],
                self.batch, settings, self.step, ws.x, ws.y, ws.w, ws.acts, ws.deltas,
                self.batch_stats[first:last])
            self._batches_done(first, last, progress)
            first = last

    def _batches_done(self, first, last, progress):
        """Book mini-batches ``first..last-1`` (their batch_stats are filled): the step
        count, the per-batch records and mid-epoch validations, the progress bar."""
        stats = self.batch_stats[first:last]
        self.steps_done += last - first
        if self.plan.eval_every is not None:
            iterations = self.history.iterations
            iterations["step"].extend(range(self.steps_done - (last - first) + 1,
                                            self.steps_done + 1))
            iterations["loss"].extend(stats[:, 0].tolist())
            iterations["error"].extend(stats[:, 1].tolist())
            if self.has_validation and self.steps_done % self.plan.eval_every == 0:
                self.history.record_validation(self.steps_done, **self._evaluate())
        progress.advance(last - first, float(stats[-1, 0]))

    def _epoch_record(self, lr, elapsed):
        stats = self.batch_stats
        total_weight = stats[:, 2].sum()
        record = {"loss": float(stats[:, 2] @ stats[:, 0] / total_weight)}
        if self.net.output not in codes.REGRESSION_OUTPUTS:
            record["error"] = float(stats[:, 2] @ stats[:, 1] / total_weight)
        if self.has_validation:
            record.update(self._evaluate())
        record["lr"] = lr
        record["time"] = elapsed
        return record

    def _check_finite(self, record, epoch, epoch_in_fit, snapshot, lr):
        # an infinite validation loss counts too: the training loss of the same
        # epoch can still be finite (if huge) when the parameters have blown up
        losses = (record["loss"], record.get("val_loss", 0.0))
        if self._params_finite() and all(math.isfinite(v) for v in losses):
            return
        snapshot.restore()
        raise DivergenceError(epoch, epoch_in_fit + 1, self.plan.epochs, lr, self.history)

    # ------------------------------------------------------------ the loop

    def run(self):
        """Train epoch after epoch; returns the :class:`History`."""
        net, plan, history = self.net, self.plan, self.history
        # the base rate: which kernels run does not depend on the schedule
        history.compile_time = self._prepare_kernels(self._settings(plan.lr))
        progress = self._progress()
        try:
            for epoch_in_fit in range(self.first_epoch, plan.epochs):
                epoch = self.state.epochs_done
                lr = plan.schedule.lr_at(epoch_in_fit, plan.lr)
                settings = self._settings(lr)
                snapshot = self.state.snapshot(self.shuffle_rng)
                steps_before = self.steps_done
                completed = False
                try:
                    progress.start_epoch(epoch_in_fit)
                    started = time.perf_counter()
                    self._train_epoch(settings, progress)
                    record = self._epoch_record(lr, time.perf_counter() - started)
                    self._check_finite(record, epoch, epoch_in_fit, snapshot, lr)
                    history.record(epoch, **record)
                    self.state.epochs_done += 1
                    completed = True
                    progress.end_epoch(epoch_in_fit, record)
                    stop = self._after_epoch(epoch, epoch_in_fit, record)
                except KeyboardInterrupt:
                    if not self.handles_interrupt:
                        raise
                    if not completed:
                        # back to the end of the last completed epoch
                        snapshot.restore()
                        self.steps_done = steps_before
                        self._drop_partial_epoch(steps_before)
                    history.stop_reason = "interrupted"
                    break
                if stop:
                    history.stop_reason = stop
                    break
        finally:
            progress.close()
        if self.early is not None and self.early.best_epoch is not None:
            net.params[...] = self.early.best_params
            history.best_epoch = self.early.best_epoch
        return history

    def _after_epoch(self, epoch, epoch_in_fit, record):
        """Schedule, early stopping, callbacks, checkpoint; returns a stop reason or None."""
        plan = self.plan
        plan.schedule.observe(record.get("val_loss", record["loss"]))
        stop = None
        if self.early is not None and self.early.update(record["val_loss"], epoch,
                                                        self.net.params):
            stop = "early_stopping"
        if self._callbacks_stop():
            stop = stop or "callback"
        if plan.checkpoint is not None and ((epoch_in_fit + 1) % plan.checkpoint_every == 0
                                            or stop or epoch_in_fit + 1 == plan.epochs):
            self._write_checkpoint(epoch_in_fit + 1)
        return stop

    def _drop_partial_epoch(self, steps_before):
        """Forget what an interrupted epoch recorded mid-way."""
        iterations = self.history.iterations
        keep = sum(1 for step in iterations["step"] if step <= steps_before)
        for values in iterations.values():
            del values[keep:]
        validations = self.history.validations
        keep = sum(1 for step in validations["step"] if step <= steps_before)
        for values in validations.values():
            del values[keep:]


def run_fit(network, X, Y, weights, validation, plan, warm_start):
    """Train ``network`` in place under its thread scope (the arguments as for
    :class:`TrainingRun`); see :meth:`fastnn.Network.fit`.

    Returns
    -------
    History
    """
    with network.thread_scope():
        return TrainingRun(network, X, Y, weights, validation, plan, warm_start).run()
