"""What a fit records: per epoch, per mini-batch, per validation."""


class History:
    """Records of :meth:`fastnn.Network.fit`, in the manner of Keras.

    Attributes
    ----------
    epoch : list of int
        Epoch numbers (0-based, counted over the network's life).
    history : dict of str -> list
        One list per quantity, aligned with ``epoch``: ``loss`` (mean
        mini-batch data loss over the epoch, each batch measured before its
        update, weighted by its sample weights), ``error`` (the same for the
        misclassification rate; classification only), ``lr``, ``time``
        (seconds), and with validation data ``val_loss`` and ``val_error``
        (classification) or ``val_r2`` (regression), measured after the epoch.
    iterations : dict of str -> list
        With ``eval_every``: ``step`` (1-based step count within the fit),
        ``loss`` and ``error`` of every mini-batch.
    validations : dict of str -> list
        With ``eval_every`` and validation data: ``step``, ``val_loss`` and
        ``val_error``/``val_r2`` every ``eval_every`` steps.
    stop_reason : str
        ``"completed"``, ``"early_stopping"``, ``"callback"`` or
        ``"interrupted"`` (Ctrl-C; the parameters are those of the last
        completed epoch).
    best_epoch : int or None
        With ``patience``: the epoch whose parameters were restored.
    compile_time : float
        Seconds the fit spent compiling kernels before its first epoch (0 when
        they were cached); never part of an epoch's ``time``.
    """

    def __init__(self):
        self.epoch = []
        self.history = {}
        self.iterations = {"step": [], "loss": [], "error": []}
        self.validations = {"step": []}
        self.stop_reason = "completed"
        self.best_epoch = None
        self.compile_time = 0.0

    def record(self, epoch, **values):
        """Append one epoch's values."""
        self.epoch.append(epoch)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def record_validation(self, step, **values):
        """Append one mid-epoch evaluation of the validation set."""
        self.validations["step"].append(step)
        for key, value in values.items():
            self.validations.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def to_dict(self):
        """Plain lists and strings (JSON-ready), for checkpoints."""
        return {"epoch": self.epoch, "history": self.history, "iterations": self.iterations,
                "validations": self.validations, "stop_reason": self.stop_reason,
                "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data):
        """Inverse of :meth:`to_dict`."""
        history = cls()
        history.epoch = list(data["epoch"])
        history.history = {k: list(v) for k, v in data["history"].items()}
        history.iterations = {k: list(v) for k, v in data["iterations"].items()}
        history.validations = {k: list(v) for k, v in data["validations"].items()}
        history.stop_reason = data["stop_reason"]
        history.best_epoch = data["best_epoch"]
        return history

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items())
        stop = "" if self.stop_reason == "completed" else f", stopped: {self.stop_reason}"
        return f"History({len(self)} epochs{'; last: ' + shown if shown else ''}{stop})"
