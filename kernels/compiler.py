"""Compiling what a call needs before it runs: the notice, the cache check, two processes.

A call of the kernels needs a handful of compiled functions ("units": the
layer steps, the parallel split, the output pass and an entry point, each
with one signature).  :func:`prepare` makes sure they are there before the
call, so that compile time is never counted as training time, and:

- says so once, on the ``fastnn`` logger, when something must be compiled
  (not when it loads from Numba's disk cache);
- when there is much to compile, a second core and a disk cache, compiles
  part of it in a second Python process at the same time.  The units are
  separate compiled functions that call each other through addresses
  (:mod:`fastnn.kernels.native_calls`), so each can be compiled anywhere; the
  two processes work through one list from its two ends (:func:`claim`), the
  other writes what it compiled to the same Numba cache, and this one loads
  it from there.  ``FASTNN_COMPILE_JOBS=1`` turns that off.  (Measured, 2-core
  Zen 3, three interleaved rounds: a cold ``fastnn.sklearn.MLPClassifier``
  fit of scikit-learn's digits took 14.0-15.4 s with one process, 9.2-10.3 s
  with two.)

The disk-cache check reads Numba's cache index (``Dispatcher._cache``, not a
public interface); anything unexpected there counts as "not cached", which
costs only the parallel split, never a wrong result.
"""

import hashlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

from fastnn.kernels.config import CACHE

logger = logging.getLogger("fastnn")

#: seconds of compilation a unit costs, with the helpers it is the first to
#: need (2-core AMD Zen 3, Dec 2026, scripts/compile_times.py with
#: FASTNN_COMPILE_JOBS=1): the order of the shared list, and whether there is
#: enough to share; the units divide themselves (see claim).  Units that link
#: the same helper each count it, since either may be the first to need it, in
#: either process: the sparse first layer's product and update share
#: parallel_first_layer (the update alone 2.6 s with it, the product 3.1, on
#: Sapphire Rapids; scaled here).  With the update counted without it (1.6), the
#: update went to the cheap end of the list, both processes compiled the
#: helper, and a cold sparse-SGD fit took 8.7 s against 7.8.
COST = {"run_plan": 2.8, "gradient_step": 3.0, "sgd_step": 2.4, "output_pass": 1.8,
        "delta_step": 1.8, "forward_step": 1.8, "parallel_step": 1.4,
        "per_sample_sgd_epoch": 2.8, "first_layer_product": 7.8, "first_layer_update": 6.6}
#: compile in two processes only when this much (seconds) is to be compiled
PARALLEL_THRESHOLD = 5.0
#: give up on the other process after this many seconds (and compile here)
WORKER_TIMEOUT = 600

_CHILD = r"""
import importlib, os, pickle, sys
with open(sys.argv[1], "rb") as handle:
    paths, units, claims = pickle.load(handle)
sys.path[:0] = paths
from fastnn.kernels.compiler import claim
for i, (module, name, signature) in enumerate(units):
    if claim(claims, i):
        getattr(importlib.import_module(module), name).compile(signature)
"""


def _cost(dispatcher):
    return COST.get(dispatcher.py_func.__name__, 1.0)


def is_compiled(dispatcher, signature):
    """Whether ``dispatcher`` has ``signature`` in memory."""
    return tuple(signature) in dispatcher.overloads


