"""Smoke test of ``scripts/bench_peers.py``: its workers run and its table has the promised shape.

Only the fastnn engines run (the peers are optional), on 1,000 synthetic rows,
so this checks the plumbing (worker processes, thread pinning, JSON, the
Markdown table), not the speed.
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from fastnn import Network

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_peers.py"
ENGINES = ("fastnn-numba", "fastnn-numpy")
ROW = re.compile(r"^\| (\d+) \| ([\w-]+) \| ([\d.e+-]+) \| ([\d.e+-]+)–([\d.e+-]+) \| ([\d,]+) "
                 r"\| ([\d.]+) \| ([\d.]+) \| (\d+) % \|$")


def test_quick_run_prints_one_row_per_engine(tmp_path):
    # compile the float32 kernels here, where the other tests would too: the
    # workers then load them from Numba's cache instead of compiling twice
    rng = np.random.default_rng(0)
    Network([784, 200, 10], dtype="float32").fit(rng.random((200, 784)), rng.integers(0, 10, 200),
                                                 epochs=1, batch_size=100)
    output = tmp_path / "table.md"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--engines", ",".join(ENGINES),
         "--batch-sizes", "100", "--data", "synthetic", "--rows", "1000", "--threads", "1",
         "--output", str(output)],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    text = output.read_text()
    assert text in done.stdout
    rows = [ROW.match(line) for line in text.splitlines() if line.startswith("| 100 |")]
    assert all(rows), text
    assert [row.group(2) for row in rows] == list(ENGINES)
    for row in rows:
        median, low, high = (float(row.group(i)) for i in (3, 4, 5))
        assert 0 < low <= median <= high
        assert row.group(6) == "1,000"
        assert float(row.group(7)) > 0 and float(row.group(8)) > 0
    assert rows[0].group(7) == "1.00"  # the baseline's ratio to itself
    assert "synthetic" in text and "sgemm peak at 1 thread(s)" in text
