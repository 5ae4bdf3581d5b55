"""One training job, run by fastnn and by its peers: seconds per epoch, side by side.

The default job (``--job mnist``): a 784-200-10 network, relu hidden layer, softmax output with
cross-entropy, plain SGD (lr 0.1, no momentum, no weight decay), float32,
mini-batches drawn from a fresh permutation each epoch.  The data is MNIST's
60,000 training digits (``fastnn.datasets.load_mnist()``: its train and
validation splits together) when it has been fetched, otherwise synthetic
data of the same shape (60,000 x 784 float32, labels 0..9).

Engines
-------
fastnn-numba    ``Network(..., backend="numba").fit(X, y, epochs=1)``, one call per epoch
fastnn-numpy    the same with ``backend="numpy"`` (the pure-NumPy reference)
torch           PyTorch on the CPU: ``nn.Sequential(Linear, ReLU, Linear)``,
                ``CrossEntropyLoss``, ``torch.optim.SGD``, a manual mini-batch
                loop over ``torch.randperm``
sklearn         ``MLPClassifier(solver="sgd", momentum=0, alpha=0, max_iter=1, ...)``;
                one epoch is one ``partial_fit`` call (with ``max_iter=1`` a
                ``partial_fit`` is exactly one pass over the data)

Every timed epoch is the wall-clock time of what a user's loop would run per
epoch: fastnn's ``fit`` and scikit-learn's ``partial_fit`` include their input
checks, the PyTorch loop has none.  fastnn's own per-epoch time (its
``history["time"]``, the compiled epoch alone) is printed below the table.

Method
------
Each engine runs in its own process (this script in worker mode), with the
thread count pinned before anything is imported (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``) and
through the engine's own API (``Network(n_threads=...)``,
``torch.set_num_threads``).  Rounds alternate the engines (round 1: A B C D,
round 2: A B C D, ...), so a machine that gets busier or quieter during the
run affects every engine alike.  Each worker first warms up (JIT compile or
cache load, allocator, BLAS threads) on a few rows, then times its epochs;
the table gives the median over all rounds.  The ratios under it (CSR
against dense, new against ``--baseline-python``) are also given round by
round (the median of the per-round ratios, and their range) and best epoch
against best epoch: on a shared machine the load drifts between rounds by
more than most changes gain.  Batch size 1 (per-sample SGD)
is timed on a subset of the rows and scaled to a whole epoch.

An sgemm worker (the same pinning) times a square float32
``scipy.linalg.blas.sgemm`` each round; its best rate is the machine's peak
that the achieved GFLOP/s are compared with (the dense job only).

FLOP count of one epoch (what the network must compute; gathers, the
activation and the softmax are not counted): per row, the forward pass is
2 x (784*200 + 200*10) FLOP, the weight gradients as many again, and the
hidden delta 2 x (200*10), so one epoch is
60,000 x (4 x 158,800 + 4,000) = 38.35 GFLOP.

Install the peers (never runtime dependencies of fastnn)::

    python -m pip install torch==2.13.0 scikit-learn

Reproduce the table (all cores, 3 rounds; optionally fetch MNIST once first)::

    python -c "import fastnn.datasets as d; d.fetch_mnist()"
    python scripts/bench_peers.py --output bench_peers.md

A smoke test (fewer rows and rounds; the numbers mean little)::

    python scripts/bench_peers.py --quick

Sparse inputs
-------------
Two more jobs time training on a CSR ``X`` (float32, int32 indices), with the
same method (worker processes, pinned threads, alternating rounds, medians),
the same network kinds and the same plain SGD (lr 0.1), float32, shuffled:

sparse-text     20,000 x 50,000 synthetic documents (:func:`text_data`): 100
                distinct words a row at seeded random columns, tf-idf values
                (scikit-learn's ``TfidfTransformer(sublinear_tf=True)`` of
                counts ``1 + Poisson(1)``), rows L2-normalised; 20 classes,
                each row's label the argmax of a seeded random linear map of
                it.  50000-128-20, batch 64, one epoch = 20,000 rows.
sparse-mnist    MNIST's 60,000 digits (or the synthetic stand-in) as CSR,
                density about 19 % (20 % for the stand-in); 784-200-10,
                batch 100.  Engine ``fastnn-numba-dense`` is fastnn-numba on
                the same rows dense, so the CSR/dense ratio is in the same
                table (and below it).

On a CSR ``X`` the engines are:

fastnn-numba, fastnn-numpy
                ``Network.fit(X_csr, y, epochs=1)``: fastnn converts it once
                (float32 CSR with int32 indices is taken as it is) and never
                densifies it
torch           ``nn.Linear(d_0, d_1)``, ``ReLU``, ``nn.Linear(d_1, d_2)`` as
                parameters, the first weight held transposed, ``(d_0, d_1)``,
                as a Parameter of its own with ``nn.Linear``'s initial values
                (``torch.sparse.mm`` otherwise copies ``W^T`` at every product,
                several times slower in a trial here).  Each mini-batch's rows
                are gathered in torch, from ``X``'s CSR arrays held as tensors,
                into a coalesced ``torch.sparse_coo_tensor`` (COO: faster than
                a CSR tensor in the same trial), then ``torch.sparse.mm(X_b,
                W_1^T) + b_1``, the rest of the network, ``CrossEntropyLoss``,
                ``backward`` and ``torch.optim.SGD``.  The first layer's weight
                gradient is dense, so every weight is stepped at every batch.
sklearn         ``partial_fit`` on the CSR matrix, as in the dense job
                (scikit-learn's MLP multiplies CSR with ``safe_sparse_dot``)

Instead of GFLOP/s the table gives each engine's peak memory growth: how far
its worker's peak resident memory (``getrusage`` ``ru_maxrss``, the whole
process) rose during the timed calls above the peak that loading the data
and the warm-up had reached, the largest over the rounds.  A dense copy of
``X`` (its size is in the header: 4,000 MB for the text job) would show
there.  The sparse engines read only ``X.npz``; no sgemm worker runs.

Reproduce the sparse tables (all cores, 3 rounds; sparse-mnist uses MNIST
when it has been fetched)::

    python scripts/bench_peers.py --job sparse-text --output bench_sparse_text.md
    python scripts/bench_peers.py --job sparse-mnist --output bench_sparse_mnist.md

and their smoke tests, ``--job sparse-text --quick`` (2,000 rows) and
``--job sparse-mnist --quick`` (6,000 rows).
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SIZES = (784, 200, 10)
EPOCH_ROWS = 60_000
LEARNING_RATE = 0.1
SEED = 0

#: forward + weight gradients (2 FLOP per multiply-add each) + the hidden delta
FLOP_PER_ROW = 4 * (784 * 200 + 200 * 10) + 2 * 200 * 10
EPOCH_FLOP = EPOCH_ROWS * FLOP_PER_ROW

#: the text job's matrix: documents, vocabulary, distinct words a document
TEXT_ROWS, TEXT_VOCABULARY, TEXT_WORDS = 20_000, 50_000, 100
TEXT_SIZES = (TEXT_VOCABULARY, 128, 20)

ENGINES = ("fastnn-numba", "fastnn-numpy", "torch", "sklearn")
#: fastnn-numba on the dense X of a sparse job: the other side of the ratio
DENSE_TWIN = "fastnn-numba-dense"
ALL_ENGINES = (*ENGINES, DENSE_TWIN)
#: the module each engine needs, and how to get it when it is missing
REQUIREMENTS = {
    "fastnn-numba": ("fastnn", "python -m pip install -e ."),
    "fastnn-numpy": ("fastnn", "python -m pip install -e ."),
    DENSE_TWIN: ("fastnn", "python -m pip install -e ."),
    "torch": ("torch", "python -m pip install torch==2.13.0"),
    "sklearn": ("sklearn", "python -m pip install scikit-learn"),
}


@dataclass(frozen=True)
class Job:
    """One training job: the network, how many rows an epoch has, who runs it.

    Every job trains relu hidden layers and a softmax output with
    cross-entropy, plain SGD (lr 0.1), float32, shuffled.

    Attributes
    ----------
    name : str
        The ``--job`` value.
    sizes : tuple of int
        Layer widths ``d_0, d_1, d_2``.
    epoch_rows : int
        Rows of one epoch: the times are scaled to it.
    batch_sizes : str
        The default of ``--batch-sizes``.
    engines : tuple of str
        The default of ``--engines``.
    sparse : bool
        The engines get ``X`` as CSR (all but :data:`DENSE_TWIN`).
    summary : str
        The job in a line, for the table's header.
    """

    name: str
    sizes: tuple
    epoch_rows: int
    batch_sizes: str
    engines: tuple
    sparse: bool
    summary: str


JOBS = {job.name: job for job in (
    Job("mnist", SIZES, EPOCH_ROWS, "1,32,100,256", ENGINES, False,
        "784-200-10 relu/softmax, plain SGD lr 0.1, float32, shuffled"),
    Job("sparse-text", TEXT_SIZES, TEXT_ROWS, "64", ENGINES, True,
        f"{TEXT_VOCABULARY}-128-20 relu/softmax on CSR rows of {TEXT_WORDS} words, plain SGD "
        "lr 0.1, float32, shuffled"),
    Job("sparse-mnist", SIZES, EPOCH_ROWS, "100", ("fastnn-numba", DENSE_TWIN, "fastnn-numpy",
                                                   "torch", "sklearn"), True,
        "784-200-10 relu/softmax on MNIST as CSR (fastnn-numba-dense: the same rows dense), "
        "plain SGD lr 0.1, float32, shuffled"),
)}
BASELINE = "fastnn-numba"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")


# ---------------------------------------------------------------------------
# Workers: each runs in a fresh process whose thread variables are already set
# ---------------------------------------------------------------------------

def _blas_pools():
    """``[(library, version, threads)]`` of the loaded BLAS pools, if threadpoolctl is there."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [(pool.get("internal_api"), pool.get("version"), pool.get("num_threads"))
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _peak_rss_bytes():
    """The process's peak resident memory so far (bytes), None where it is unknown."""
    try:
        import resource
    except ImportError:  # not on Unix
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else 1024 * peak  # bytes on macOS, KiB on Linux