def is_cached(dispatcher, signature):
    """Whether Numba's disk cache holds ``dispatcher`` for ``signature`` (best effort)."""
    try:
        cache = dispatcher._cache
        key = cache._index_key(tuple(signature), dispatcher.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 - an internal interface: any surprise means "not cached"
        return False


def _jobs():
    value = os.environ.get("FASTNN_COMPILE_JOBS")
    if value is not None:
        try:
            return max(1, int(value))
        except ValueError:
            return 1
    try:
        return min(2, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return min(2, os.cpu_count() or 1)


def claim(claims, i):
    """Take unit ``i`` (an index or a name) of a shared list: True for the first process
    that asks.

    The two processes work through one list from its two ends, each claiming
    a unit (a file created with ``O_EXCL``, which only one can create) before
    compiling it, so the work divides itself however long each unit takes.
    """
    try:
        os.close(os.open(os.path.join(claims, str(i)), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _start_worker(units, claims):
    payload = pickle.dumps((list(sys.path), [(d.py_func.__module__, d.py_func.__name__, s)
                                             for d, s in units], claims))
    with tempfile.NamedTemporaryFile(prefix="fastnn-compile-", suffix=".pickle",
                                     delete=False) as handle:
        handle.write(payload)
    process = subprocess.Popen([sys.executable, "-c", _CHILD, handle.name],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    process.payload = handle.name
    return process


def _finish(worker):
    """Wait for the other compile process (killed after ``WORKER_TIMEOUT`` s)."""
    try:
        _, stderr = worker.communicate(timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()
        _, stderr = worker.communicate()
    finally:
        os.unlink(worker.payload)
    if worker.returncode != 0:
        last = stderr.decode(errors="replace").strip().splitlines()[-1:]
        logger.info("fastnn: the second compile process failed (%s); compiling here",
                    last[0] if last else f"exit status {worker.returncode}")


def _listing(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class Sharing:
    """Processes that prepare the same kernels at the same time share the work.

    MPI ranks on one machine are such processes: instead of each compiling
    everything (on as many cores as there are ranks), each claims units of
    one shared list (:func:`claim`, in the directory ``claims``, which the
    processes on one machine must see alike), all wait for one another
    (``wait``: every process calls it exactly once), then each loads from the
    disk cache what the others compiled.

    Parameters
    ----------
    claims : str
        A directory, the same for every process on a machine, new for each prepare.
    wait : callable
        Returns when every process has called it (an MPI barrier).
    notify : bool
        Whether this process logs the notice (one of them should).
    """

    def __init__(self, claims, wait, notify):
        self.claims, self.wait, self.notify = claims, wait, notify


def prepare(groups, dtype_name, sharing=None, after=()):
    """Compile, or load from the cache, the units of every group.

    Parameters
    ----------
    groups : list of (str, list of (numba Dispatcher, tuple of Numba types))
        What a group of units is called in the notice (``"SGD"``), and its units.
    dtype_name : str
        ``"float32"`` or ``"float64"``, for the notice.
    sharing : Sharing, optional
        Other processes preparing the same at the same time (MPI ranks); then
        no second compile process is started.
    after : collection of numba Dispatcher
        Units that call others of the list directly (linked, not through an
        address): compiled here once the shared part is done, so that their
        callees load from the cache instead of being compiled twice.

    Returns
    -------
    float
        Seconds spent compiling (0 when everything was cached).
    """
    units, names = [], []
    for name, group in groups:
        group = [(d, tuple(s)) for d, s in group]
        if any(not is_compiled(d, s) and not is_cached(d, s) for d, s in group):
            names.append(name)
        units += [u for u in group if u not in units]
    missing = [(d, s) for d, s in units if not is_compiled(d, s)]
    to_compile = [(d, s) for d, s in missing if not is_cached(d, s)]
    what = f"the {dtype_name} {_listing(names)} kernels" if names else ""
    started = time.perf_counter()
    notify = sharing is None or sharing.notify
    if sharing is not None and not CACHE:
        # nothing can pass between the processes: each compiles what it needs
        sharing.wait()
        sharing = None
    if to_compile and notify:
        logger.warning("fastnn: compiling %s (%s)", what,
                       "first use on this machine; cached afterwards" if CACHE
                       else "no writable cache: compiled in every new process")
    shared = [(d, s) for d, s in to_compile if d not in after]
    if sharing is not None:
        _compile_shared(shared, sharing)
    else:
        _compile_here_and_in_a_worker([(d, s) for d, s in missing if d not in after], shared)
    # loaded from the cache the other processes filled (or compiled here if they failed)
    for dispatcher, signature in missing:
        dispatcher.compile(signature)
    seconds = time.perf_counter() - started if to_compile else 0.0
    if to_compile and notify:
        logger.info("fastnn: compiled %s in %.1f s", what, seconds)
    return seconds


def _compile_here_and_in_a_worker(missing, to_compile):
    """Compile ``to_compile``, sharing it with a second process when that pays."""
    worker = None
    if (CACHE and len(to_compile) > 1 and _jobs() > 1
            and sum(_cost(d) for d, _ in to_compile) >= PARALLEL_THRESHOLD):
        # the other process takes the costliest units first, this one the
        # cheapest (it starts at once, the other some seconds later)
        to_compile.sort(key=lambda u: -_cost(u[0]))
        claims = tempfile.mkdtemp(prefix="fastnn-compile-")
        try:
            worker = _start_worker(to_compile, claims)
        except OSError:  # no way to start a process here: compile it all in this one
            worker = None
    if worker is None:
        for dispatcher, signature in missing:
            dispatcher.compile(signature)
        return
    try:
        for i in reversed(range(len(to_compile))):
            if claim(claims, i):
                dispatcher, signature = to_compile[i]
                dispatcher.compile(signature)
    finally:
        _finish(worker)
        shutil.rmtree(claims, ignore_errors=True)


def _compile_shared(to_compile, sharing):
    """Compile the units of ``to_compile`` no other process has claimed, then wait for
    the others (see :class:`Sharing`)."""
    to_compile.sort(key=lambda u: (-_cost(u[0]), u[0].py_func.__name__, str(u[1])))
    try:
        for dispatcher, signature in to_compile:
            # named by what it is: the processes' lists may differ (rank 0 validates)
            unit = f"{dispatcher.py_func.__module__}.{dispatcher.py_func.__qualname__}{signature}"
            if claim(sharing.claims, hashlib.sha1(unit.encode()).hexdigest()):
                dispatcher.compile(signature)
    finally:
        sharing.wait()
    shutil.rmtree(sharing.claims, ignore_errors=True)
