"""What a fit shows while it runs: a progress bar and one line per epoch."""

import sys


def _format(key, value):
    if key in ("error", "val_error"):
        return f"{key} {value:6.2%}"
    if key == "time":
        return f"{value:.2f} s"
    if key == "lr":
        return f"lr {value:.3g}"
    return f"{key} {value:.4f}"


class Progress:
    """A tqdm bar over each epoch's mini-batches (``bar``) and, with ``verbose``,
    one line per epoch.

    Parameters
    ----------
    bar : bool
        Draw the bar (tqdm must be installed; checked at the API boundary).
    verbose : int
        0 silent, >= 1 one line per epoch.
    n_batches, epochs : int
    """

    def __init__(self, bar, verbose, n_batches, epochs):
        self.verbose = verbose
        self.n_batches = n_batches
        self.epochs = epochs
        self._tqdm = None
        self._bar = None
        if bar:
            from tqdm.auto import tqdm
            self._tqdm = tqdm

    def start_epoch(self, epoch_in_fit):
        if self._tqdm is not None:
            self._bar = self._tqdm(total=self.n_batches, unit="batch", leave=False,
                                   desc=f"epoch {epoch_in_fit + 1}/{self.epochs}")

    def advance(self, batches, loss):
        if self._bar is not None:
            self._bar.update(batches)
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def end_epoch(self, epoch_in_fit, record):
        self.close()
        if self.verbose:
            width = len(str(self.epochs))
            line = "  ".join([f"epoch {epoch_in_fit + 1:{width}d}/{self.epochs}"]
                             + [_format(k, v) for k, v in record.items()])
            if self._tqdm is not None:
                self._tqdm.write(line, file=sys.stdout)
            else:
                print(line, flush=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