def _time_epochs(run_epoch, epochs):
    """Seconds of each of ``epochs`` calls of ``run_epoch``, and what they added to the peak RSS.

    Returns
    -------
    seconds : list of float
    rss_growth : int or None
        Bytes by which the process's peak resident memory (``ru_maxrss``)
        rose during the calls: what they allocated beyond the peak the data
        loading and the warm-up had reached (0 when they stayed below it).
    """
    before = _peak_rss_bytes()
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        run_epoch()
        seconds.append(time.perf_counter() - started)
    return seconds, None if before is None else _peak_rss_bytes() - before


def _work_fastnn(backend, X, y, warm, batch_size, epochs, threads, sizes):
    import numba

    import fastnn
    from fastnn import Network

    net = Network(list(sizes), activation="relu", output="softmax", dtype="float32", seed=SEED,
                  backend=backend, n_threads=threads)
    net.fit(X[:warm], y[:warm], epochs=1, batch_size=batch_size, lr=LEARNING_RATE)
    inner = []

    def run_epoch():
        history = net.fit(X, y, epochs=1, batch_size=batch_size, lr=LEARNING_RATE,
                          momentum=0.0, weight_decay=0.0, shuffle=True)
        inner.extend(history["time"])

    seconds, rss_growth = _time_epochs(run_epoch, epochs)
    import numpy
    import scipy
    versions = {"fastnn": fastnn.__version__, "numpy": numpy.__version__,
                "numba": numba.__version__, "scipy": scipy.__version__}
    return seconds, {"inner_seconds": inner, "versions": versions,
                     "engine_threads": net.n_threads, "rss_growth": rss_growth}


