"""One MNIST training job, run by fastnn and by its peers: seconds per epoch, side by side.

The job: a 784-200-10 network, relu hidden layer, softmax output with
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
the table gives the median over all rounds.  Batch size 1 (per-sample SGD)
is timed on a subset of the rows and scaled to a 60,000-row epoch.

An sgemm worker (the same pinning) times a square float32
``scipy.linalg.blas.sgemm`` each round; its best rate is the machine's peak
that the achieved GFLOP/s are compared with.

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
from pathlib import Path

SIZES = (784, 200, 10)
EPOCH_ROWS = 60_000
LEARNING_RATE = 0.1
SEED = 0

#: forward + weight gradients (2 FLOP per multiply-add each) + the hidden delta
FLOP_PER_ROW = 4 * (784 * 200 + 200 * 10) + 2 * 200 * 10
EPOCH_FLOP = EPOCH_ROWS * FLOP_PER_ROW

ENGINES = ("fastnn-numba", "fastnn-numpy", "torch", "sklearn")
#: the module each engine needs, and how to get it when it is missing
REQUIREMENTS = {
    "fastnn-numba": ("fastnn", "python -m pip install -e ."),
    "fastnn-numpy": ("fastnn", "python -m pip install -e ."),
    "torch": ("torch", "python -m pip install torch==2.13.0"),
    "sklearn": ("sklearn", "python -m pip install scikit-learn"),
}
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


def _time_epochs(run_epoch, epochs):
    seconds = []
    for _ in range(epochs):
        started = time.perf_counter()
        run_epoch()
        seconds.append(time.perf_counter() - started)
    return seconds


def _work_fastnn(backend, X, y, warm, batch_size, epochs, threads):
    import numba

    import fastnn
    from fastnn import Network

    net = Network(list(SIZES), activation="relu", output="softmax", dtype="float32", seed=SEED,
                  backend=backend, n_threads=threads)
    net.fit(X[:warm], y[:warm], epochs=1, batch_size=batch_size, lr=LEARNING_RATE)
    inner = []

    def run_epoch():
        history = net.fit(X, y, epochs=1, batch_size=batch_size, lr=LEARNING_RATE,
                          momentum=0.0, weight_decay=0.0, shuffle=True)
        inner.extend(history["time"])

    seconds = _time_epochs(run_epoch, epochs)
    import numpy
    versions = {"fastnn": fastnn.__version__, "numpy": numpy.__version__,
                "numba": numba.__version__}
    return seconds, {"inner_seconds": inner, "versions": versions,
                     "engine_threads": net.n_threads}


def _work_torch(X, y, warm, batch_size, epochs, threads):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.0,
                                weight_decay=0.0)
    generator = torch.Generator().manual_seed(SEED)
    X_all, y_all = torch.from_numpy(X), torch.from_numpy(y)

    def run_epoch(X_t=X_all, y_t=y_all):
        order = torch.randperm(X_t.shape[0], generator=generator)
        for start in range(0, X_t.shape[0], batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X_t[rows]), y_t[rows])
            loss.backward()
            optimizer.step()

    run_epoch(X_all[:warm], y_all[:warm])
    seconds = _time_epochs(run_epoch, epochs)
    return seconds, {"versions": {"torch": torch.__version__},
                     "engine_threads": torch.get_num_threads()}


def _work_sklearn(X, y, warm, batch_size, epochs, threads):
    import warnings

    import numpy as np
    import sklearn
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(SIZES[1],), activation="relu", solver="sgd",
                          learning_rate="constant", learning_rate_init=LEARNING_RATE,
                          momentum=0.0, nesterovs_momentum=False, batch_size=batch_size,
                          alpha=0.0, max_iter=1, shuffle=True, random_state=SEED)
    with warnings.catch_warnings():
        # max_iter=1 is the point: one epoch per call, never converged
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.partial_fit(X[:warm], y[:warm], classes=np.arange(SIZES[2]))
        seconds = _time_epochs(lambda: model.partial_fit(X, y), epochs)
    if model.coefs_[0].dtype != np.float32:
        raise RuntimeError(f"scikit-learn trained in {model.coefs_[0].dtype}, not float32")
    # no threads of its own: its matrix products are NumPy's BLAS calls
    return seconds, {"versions": {"sklearn": sklearn.__version__}}


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
    seconds = _time_epochs(lambda: sgemm(1.0, A, B, beta=0.0, c=C, overwrite_c=True), calls)
    return seconds, {"gflops": [2.0 * n ** 3 / s / 1e9 for s in seconds],
                     "versions": {"scipy": scipy.__version__}}


def worker(args):
    """Time one engine at one batch size; print one JSON line."""
    if args.worker == "sgemm":
        seconds, extra = _work_sgemm(args.sgemm_size, args.epochs)
    else:
        import numpy as np

        X = np.load(Path(args.data_dir) / "X.npy")[:args.timed_rows]
        y = np.load(Path(args.data_dir) / "y.npy")[:args.timed_rows]
        warm = min(args.warmup_rows, X.shape[0])
        if args.worker.startswith("fastnn-"):
            seconds, extra = _work_fastnn(args.worker[len("fastnn-"):], X, y, warm,
                                          args.batch_size, args.epochs, args.threads)
        elif args.worker == "torch":
            seconds, extra = _work_torch(X, y, warm, args.batch_size, args.epochs, args.threads)
        else:
            seconds, extra = _work_sklearn(X, y, warm, args.batch_size, args.epochs,
                                           args.threads)
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


def prepare_data(source, rows, directory):
    """Write ``X.npy`` (float32, rows x 784) and ``y.npy`` (int64) into ``directory``.

    Returns a sentence saying where the data came from.
    """
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


def build_table(results, batch_sizes, engines, timed_rows, peak):
    """The Markdown table: one row per batch size and engine."""
    lines = ["| batch | engine | s/epoch (median) | range | rows timed | × fastnn-numba "
             "| GFLOP/s | % of sgemm peak |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for b in batch_sizes:
        scale = EPOCH_ROWS / timed_rows[b]
        base = results.get((b, BASELINE))
        base_median = statistics.median(base) * scale if base else None
        for engine in engines:
            times = results.get((b, engine))
            if not times:
                lines.append(f"| {b} | {engine} | failed | | | | | |")
                continue
            per_epoch = [t * scale for t in times]
            median = statistics.median(per_epoch)
            ratio = f"{median / base_median:.2f}" if base_median else "n/a"
            gflops = EPOCH_FLOP / median / 1e9
            share = f"{100 * gflops / peak:.0f} %" if peak else "n/a"
            lines.append(f"| {b} | {engine} | {fmt_seconds(median)} | "
                         f"{fmt_seconds(min(per_epoch))}–{fmt_seconds(max(per_epoch))} | "
                         f"{timed_rows[b]:,} | {ratio} | {gflops:.1f} | {share} |")
    return lines


def parse_list(text, convert=str):
    return [convert(item) for item in text.split(",") if item.strip()]


def driver(args):
    engines = parse_list(args.engines)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        sys.exit(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    try:
        batch_sizes = parse_list(args.batch_sizes, int)
    except ValueError:
        batch_sizes = []
    if not batch_sizes or min(batch_sizes) < 1:
        sys.exit(f"--batch-sizes must be positive integers; got {args.batch_sizes!r}")
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
    total_rows = args.rows if args.rows is not None else (6_000 if quick else EPOCH_ROWS)
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
        source = prepare_data(args.data, total_rows, data_dir)
        print(f"data: {source}\nthreads: {args.threads}; rounds: {rounds}; timed epochs per "
              f"worker: {epochs}; machine: {machine_name()}", flush=True)
        for r in range(1, rounds + 1):
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
                            "--data-dir", data_dir, "--batch-size", b,
                            "--timed-rows", timed_rows[b], "--warmup-rows", warm,
                            "--epochs", epochs], args.baseline_python)
                    except RuntimeError as error:
                        print(error, file=sys.stderr)
                        failed = True
                        continue
                    results.setdefault((b, engine), []).extend(out["seconds"])
                    if engine != BASELINE_ENGINE:  # the same library names, other versions
                        seen[engine] = out
                    if "inner_seconds" in out:
                        results.setdefault((b, engine, "inner"), []).extend(out["inner_seconds"])
                    per_epoch = statistics.median(out["seconds"]) * EPOCH_ROWS / timed_rows[b]
                    print(f"round {r}/{rounds}  batch {b:4d}  {engine:13s} "
                          f"{per_epoch:8.3f} s/epoch", flush=True)
    elapsed = time.perf_counter() - started

    peak = max(peaks) if peaks else None
    lines = build_table(results, batch_sizes, available, timed_rows, peak)
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
        "Job: 784-200-10 relu/softmax, plain SGD lr 0.1, float32, shuffled; "
        f"median of {rounds} round(s) x {epochs} epoch(s); one epoch = 60,000 rows.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
        + (f"; BLAS: {', '.join(blas)}" if blas else "") + ".",
        (f"sgemm peak at {args.threads} thread(s): {peak:.0f} GFLOP/s (best "
         f"{sgemm_size}x{sgemm_size} float32 scipy.linalg.blas.sgemm)." if peak
         else "sgemm peak: not measured."),
        f"GFLOP/s = {EPOCH_FLOP / 1e9:.2f} GFLOP per epoch / (s/epoch); per row "
        "4 x (784*200 + 200*10) + 2 x 200*10 FLOP (forward, weight gradients, hidden delta).",
        "",
    ]
    footer = [""]
    for b in batch_sizes:
        for engine in available:
            inner = results.get((b, engine, "inner"))
            if inner:
                median = statistics.median(inner) * EPOCH_ROWS / timed_rows[b]
                footer.append(f"- batch {b}, {engine}: {fmt_seconds(median)} s/epoch in fit's "
                              "own epoch time (history['time'], without input checks).")
    if args.baseline_python:
        for b in batch_sizes:
            new, old = results.get((b, BASELINE)), results.get((b, BASELINE_ENGINE))
            if new and old:
                footer.append(f"- batch {b}: fastnn-numba / fastnn-baseline = "
                              f"{statistics.median(new) / statistics.median(old):.3f} "
                              f"(baseline: {args.baseline_python})")
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


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Seconds per MNIST epoch: fastnn (numba, numpy) against PyTorch and "
                    "scikit-learn, each in its own process with pinned threads.",
        epilog="Peers: python -m pip install torch==2.13.0 scikit-learn")
    parser.add_argument("--batch-sizes", default="1,32,100,256",
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of alternating engines (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=default_threads(),
                        help="threads per engine (default: all cores, %(default)s)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--epochs", type=int, default=None,
                        help="timed epochs per worker (default 2; 1 with --quick)")
    parser.add_argument("--batch1-rows", type=int, default=None,
                        help="rows timed at batch size 1, scaled to 60,000 (default 3000; "
                             "300 with --quick)")
    parser.add_argument("--data", choices=["auto", "mnist", "synthetic"], default="auto",
                        help="MNIST when fetched (auto), required, or synthetic")
    parser.add_argument("--sgemm-size", type=int, default=2048,
                        help="side of the square sgemm that measures the peak")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 6,000 rows (scaled to an epoch), 1 round, 1 epoch")
    parser.add_argument("--output", help="also write the Markdown to this file")
    parser.add_argument("--baseline-python", metavar="PYTHON",
                        help="also time fastnn-numba under this interpreter (another "
                             "environment with another fastnn: an A/B of two commits)")
    # hidden: rows of data used at batch sizes above 1 (tests), and the worker mode
    parser.add_argument("--rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=[*ENGINES, "sgemm"], help=argparse.SUPPRESS)
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
