"""Smoke test of ``scripts/bench_batch_steps.py``: every step runs and gets a row.

A tiny network on a few hundred rows, so this checks the plumbing (the
compiled step loops, thread scopes, the table), not the speed.
"""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_batch_steps.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_batch_steps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_step_gets_a_positive_time(capsys):
    script = _load_script()
    script.main(["--sizes", "30,12,4", "--batch", "7", "--rows", "300", "--repeat", "3"])
    table = [line.strip("|").split("|") for line in capsys.readouterr().out.splitlines()
             if line.startswith("| ") and not line.startswith("| step |")]
    names = [cells[0].strip() for cells in table]
    steps = script._steps((30, 12, 4), 7)
    assert names == [name for name, *_ in steps] + ["sum of the steps", "fit epoch / batches"]
    for cells in table:
        times = [float(cell) for cell in cells[2:]]
        assert times and all(t > 0 for t in times), cells