def _torch_sparse_rows(torch, X):
    """A function taking row numbers to those rows of the CSR ``X`` as a torch COO tensor.

    Parameters
    ----------
    torch : module
    X : scipy.sparse CSR matrix or array of float32, shape (n, d), canonical
        (sorted columns, no duplicates: the COO tensor is declared coalesced)

    Returns
    -------
    callable
        ``take(rows)``, ``rows`` an int64 tensor of shape (b,), returns a
        coalesced sparse COO tensor of shape (b, d): the gather done in torch,
        from ``X``'s index arrays held as tensors.
    """
    import numpy as np

    indptr = torch.from_numpy(X.indptr.astype(np.int64))
    indices = torch.from_numpy(X.indices.astype(np.int64))
    data = torch.from_numpy(X.data)
    width = X.shape[1]

    def take(rows):
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        # entry e of the batch is entry e + (start of its row in X - start of its row in the batch)
        shift = starts - (torch.cumsum(lengths, 0) - lengths)
        entries = torch.repeat_interleave(shift, lengths) + torch.arange(int(lengths.sum()))
        batch_rows = torch.repeat_interleave(torch.arange(rows.shape[0]), lengths)
        return torch.sparse_coo_tensor(torch.stack([batch_rows, indices[entries]]),
                                       data[entries], (rows.shape[0], width),
                                       is_coalesced=True, check_invariants=False)

    return take


