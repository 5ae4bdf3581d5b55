"""Endurance: 200 epochs with no memory growth (tracemalloc and RSS).

Fast enough (a few seconds) to run in every CI run rather than behind a marker.
"""

import os
import tracemalloc

import numpy as np
import pytest

from fastnn import Network


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
@pytest.mark.parametrize("options", [
    dict(batch_size=25, momentum=0.9),
    dict(batch_size=1),
    dict(batch_size=25, optimizer="adam", lr=1e-3, eval_every=7),
], ids=["momentum", "per-sample", "adam-chunked"])
def test_two_hundred_epochs_do_not_grow_memory(options):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 20))
    y = rng.integers(0, 4, 500)
    X_val, y_val = X[:100], y[:100]
    net = Network([20, 32, 4], seed=0)
    options = dict(lr=0.01) | options
    net.fit(X, y, epochs=2, **options)  # compile and warm every allocator first
    samples = {}

    def measure(network, history):
        epoch = len(history)
        if epoch in (20, 200):
            samples[epoch] = (tracemalloc.get_traced_memory()[0], rss_bytes())

    tracemalloc.start()
    try:
        history = net.fit(X if options["batch_size"] > 1 else X[:200],
                          y if options["batch_size"] > 1 else y[:200], epochs=200,
                          validation_data=(X_val, y_val), callbacks=[measure], **options)
    finally:
        tracemalloc.stop()
    assert len(history) == 200 and np.isfinite(history["loss"]).all()
    traced_growth = samples[200][0] - samples[20][0]
    rss_growth = samples[200][1] - samples[20][1]
    # the history itself grows by a few floats an epoch (and iterations with eval_every)
    allowance = 200 * 2_000 + (200 * 20 * 3 * 40 if "eval_every" in options else 0)
    assert traced_growth < allowance, f"Python-side memory grew {traced_growth} bytes"
    assert rss_growth < 4 * 2 ** 20, f"resident memory grew {rss_growth / 2**20:.1f} MiB"
