"""Smoke test of ``scripts/bench_peers.py``: its workers run and its table has the promised shape.

Only the fastnn engines run (the peers are optional), on a few synthetic rows,
so this checks the plumbing (worker processes, thread pinning, JSON, the
Markdown table), not the speed.  The sparse job's memory column is checked
against the one thing it is there to show: a sparse fit makes no dense copy
of ``X``.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fastnn import Network

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_peers.py"
ENGINES = ("fastnn-numba", "fastnn-numpy")
ROW = re.compile(r"^\| (\d+) \| ([\w-]+) \| ([\d.e+-]+) \| ([\d.e+-]+)–([\d.e+-]+) \| ([\d,]+) "
                 r"\| ([\d.]+) \| ([\d.]+) \| (\d+) % \|$")
#: a sparse job's row: batch, engine, median, range, rows, ratio, peak RSS growth (MB)
SPARSE_ROW = re.compile(r"^\| (\d+) \| ([\w-]+) \| ([\d.e+-]+) \| ([\d.e+-]+)–([\d.e+-]+) "
                        r"\| ([\d,]+) \| ([\d.]+) \| ([\d,]+) \|$")
SPARSE_ENGINES = ("fastnn-numba", "fastnn-numba-dense", "fastnn-numpy")


def run_quick(tmp_path, *args):
    """The Markdown table of ``bench_peers.py --quick ARGS``, after checking that the run
    succeeded and printed the table it wrote."""
    output = tmp_path / "table.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", *args, "--output", str(output)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    text = output.read_text()
    assert text in done.stdout
    return text


def batch_100_rows(text, pattern, engines, rows_timed):
    """The table's batch-100 rows matched by ``pattern``, after checking what every job's
    rows share: one per engine in order, a median inside its range, the rows timed,
    and the first engine's ratio to itself."""
    rows = [pattern.match(line) for line in text.splitlines() if line.startswith("| 100 |")]
    assert all(rows), text
    assert [row.group(2) for row in rows] == list(engines)
    for row in rows:
        median, low, high = (float(row.group(i)) for i in (3, 4, 5))
        assert 0 < low <= median <= high
        assert row.group(6) == f"{rows_timed:,}"
    assert rows[0].group(7) == "1.00"  # the baseline's ratio to itself
    return rows


def test_quick_run_prints_one_row_per_engine(tmp_path):
    # compile the float32 kernels here, where the other tests would too: the
    # workers then load them from Numba's cache instead of compiling twice
    rng = np.random.default_rng(0)
    Network([784, 200, 10], dtype="float32").fit(rng.random((200, 784)), rng.integers(0, 10, 200),
                                                 epochs=1, batch_size=100)
    text = run_quick(tmp_path, "--engines", ",".join(ENGINES), "--batch-sizes", "100",
                     "--data", "synthetic", "--rows", "1000", "--threads", "1")
    rows = batch_100_rows(text, ROW, ENGINES, 1000)
    for row in rows:
        assert float(row.group(7)) > 0 and float(row.group(8)) > 0
    assert "synthetic" in text and "sgemm peak at 1 thread(s)" in text


def test_sparse_mnist_job_times_csr_and_dense_fits_without_a_dense_copy(tmp_path):
    rows = 20_000  # a dense float32 copy of X is 63 MB: far above the memory noise
    rng = np.random.default_rng(0)
    X = rng.random((200, 784), dtype=np.float32)
    X[X < 0.8] = 0
    # compile (or load) the CSR and dense plain-SGD kernels here, once, for the workers
    for inputs in (X, sp.csr_array(X)):
        Network([784, 200, 10], dtype="float32").fit(inputs, rng.integers(0, 10, 200),
                                                     epochs=1, batch_size=100)
    text = run_quick(tmp_path, "--job", "sparse-mnist", "--engines", ",".join(SPARSE_ENGINES),
                     "--data", "synthetic", "--rows", str(rows), "--threads", "1")
    table = batch_100_rows(text, SPARSE_ROW, SPARSE_ENGINES, rows)
    dense_copy = rows * 784 * 4 / 1e6
    assert f"a dense float32 copy of the timed X would be {dense_copy:,.0f} MB" in text
    growth = {row.group(2): int(row.group(8).replace(",", "")) for row in table}
    # the CSR fits (numba and numpy) never hold a dense X: a quarter of one is a wide margin
    assert growth["fastnn-numba"] < dense_copy / 4, text
    assert growth["fastnn-numpy"] < dense_copy / 4, text
    assert "density 20.0%" in text and "fastnn-numba on CSR / on the same rows dense" in text
    # the ratio paired round by round too, and best epoch against best epoch
    ratio = re.search(r"on the same rows dense = ([0-9.]+); round by round, median ([0-9.]+); "
                      r"best epoch against best epoch ([0-9.]+)", text)
    assert ratio, text
    # one round: its ratio is the ratio of the medians
    assert ratio.group(1) == ratio.group(2), text