def _work_torch(X, y, warm, batch_size, epochs, threads, sizes):
    import scipy.sparse
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.ReLU(), nn.Linear(sizes[1], sizes[2]))
    if scipy.sparse.issparse(X):
        X.sum_duplicates()  # canonical (a no-op for the jobs' data): take() declares it
        take = _torch_sparse_rows(torch, X)
        first, rest = model[0], model[1:]
        # nn.Linear's initial weight, stored transposed, (d_0, d_1): torch.sparse.mm
        # would otherwise copy W^T (25 MB for the text job) at every product
        weight_t = nn.Parameter(first.weight.detach().t().contiguous())
        parameters = [weight_t, first.bias, *rest.parameters()]

        def forward(xb):
            return rest(torch.sparse.mm(xb, weight_t) + first.bias)
    else:
        X_all = torch.from_numpy(X)
        take, forward, parameters = X_all.__getitem__, model, model.parameters()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(parameters, lr=LEARNING_RATE, momentum=0.0, weight_decay=0.0)
    generator = torch.Generator().manual_seed(SEED)
    y_all = torch.from_numpy(y)

    def run_epoch(n_rows=X.shape[0]):
        # the first n_rows rows, shuffled
        order = torch.randperm(n_rows, generator=generator)
        for start in range(0, n_rows, batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(forward(take(rows)), y_all[rows])
            loss.backward()
            optimizer.step()

    run_epoch(warm)
    seconds, rss_growth = _time_epochs(run_epoch, epochs)
    return seconds, {"versions": {"torch": torch.__version__},
                     "engine_threads": torch.get_num_threads(), "rss_growth": rss_growth}


def _work_sklearn(X, y, warm, batch_size, epochs, threads, sizes):
    import warnings

    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(sizes[1],), activation="relu", solver="sgd",
                          learning_rate="constant", learning_rate_init=LEARNING_RATE,
                          momentum=0.0, nesterovs_momentum=False, batch_size=batch_size,
                          alpha=0.0, max_iter=1, shuffle=True, random_state=SEED)
    with warnings.catch_warnings():
        # max_iter=1 is the point: one epoch per call, never converged
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.partial_fit(X[:warm], y[:warm], classes=np.arange(sizes[2]))
        seconds, rss_growth = _time_epochs(lambda: model.partial_fit(X, y), epochs)
    if model.coefs_[0].dtype != np.float32:
        raise RuntimeError(f"scikit-learn trained in {model.coefs_[0].dtype}, not float32")
    # no threads of its own: its matrix products are NumPy's BLAS calls
    return seconds, {"versions": {"sklearn": sklearn.__version__}, "rss_growth": rss_growth}


def _work_sgemm(n, calls):
    import numpy as np
    import scipy
    from scipy.linalg.blas import sgemm

    rng = np.random.default_rng(SEED)
    # Fortran order: sgemm then reads and writes in place, no copies
    A = np.asfortranarray(rng.random((n, n), dtype=np.float32))
    B = np.asfortranarray(rng.random((n, n), dtype=np.float32))
    C = np.zeros((n, n), dtype=np.float32, order="F")
    for _ in range(2):
        sgemm(1.0, A, B, beta=0.0, c=C, overwrite_c=True)
    seconds, _ = _time_epochs(lambda: sgemm(1.0, A, B, beta=0.0, c=C, overwrite_c=True), calls)
    return seconds, {"gflops": [2.0 * n ** 3 / s / 1e9 for s in seconds],
                     "versions": {"scipy": scipy.__version__}}


def load_inputs(data_dir, sparse, rows):
    """The first ``rows`` rows of the job's ``X``: ``X.npz`` (CSR) or ``X.npy`` (dense).

    A sparse engine never loads the dense ``X``, so that its peak memory shows
    whether the training made a dense copy.
    """
    import numpy as np

    if sparse:
        import scipy.sparse

        X = scipy.sparse.load_npz(Path(data_dir) / "X.npz")
    else:
        X = np.load(Path(data_dir) / "X.npy")
    # slicing a CSR matrix copies it: only when fewer rows are timed
    return X[:rows] if rows < X.shape[0] else X


def worker(args):
    """Time one engine at one batch size of one job; print one JSON line."""
    if args.worker == "sgemm":
        seconds, extra = _work_sgemm(args.sgemm_size, args.epochs)
    else:
        import numpy as np

        job = JOBS[args.job]
        X = load_inputs(args.data_dir, job.sparse and args.worker != DENSE_TWIN,
                        args.timed_rows)
        y = np.load(Path(args.data_dir) / "y.npy")[:args.timed_rows]
        warm = min(args.warmup_rows, X.shape[0])
        if args.worker.startswith("fastnn-"):
            backend = args.worker.split("-")[1]  # fastnn-numba-dense: numba
            seconds, extra = _work_fastnn(backend, X, y, warm, args.batch_size, args.epochs,
                                          args.threads, job.sizes)
        elif args.worker == "torch":
            seconds, extra = _work_torch(X, y, warm, args.batch_size, args.epochs, args.threads,
                                         job.sizes)
        else:
            seconds, extra = _work_sklearn(X, y, warm, args.batch_size, args.epochs,
                                           args.threads, job.sizes)
    print(json.dumps({"seconds": seconds, "blas": _blas_pools(), **extra}))


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------

