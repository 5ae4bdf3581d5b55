"""Training curves in the style of the lecture notes' figures 6.7 and 6.8.

matplotlib is an optional dependency (``pip install "fastnn[plot]"``); it is
imported only when a figure is drawn, so ``import fastnn`` never needs it.
"""

import os
from pathlib import Path

import numpy as np

__all__ = ["image_format", "plot_training", "require_matplotlib"]

#: colours of the notes' figures: training (per mini-batch) blue, validation red
TRAIN_COLOUR = "tab:blue"
VALIDATION_COLOUR = "tab:red"

_INSTALL_HINT = 'pip install "fastnn[plot]"'


def require_matplotlib():
    """Import matplotlib's object-oriented figure API, or explain how to install it.

    Called by :func:`plot_training` and, before training starts, by the
    command line, so a missing matplotlib is reported before minutes of work
    rather than after.

    Returns
    -------
    Figure, FigureCanvasAgg
        ``matplotlib.figure.Figure`` and the Agg canvas class.

    Raises
    ------
    ImportError
        If matplotlib is not installed; the message names the install command.
    """
    try:
        # The Figure/FigureCanvasAgg pair draws off-screen without pyplot, so
        # plotting never switches the backend of a user's interactive session
        # (matplotlib.use("Agg") would) and needs no display.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"drawing training curves needs matplotlib, which is not installed ({error}); "
            f"install it with:  {_INSTALL_HINT}"
        ) from error
    return Figure, FigureCanvasAgg


def _series(records, *keys):
    """The lists ``records[key]`` as floats, or None when any is missing or empty."""
    if not records or any(not records.get(key) for key in keys):
        return None
    return [[float(v) for v in records[key]] for key in keys]


def _top(train, val, clip):
    """Upper y limit: every validation point, and the training curve's bulk.

    The first few dozen mini-batches of thousands cost several times what the
    rest do; scaled to them, the part of the curves that matters (the last
    percent or two of error) would be a flat line on the axis. So with
    per-iteration curves the top is set by the 99th percentile of the
    training values and by the validation values, and the start is cut off.
    """
    train = np.asarray(train, dtype=float)
    train = train[np.isfinite(train)]
    top = float(np.quantile(train, 0.99) if clip else train.max()) if train.size else 0.0
    if val is not None:
        finite = [v for v in val if np.isfinite(v)]
        top = max([top, *finite])
    return 1.1 * top if top > 0 else 1.0


def plot_training(history, path, title=None):
    """Draw cost and misclassification against iterations and save the figure.

    The layout follows the notes' figures 6.7/6.8 (seed 003, Example 6.2):
    two panels, the cost on the left and the misclassification rate on the
    right, each against the SGD iteration; the value on every training
    mini-batch (measured before its update) in blue, the value on the whole
    validation set every ``eval_every`` iterations in red.

    Parameters
    ----------
    history : fastnn.History
        What :meth:`fastnn.Network.fit` returned. Per-iteration curves need
        ``history.iterations`` (``fit(..., eval_every=N)``) and, for the red
        curves, ``history.validations`` (``validation_data`` as well). A
        history with per-epoch records only is drawn against the epoch
        instead (end-of-epoch validation values in red). Regression (no
        ``error`` records) gets the cost panel only.
    path : str or path-like
        Where to write the figure; the format follows the suffix (``.png``,
        ``.pdf``, ``.svg``), PNG when there is none.
    title : str, optional
        A title above both panels.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install "fastnn[plot]"``).
    ValueError
        If the history holds no training records at all, or the suffix of
        ``path`` names a format matplotlib cannot write.

    Notes
    -----
    With per-iteration curves the y axes stop just above the 99th percentile
    of the training values (and above every validation value), so the first
    few mini-batches, whose cost is several times the rest, run off the top
    instead of flattening the part of the curves that matters.
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    path = Path(os.fspath(path))

    iterations = getattr(history, "iterations", None) or {}
    validations = getattr(history, "validations", None) or {}
    per_epoch = getattr(history, "history", None) or {}

    if _series(iterations, "step", "loss"):
        x_label = "iteration"
        train_x, train_loss = _series(iterations, "step", "loss")
        train_error = (_series(iterations, "error") or [None])[0]
        val = _series(validations, "step", "val_loss")
        val_x, val_loss = val if val else (None, None)
        val_error = (_series(validations, "val_error") or [None])[0] if val else None
        train_label = "training (mini-batch)"
        val_label = "validation"
    elif _series(per_epoch, "loss"):
        # Without eval_every there is one point per epoch; the x axis says so.
        x_label = "epoch"
        train_loss = _series(per_epoch, "loss")[0]
        train_x = [e + 1 for e in getattr(history, "epoch", range(len(train_loss)))]
        train_error = (_series(per_epoch, "error") or [None])[0]
        val_loss = (_series(per_epoch, "val_loss") or [None])[0]
        val_x = train_x if val_loss else None
        val_error = (_series(per_epoch, "val_error") or [None])[0]
        train_label = "training (mean over the epoch's mini-batches)"
        val_label = "validation (end of epoch)"
    else:
        raise ValueError(
            "the history holds no training records to plot; expected the History returned "
            "by Network.fit (fit with eval_every=N for per-iteration curves)"
        )

    classification = train_error is not None
    figure = Figure(figsize=(11, 4.2) if classification else (6, 4.2), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2 if classification else 1, squeeze=False)[0]
    # Per-mini-batch curves are noisy and dense: a thin line keeps the red
    # validation curve readable on top of them.
    thin = 0.5 if x_label == "iteration" else 1.5
    marker = "" if x_label == "iteration" else "o"

    panels = [(axes[0], "cost", train_loss, val_loss, 1.0)]
    if classification:
        panels.append((axes[1], "misclassification (%)", train_error, val_error, 100.0))
    for ax, name, train, val, scale in panels:
        ax.plot(train_x, [v * scale for v in train], color=TRAIN_COLOUR, linewidth=thin,
                marker=marker, markersize=3, label=train_label)
        if val is not None:
            # a dot at every evaluation: they are sparse (every N iterations)
            ax.plot(val_x, [v * scale for v in val], color=VALIDATION_COLOUR, linewidth=1.8,
                    marker="o", markersize=3, label=val_label)
        ax.set_xlabel(x_label)
        ax.set_ylabel(name)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0, top=_top(train, val, x_label == "iteration") * scale)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right")
    axes[0].set_title("Cost")
    if classification:
        axes[1].set_title("Misclassification")
    if title:
        figure.suptitle(title)

    figure.savefig(path, dpi=120, format=image_format(path, FigureCanvasAgg))
    return path


def image_format(path, canvas_class=None):
    """The image format for ``path``: its suffix, or ``png`` when it has none.

    Parameters
    ----------
    path : str or path-like
    canvas_class : type, optional
        The canvas whose formats are accepted; matplotlib's Agg canvas by default.

    Returns
    -------
    str
        A format name matplotlib can write, such as ``"png"`` or ``"svg"``.

    Raises
    ------
    ValueError
        If the suffix names a format matplotlib cannot write.
    ImportError
        If matplotlib is not installed.
    """
    if canvas_class is None:
        canvas_class = require_matplotlib()[1]
    suffix = Path(os.fspath(path)).suffix.lower().lstrip(".")
    if not suffix:
        # An explicit format also stops matplotlib appending ".png" to the name.
        return "png"
    supported = canvas_class.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(
            f"cannot write a figure to {os.fspath(path)!r}: unknown image format {suffix!r}; "
            f"expected a file name ending in one of {', '.join('.' + k for k in sorted(supported))}"
        )
    return suffix
