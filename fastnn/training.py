"""The training loop behind :meth:`fastnn.Network.fit`.

Inputs arrive here checked and converted (:mod:`fastnn.validation`).  The loop
allocates every buffer once, then per epoch: draws the row order, runs the
backend's ``train_epoch`` over it (in chunks when the validation set is to be
evaluated every few steps or a progress bar drawn; otherwise in one call),
and back in Python records the epoch, evaluates the validation set, steps the
schedule, checks early stopping and the callbacks, and writes a checkpoint.

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

from fastnn import model_files
from fastnn.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from fastnn.evaluation import validation_metrics
from fastnn.history import History
from fastnn.optim import step_settings
from fastnn.progress import Progress
from fastnn.schedules import Schedule


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch : int
        The epoch (counted over the network's life) that diverged; the
        parameters are restored to its start.
    history : History
        What was recorded up to the last good epoch.
    """

    def __init__(self, message, epoch, history):
        super().__init__(message)
        self.epoch = epoch
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

    Subclasses change how an epoch visits the data (:meth:`_train_epoch`):
    :class:`fastnn.streaming.StreamRun` reads it in blocks,
    :class:`fastnn.distributed.DistributedRun` sums the gradients of MPI ranks.
    """

    def __init__(self, network, X, Y, weights, validation, plan, warm_start):
        self.net, self.X, self.Y, self.weights = network, X, Y, weights
        self.validation = validation
        self.plan = plan
        self.kernels = network.kernels
        self.architecture = network.architecture
        self.state = network.training_state
        n = X.shape[0]
        self.batch = min(plan.batch_size, n)
        self.n_batches = -(-n // self.batch)
        self.moments, self.step = self.state.optimizer_buffers(plan.optimizer, warm_start)
        # every buffer allocated once; the epochs allocate nothing in compiled code
        self.grad = np.empty_like(network.params)
        self.workspace = self.architecture.workspace(self.batch, gather=True)
        self.batch_stats = np.empty((self.n_batches, 3), dtype=np.float64)
        self.history = History()
        self.first_epoch = 0
        self.early = (EarlyStopping(plan.patience, network.params.size, network.dtype)
                      if plan.patience else None)
        n_val = 0 if validation is None else validation[0].shape[0]
        self.fingerprint = plan.fingerprint(n, X.shape[1], n_val)
        if plan.resume and os.path.exists(plan.checkpoint):
            self._resume()
        self.steps_done = self.first_epoch * self.n_batches

    # ------------------------------------------------------------ checkpoints

    def _resume(self):
        stored, saved = read_checkpoint(self.plan.checkpoint)
        net = self.net
        mismatch = [f"{key}: {saved.fit['fingerprint'].get(key)!r} in the checkpoint, "
                    f"{value!r} now" for key, value in self.fingerprint.items()
                    if saved.fit["fingerprint"].get(key) != value]
        if model_files.architecture_fields(stored) != self.architecture.fields():
            mismatch.append("the network's architecture or dtype")
        if mismatch:
            raise ValueError(f"cannot resume from {self.plan.checkpoint}: it was written by a "
                             "different fit (" + "; ".join(mismatch) + ")")
        net.params[...] = stored["params"]
        self.state.rng_state = stored["rng_state"]
        self.state.epochs_done = saved.fit["network_epochs"]
        self.moments[...] = saved.state
        self.step[...] = saved.step
        self.history = History.from_dict(saved.fit["history"])
        self.plan.schedule.restore(saved.fit["schedule"])
        if self.early is not None:
            self.early.restore(saved.fit["early_stopping"], saved.best_params)
        self.first_epoch = saved.fit["epochs_done"]

    def _write_checkpoint(self, epochs_done):
        early = self.early
        fit = {"fingerprint": self.fingerprint, "epochs_done": epochs_done,
               "network_epochs": self.state.epochs_done, "history": self.history.to_dict(),
               "schedule": self.plan.schedule.state(),
               "early_stopping": None if early is None else early.state()}
        best = (early.best_params if early is not None and early.best_epoch is not None
                else np.empty(0, dtype=self.net.dtype))
        write_checkpoint(self.plan.checkpoint, self.net,
                         Checkpoint(self.plan.optimizer, self.moments, self.step, best, fit))

    # ------------------------------------------------------------ one epoch

    def _chunk_batches(self):
        """Mini-batches per call of train_epoch: run whole epochs unless someone watches."""
        if self.plan.eval_every is not None:
            return self.plan.eval_every
        if self.plan.progress:
            return max(1, -(-self.n_batches // 50))
        return self.n_batches

    def _train_epoch(self, settings, progress):
        """Run one epoch in chunks; returns nothing, fills batch_stats."""
        n = self.X.shape[0]
        order = self.state.rng.permutation(n) if self.plan.shuffle else np.arange(n)
        self._train_batches(self.X, self.Y, self.weights, order, 0, self.n_batches, settings,
                            progress)

    def _train_batches(self, X, Y, weights, order, first, stop, settings, progress):
        """Run the epoch's mini-batches ``first..stop-1`` over the rows ``X[order]``.

        ``order`` starts at batch ``first``; out-of-core training
        (:mod:`fastnn.streaming`) calls this once per block of rows.
        """
        net, plan = self.net, self.plan
        chunk = self._chunk_batches()
        offset = first
        while first < stop:
            # chunks end where the global step count reaches a multiple of eval_every
            last = min(stop, first + chunk - self.steps_done % chunk)
            arch, ws = self.architecture, self.workspace
            self.kernels.train_epoch(
                net.params, self.grad, self.moments, arch.table, arch.hidden, arch.output_code,
                X, Y, weights, order[(first - offset) * self.batch:(last - offset) * self.batch],
                self.batch, settings, self.step, ws.x, ws.y, ws.w, ws.acts, ws.deltas,
                self.batch_stats[first:last])
            stats = self.batch_stats[first:last]
            self.steps_done += last - first
            if plan.eval_every is not None:
                iterations = self.history.iterations
                iterations["step"].extend(range(self.steps_done - (last - first) + 1,
                                                self.steps_done + 1))
                iterations["loss"].extend(stats[:, 0].tolist())
                iterations["error"].extend(stats[:, 1].tolist())
                if self.validation is not None and self.steps_done % plan.eval_every == 0:
                    self.history.record_validation(self.steps_done, **self._evaluate())
            progress.advance(last - first, float(stats[-1, 0]))
            first = last

    def _evaluate(self):
        """Validation metrics of the current parameters (a hook for streamed validation sets)."""
        return validation_metrics(self.net, *self.validation)

    def _epoch_record(self, lr, elapsed):
        stats = self.batch_stats
        total_weight = stats[:, 2].sum()
        record = {"loss": float(stats[:, 2] @ stats[:, 0] / total_weight)}
        if self.net.output != "identity":
            record["error"] = float(stats[:, 2] @ stats[:, 1] / total_weight)
        if self.validation is not None:
            record.update(self._evaluate())
        record["lr"] = lr
        record["time"] = elapsed
        return record

    def _check_finite(self, record, epoch, snapshot, lr):
        # an infinite validation loss counts too: the training loss of the same
        # epoch can still be finite (if huge) when the parameters have blown up
        losses = (record["loss"], record.get("val_loss", 0.0))
        if all(math.isfinite(v) for v in losses) and np.isfinite(self.net.params).all():
            return
        snapshot.restore()
        raise DivergenceError(
            f"training diverged in epoch {epoch} (the loss or a parameter became NaN or "
            f"infinite) with learning rate {lr:.3g}; the parameters are restored to the start "
            "of that epoch. Try a smaller learning rate (or clip_norm, or a smaller "
            "weight_decay/momentum).", epoch, self.history)

    def _callbacks_stop(self):
        stop = False
        for callback in self.plan.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            result = hook(self.net, self.history) if hook is not None else callback(
                self.net, self.history)
            stop = stop or bool(result)
        return stop

    # ------------------------------------------------------------ the loop

    def run(self):
        net, plan, history = self.net, self.plan, self.history
        progress = Progress(plan.progress, plan.verbose, self.n_batches, plan.epochs)
        try:
            for epoch_in_fit in range(self.first_epoch, plan.epochs):
                epoch = self.state.epochs_done
                lr = plan.schedule.lr_at(epoch_in_fit, plan.lr)
                settings = step_settings(net.dtype, plan.optimizer, lr, plan.momentum,
                                         plan.nesterov, plan.weight_decay, plan.betas, plan.eps,
                                         plan.clip_norm)
                snapshot = self.state.snapshot()
                steps_before = self.steps_done
                completed = False
                try:
                    progress.start_epoch(epoch_in_fit)
                    started = time.perf_counter()
                    self._train_epoch(settings, progress)
                    record = self._epoch_record(lr, time.perf_counter() - started)
                    self._check_finite(record, epoch, snapshot, lr)
                    history.record(epoch, **record)
                    self.state.epochs_done += 1
                    completed = True
                    progress.end_epoch(epoch_in_fit, record)
                    stop = self._after_epoch(epoch, epoch_in_fit, record)
                except KeyboardInterrupt:
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
    """Train ``network`` in place; see :meth:`fastnn.Network.fit`.

    Parameters
    ----------
    network : fastnn.Network
    X : ndarray, shape (n, d_0)
    Y : ndarray, shape (n, d_L)
    weights : ndarray, shape (n,)
        Row weights (sample and class weights combined).
    validation : tuple (X_val, Y_val) or None
        Converted like ``X`` and ``Y``.
    plan : FitPlan
    warm_start : bool
        Keep the optimizer state of the previous fit (same optimizer).

    Returns
    -------
    History
    """
    with network.thread_scope():
        return TrainingRun(network, X, Y, weights, validation, plan, warm_start).run()