def default_threads():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def machine_name():
    """The CPU model, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def text_data(rows, seed=SEED):
    """The text job's data: tf-idf rows of random words, and labels from a linear rule.

    Each row holds :data:`TEXT_WORDS` distinct words (columns) drawn
    uniformly from the :data:`TEXT_VOCABULARY`, with counts ``1 + Poisson(1)``
    weighted as scikit-learn's ``TfidfTransformer(sublinear_tf=True)`` weighs
    them: ``(1 + log count) * idf``, ``idf = log((1 + n) / (1 + df)) + 1``, each
    row scaled to unit L2 norm.  The label of a row is the argmax of a seeded
    random linear map of it, so a linear model can learn it.

    Parameters
    ----------
    rows : int
    seed : int

    Returns
    -------
    X : scipy.sparse.csr_array of float32, shape (rows, TEXT_VOCABULARY)
        Canonical (sorted columns, no duplicates), int32 indices.
    y : ndarray of int64, shape (rows,), in ``0..TEXT_SIZES[-1]-1``
    """
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    words, width = TEXT_WORDS, TEXT_VOCABULARY
    indices = np.concatenate([np.sort(rng.choice(width, words, replace=False))
                              for _ in range(rows)]).astype(np.int32)
    tf = 1 + np.log(1 + rng.poisson(1.0, size=rows * words))
    idf = np.log((1 + rows) / (1 + np.bincount(indices, minlength=width))) + 1
    values = (tf * idf[indices]).reshape(rows, words)
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    indptr = np.arange(0, (rows + 1) * words, words, dtype=np.int32)
    X = sp.csr_array((values.ravel().astype(np.float32), indices, indptr), shape=(rows, width))
    rule = rng.standard_normal((width, TEXT_SIZES[-1]), dtype=np.float32)
    return X, np.asarray(X @ rule).argmax(axis=1).astype(np.int64)


def prepare_data(source, rows, directory, job=JOBS["mnist"]):
    """Write the job's data into ``directory``: ``y.npy`` (int64) and the inputs.

    The inputs are ``X.npy`` (float32, rows x d_0) for the dense engines and
    ``X.npz`` (``scipy.sparse.save_npz`` of a CSR array, float32) for the
    sparse ones: the mnist job writes the first, the sparse-text job the
    second, the sparse-mnist job both (the same rows).

    Returns a sentence saying where the data came from.
    """
    import numpy as np

    if job.name == "sparse-text":
        import scipy.sparse as sp

        X, y = text_data(rows)
        sp.save_npz(Path(directory) / "X.npz", X, compressed=False)
        np.save(Path(directory) / "y.npy", y)
        return (f"synthetic text ({rows:,} x {TEXT_VOCABULARY:,} CSR float32, {TEXT_WORDS} "
                "words a row at seeded random columns, tf-idf values (1 + log count) x idf, "
                f"rows L2-normalised; labels: the argmax of a seeded random linear map, "
                f"{TEXT_SIZES[-1]} classes)")
    described = _prepare_mnist(source, rows, directory)
    if job.sparse:
        import scipy.sparse as sp

        X = sp.csr_array(np.load(Path(directory) / "X.npy"))
        sp.save_npz(Path(directory) / "X.npz", X, compressed=False)
        described += (f"; as CSR (density {X.nnz / (X.shape[0] * X.shape[1]):.1%}) for all "
                      f"engines but {DENSE_TWIN}")
    return described


def _prepare_mnist(source, rows, directory):
    """Write MNIST's (or the synthetic stand-in's) ``X.npy`` and ``y.npy``; say which."""
    import numpy as np

    if source in ("auto", "mnist"):
        try:
            from fastnn.datasets import load_mnist
            mnist = load_mnist()
        except FileNotFoundError:
            if source == "mnist":
                raise
        else:
            X = np.concatenate([mnist.train[0], mnist.validation[0]])[:rows]
            y = np.concatenate([mnist.train[1], mnist.validation[1]])[:rows]
            np.save(Path(directory) / "X.npy", np.ascontiguousarray(X, dtype=np.float32))
            np.save(Path(directory) / "y.npy", y.astype(np.int64))
            return f"MNIST (the 60,000 training digits; {len(y):,} rows used)"
    rng = np.random.default_rng(SEED)
    X = rng.random((rows, SIZES[0]), dtype=np.float32)
    X[X < 0.8] = 0  # MNIST is about 80 % background
    y = rng.integers(0, SIZES[2], size=rows)
    np.save(Path(directory) / "X.npy", X)
    np.save(Path(directory) / "y.npy", y)
    return (f"synthetic, MNIST-shaped ({rows:,} x 784 float32, labels 0..9; "
            "MNIST not fetched)")


#: the engine that runs fastnn-numba in another Python (--baseline-python)
BASELINE_ENGINE = "fastnn-baseline"


def run_worker(engine, threads, extra_args, baseline_python=None):
    """Run this script as a worker with the thread variables pinned; its JSON result.

    ``fastnn-baseline`` is the fastnn-numba worker run by ``baseline_python``,
    another environment's interpreter (another fastnn installed there).
    """
    env = dict(os.environ)
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    python = sys.executable
    if engine == BASELINE_ENGINE:
        python, engine = baseline_python, "fastnn-numba"
    command = [python, os.path.abspath(__file__), "--worker", engine,
               "--threads", str(threads), *map(str, extra_args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} worker failed ({done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt_seconds(value):
    return f"{value:.3g}" if value >= 0.1 else f"{value:.2g}"


def fmt_megabytes(value):
    return "n/a" if value is None else f"{value / 1e6:,.0f}"


def build_table(results, batch_sizes, engines, timed_rows, peak, job=JOBS["mnist"]):
    """The Markdown table: one row per batch size and engine.

    The dense job's last columns are GFLOP/s against the sgemm peak; a sparse
    job's is the peak memory growth of the timed calls (the largest over the
    rounds, ``results[(b, engine, "rss")]``), where a dense copy of ``X``
    would show.
    """
    if job.sparse:
        lines = ["| batch | engine | s/epoch (median) | range | rows timed | × fastnn-numba "
                 "| peak RSS growth (MB) |",
                 "|---:|---|---:|---:|---:|---:|---:|"]
    else:
        lines = ["| batch | engine | s/epoch (median) | range | rows timed | × fastnn-numba "
                 "| GFLOP/s | % of sgemm peak |",
                 "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for b in batch_sizes:
        scale = job.epoch_rows / timed_rows[b]
        base = results.get((b, BASELINE))
        base_median = statistics.median(base) * scale if base else None
        for engine in engines:
            times = results.get((b, engine))
            if not times:
                lines.append(f"| {b} | {engine} | failed |" + " |" * (4 if job.sparse else 5))
                continue
            per_epoch = [t * scale for t in times]
            median = statistics.median(per_epoch)
            ratio = f"{median / base_median:.2f}" if base_median else "n/a"
            if job.sparse:
                growth = [g for g in results.get((b, engine, "rss"), []) if g is not None]
                last = f"{fmt_megabytes(max(growth)) if growth else 'n/a'} |"
            else:
                gflops = EPOCH_FLOP / median / 1e9
                share = f"{100 * gflops / peak:.0f} %" if peak else "n/a"
                last = f"{gflops:.1f} | {share} |"
            lines.append(f"| {b} | {engine} | {fmt_seconds(median)} | "
                         f"{fmt_seconds(min(per_epoch))}–{fmt_seconds(max(per_epoch))} | "
                         f"{timed_rows[b]:,} | {ratio} | {last}")
    return lines


def parse_list(text, convert=str):
    return [convert(item) for item in text.split(",") if item.strip()]


def driver(args):
    job = JOBS[args.job]
    engines = parse_list(args.engines) if args.engines is not None else list(job.engines)
    unknown = [e for e in engines if e not in job.engines]
    if unknown:
        sys.exit(f"unknown engine(s) {unknown} for --job {job.name}; choose from "
                 f"{', '.join(job.engines)}")
    batch_text = args.batch_sizes if args.batch_sizes is not None else job.batch_sizes
    try:
        batch_sizes = parse_list(batch_text, int)
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1:
        sys.exit(f"--batch-sizes must be positive integers; got {batch_text!r}")
    if args.threads < 1:
        sys.exit(f"--threads must be at least 1; got {args.threads}")

    notes = []
    available = []
    if args.baseline_python:
        engines.append(BASELINE_ENGINE)
    for engine in engines:
        if engine == BASELINE_ENGINE:
            available.append(engine)
            continue
        module, install = REQUIREMENTS[engine]
        if importlib.util.find_spec(module) is None:
            notes.append(f"{engine}: skipped, {module} is not installed ({install})")
            print(notes[-1], flush=True)
        else:
            available.append(engine)

    quick = args.quick
    rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    epochs = args.epochs if args.epochs is not None else (1 if quick else 2)
    total_rows = args.rows if args.rows is not None else (job.epoch_rows // 10 if quick
                                                          else job.epoch_rows)
    batch1_rows = min(args.batch1_rows if args.batch1_rows is not None
                      else (300 if quick else 3_000), total_rows)
    timed_rows = {b: (batch1_rows if b == 1 else total_rows) for b in batch_sizes}
    sgemm_size = 1024 if quick else args.sgemm_size
    if min(rounds, epochs, total_rows, batch1_rows, sgemm_size) < 1:
        sys.exit("--rounds, --epochs, --rows, --batch1-rows and --sgemm-size must be positive")

    results = {}
    peaks = []
    seen = {}
    failed = False
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fastnn-bench-peers-") as data_dir:
        source = prepare_data(args.data, total_rows, data_dir, job)
        print(f"job: {job.name}\ndata: {source}\nthreads: {args.threads}; rounds: {rounds}; "
              f"timed epochs per worker: {epochs}; machine: {machine_name()}", flush=True)
        for r in range(1, rounds + 1):
            # the sgemm peak is what the dense job's GFLOP/s are set against
            if not job.sparse:
                try:
                    out = run_worker("sgemm", args.threads, ["--sgemm-size", sgemm_size,
                                                             "--epochs", 5])
                    peaks.extend(out["gflops"])
                    seen["sgemm"] = out
                except RuntimeError as error:
                    print(error, file=sys.stderr)
                    failed = True
            for b in batch_sizes:
                for engine in available:
                    warm = max(4 * b, 1_000 if b > 1 else 100)
                    try:
                        out = run_worker(engine, args.threads, [
                            "--job", job.name, "--data-dir", data_dir, "--batch-size", b,
                            "--timed-rows", timed_rows[b], "--warmup-rows", warm,
                            "--epochs", epochs], args.baseline_python)
                    except RuntimeError as error:
                        print(error, file=sys.stderr)
                        failed = True
                        continue
                    results.setdefault((b, engine), []).extend(out["seconds"])
                    results.setdefault((b, engine, "rounds"), []).append(
                        statistics.median(out["seconds"]))
                    results.setdefault((b, engine, "rss"), []).append(out.get("rss_growth"))
                    if engine != BASELINE_ENGINE:  # the same library names, other versions
                        seen[engine] = out
                    if "inner_seconds" in out:
                        results.setdefault((b, engine, "inner"), []).extend(out["inner_seconds"])
                    per_epoch = (statistics.median(out["seconds"]) * job.epoch_rows
                                 / timed_rows[b])
                    print(f"round {r}/{rounds}  batch {b:4d}  {engine:13s} "
                          f"{per_epoch:8.3f} s/epoch", flush=True)
    elapsed = time.perf_counter() - started

    peak = max(peaks) if peaks else None
    lines = build_table(results, batch_sizes, available, timed_rows, peak, job)
    versions = {}
    for out in seen.values():
        versions.update(out.get("versions", {}))
    blas = sorted({f"{api} {version}" for out in seen.values()
                   for api, version, _ in out.get("blas", [])})
    pools = "; ".join(
        engine + (f" {out['engine_threads']}" if "engine_threads" in out else "")
        + (f" (BLAS {'/'.join(str(p[2]) for p in out['blas'])})" if out.get("blas") else "")
        for engine, out in seen.items())
    header = [
        f"Machine: {machine_name()}, {default_threads()} cores available, "
        f"{args.threads} thread(s) per engine.",
        f"Threads seen by the workers (engine, and BLAS pools outside fastnn's calls): {pools}.",
        f"Data: {source}.",
        f"Job: {job.summary}; median of {rounds} round(s) x {epochs} epoch(s); one epoch = "
        f"{job.epoch_rows:,} rows.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + (f"; BLAS: {', '.join(blas)}" if blas else "") + ".",
    ]
    if job.sparse:
        dense_copy = max(timed_rows.values()) * job.sizes[0] * 4
        header += [
            "Peak RSS growth: how far each worker's peak resident memory "
            "(getrusage ru_maxrss) rose during its timed fit / partial_fit / epoch-loop "
            "calls above the peak that loading the data and the warm-up had reached, the "
            f"largest over the rounds; a dense float32 copy of the timed X would be "
            f"{fmt_megabytes(dense_copy)} MB.",
            "",
        ]
    else:
        header += [
            (f"sgemm peak at {args.threads} thread(s): {peak:.0f} GFLOP/s (best "
             f"{sgemm_size}x{sgemm_size} float32 scipy.linalg.blas.sgemm)." if peak
             else "sgemm peak: not measured."),
            f"GFLOP/s = {EPOCH_FLOP / 1e9:.2f} GFLOP per epoch / (s/epoch); per row "
            "4 x (784*200 + 200*10) + 2 x 200*10 FLOP (forward, weight gradients, hidden "
            "delta).",
            "",
        ]
    footer = [""]
    for b in batch_sizes:
        for engine in available:
            inner = results.get((b, engine, "inner"))
            if inner:
                median = statistics.median(inner) * job.epoch_rows / timed_rows[b]
                footer.append(f"- batch {b}, {engine}: {fmt_seconds(median)} s/epoch in fit's "
                              "own epoch time (history['time'], without input checks).")
    for b in batch_sizes:
        sparse, dense = results.get((b, BASELINE)), results.get((b, DENSE_TWIN))
        if sparse and dense:
            footer.append(f"- batch {b}: fastnn-numba on CSR / on the same rows dense = "
                          f"{statistics.median(sparse) / statistics.median(dense):.3f}"
                          + paired_ratios(results, b, BASELINE, DENSE_TWIN))
    if args.baseline_python:
        for b in batch_sizes:
            new, old = results.get((b, BASELINE)), results.get((b, BASELINE_ENGINE))
            if new and old:
                footer.append(f"- batch {b}: fastnn-numba / fastnn-baseline = "
                              f"{statistics.median(new) / statistics.median(old):.3f}"
                              + paired_ratios(results, b, BASELINE, BASELINE_ENGINE)
                              + f" (baseline: {args.baseline_python})")
    footer += [f"- {note}" for note in notes]
    took = f"{elapsed / 60:.1f} min" if elapsed >= 60 else f"{elapsed:.0f} s"
    footer.append(f"- Run took {took}: python scripts/bench_peers.py " + " ".join(sys.argv[1:]))
    text = "\n".join(header + lines + footer) + "\n"
    print()
    print(text)
    if args.output:
        Path(args.output).write_text(text)
        print(f"written to {args.output}")
    return 1 if failed else 0


def paired_ratios(results, b, engine, other):
    """The ratio of two engines' times round by round, as text to follow the ratio of
    their medians: on a shared machine the load drifts between rounds, and both
    engines of one round ran minutes apart at most, so the median of the
    per-round ratios and the ratio of the best epochs are steadier than the
    ratio of the medians of all epochs."""
    mine, theirs = results.get((b, engine, "rounds")), results.get((b, other, "rounds"))
    if not mine or not theirs or len(mine) != len(theirs):
        return ""
    ratios = [x / y for x, y in zip(mine, theirs)]
    best = min(results[(b, engine)]) / min(results[(b, other)])
    spread = f" (rounds {min(ratios):.3f}-{max(ratios):.3f})" if len(ratios) > 1 else ""
    return (f"; round by round, median {statistics.median(ratios):.3f}{spread}; best epoch "
            f"against best epoch {best:.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Seconds per epoch of one training job (MNIST, or sparse inputs): fastnn "
                    "(numba, numpy) against PyTorch and scikit-learn, each in its own process "
                    "with pinned threads.",
        epilog="Peers: python -m pip install torch==2.13.0 scikit-learn")
    parser.add_argument("--job", choices=list(JOBS), default="mnist",
                        help="mnist (dense, the default), sparse-text (20,000 x 50,000 CSR "
                             "tf-idf rows) or sparse-mnist (MNIST as CSR, and dense for "
                             "fastnn-numba-dense)")
    parser.add_argument("--batch-sizes", default=None,
                        help="comma-separated (default: 1,32,100,256 for mnist, 64 for "
                             "sparse-text, 100 for sparse-mnist)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of alternating engines (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="threads per engine (default: all cores, %(default)s)")
    parser.add_argument("--engines", default=None,
                        help=f"comma-separated subset of {','.join(ENGINES)} (default: all; "
                             f"sparse-mnist adds {DENSE_TWIN})")
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs per worker (default 2; 1 with --quick)")
    parser.add_argument("--batch1-rows", type=int, default=None,
                        help="rows timed at batch size 1, scaled to an epoch (default 3000; "
                             "300 with --quick)")
    parser.add_argument("--data", choices=["auto", "mnist", "synthetic"], default="auto",
                        help="MNIST when fetched (auto), required, or synthetic (the mnist "
                             "and sparse-mnist jobs; sparse-text's data is always synthetic)")
    parser.add_argument("--sgemm-size", type=int, default=2048,
                        help="side of the square sgemm that measures the peak")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: a tenth of the job's rows (6,000 for mnist, scaled "
                             "to an epoch), 1 round, 1 epoch")
    parser.add_argument("--output", help="also write the Markdown to this file")
    parser.add_argument("--baseline-python", metavar="PYTHON",
                        help="also time fastnn-numba under this interpreter (another "
                             "environment with another fastnn: an A/B of two commits)")
    # hidden: rows of data used at batch sizes above 1 (tests), and the worker mode
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=[*ALL_ENGINES, "sgemm"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timed-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup-rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
