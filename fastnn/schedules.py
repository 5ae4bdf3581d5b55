"""Learning-rate schedules, applied once per epoch.

A schedule maps the epoch index within a fit (0-based) and the base learning
rate to the learning rate of that epoch; PyTorch's closed forms.
:class:`ReduceLROnPlateau` also watches a metric (the validation loss when
there is validation data, else the training loss) and keeps state, which is
saved in checkpoints.

Pass one as ``Network.fit(..., lr_schedule=...)``; any callable
``f(epoch) -> learning rate`` works too.
"""

import copy
import math

from fastnn.validation import check_int, check_real


class Schedule:
    """Base class: a constant learning rate."""

    def lr_at(self, epoch, base_lr):
        """Learning rate for ``epoch`` (0-based within the fit)."""
        return base_lr

    def observe(self, metric):
        """Called after each epoch with the monitored loss; stateless by default."""

    def state(self):
        """JSON-ready state (for checkpoints)."""
        return {}

    def restore(self, state):
        """Inverse of :meth:`state`."""

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class ConstantLR(Schedule):
    """The base learning rate every epoch."""


class StepLR(Schedule):
    """``base · gamma^(epoch // step_size)``: decay by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = check_int("step_size", step_size, minimum=1)
        self.gamma = check_real("gamma", gamma, minimum=0, min_inclusive=False)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    """``base · gamma^epoch``."""

    def __init__(self, gamma):
        self.gamma = check_real("gamma", gamma, minimum=0, min_inclusive=False)

    def lr_at(self, epoch, base_lr):
        return base_lr * self.gamma ** epoch


class CosineLR(Schedule):
    """Cosine annealing from the base rate to ``eta_min`` over ``t_max`` epochs.

    ``eta_min + (base - eta_min) (1 + cos(π epoch / t_max)) / 2``, PyTorch's
    ``CosineAnnealingLR`` closed form.
    """

    def __init__(self, t_max, eta_min=0.0):
        self.t_max = check_int("t_max", t_max, minimum=1)
        self.eta_min = check_real("eta_min", eta_min, minimum=0)

    def lr_at(self, epoch, base_lr):
        cosine = math.cos(math.pi * epoch / self.t_max)
        return self.eta_min + (base_lr - self.eta_min) * (1 + cosine) / 2


class LambdaLR(Schedule):
    """A user function ``f(epoch) -> learning rate`` (the rate itself, not a factor)."""

    def __init__(self, function):
        if not callable(function):
            raise TypeError(f"lr_schedule must be a schedule or a callable; got {function!r}")
        self.function = function

    def lr_at(self, epoch, base_lr):
        lr = self.function(epoch)
        try:
            return check_real("lr", lr, minimum=0, min_inclusive=False)
        except (TypeError, ValueError):
            raise ValueError(f"lr_schedule({epoch}) returned {lr!r}; expected a finite "
                             "learning rate > 0") from None


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` once the monitored loss stops improving.

    PyTorch's ``ReduceLROnPlateau`` (mode ``min``, relative threshold): after
    more than ``patience`` epochs without a loss below ``best · (1 -
    threshold)``, the rate drops by ``factor`` (not below ``min_lr``) and
    ``cooldown`` epochs pass before counting again.
    """

    def __init__(self, factor=0.1, patience=10, threshold=1e-4, cooldown=0, min_lr=0.0):
        self.factor = check_real("factor", factor, minimum=0, maximum=1, min_inclusive=False,
                                 max_inclusive=False)
        self.patience = check_int("patience", patience, minimum=0)
        self.threshold = check_real("threshold", threshold, minimum=0, maximum=1,
                                    max_inclusive=False)
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        self.min_lr = check_real("min_lr", min_lr, minimum=0)
        self._scale = 1.0
        self._best = math.inf
        self._bad_epochs = 0
        self._cooldown_left = 0

    def lr_at(self, epoch, base_lr):
        return max(base_lr * self._scale, self.min_lr)

    def observe(self, metric):
        if metric < self._best * (1 - self.threshold):
            self._best = metric
            self._bad_epochs = 0
        else:
            self._bad_epochs += 1
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self._bad_epochs = 0
        if self._bad_epochs > self.patience:
            self._scale *= self.factor
            self._cooldown_left = self.cooldown
            self._bad_epochs = 0

    def state(self):
        return {"scale": self._scale, "best": self._best, "bad_epochs": self._bad_epochs,
                "cooldown_left": self._cooldown_left}

    def restore(self, state):
        self._scale = state["scale"]
        self._best = state["best"]
        self._bad_epochs = state["bad_epochs"]
        self._cooldown_left = state["cooldown_left"]


def as_schedule(lr_schedule):
    """The schedule one fit uses: ``None`` -> constant, a callable -> :class:`LambdaLR`,
    a :class:`Schedule` -> a fresh copy.

    The copy keeps fits independent: a plateau schedule passed to two fits
    starts both from its initial state instead of the first fit's end.
    """
    if lr_schedule is None:
        return ConstantLR()
    if isinstance(lr_schedule, Schedule):
        return copy.deepcopy(lr_schedule)
    return LambdaLR(lr_schedule)
