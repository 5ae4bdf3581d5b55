"""What a fit records, epoch by epoch."""


class History:
    """Per-epoch records of :meth:`fastnn.Network.fit`, in the manner of Keras.

    Attributes
    ----------
    epoch : list of int
        Epoch numbers (0-based, counted over this network's life).
    history : dict of str -> list
        One list per quantity, aligned with ``epoch``: ``loss`` (mean mini-batch
        data loss over the epoch, measured on each batch before its update),
        ``error`` (the same for the misclassification rate; classification
        only) and ``time`` (seconds spent in the epoch).
    """

    def __init__(self):
        self.epoch = []
        self.history = {}

    def record(self, epoch, **values):
        """Append one epoch's values."""
        self.epoch.append(epoch)
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = {k: v[-1] for k, v in self.history.items() if v}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items())
        return f"History({len(self)} epochs{'; last: ' + shown if shown else ''})"
