"""Out-of-core training: fit on memmaps and other array-likes, streamed in blocks."""

import functools
import threading
import tracemalloc

import numpy as np
import pytest
import scipy.sparse

from fastnn import Network, schedules
from fastnn.streaming import StreamDataError, block_schedule, is_out_of_core

import helpers

#: overlapping classes, so the gradients stay large for several epochs
blobs = functools.partial(helpers.blobs, n=3000, d=20, spread=1.0)


def on_disk(tmp_path, name, array):
    """``array`` saved as ``.npy`` and opened as a read-only memmap."""
    path = tmp_path / f"{name}.npy"
    np.save(path, array)
    return np.load(path, mmap_mode="r")


class BlockArray:
    """An array-like as h5py or zarr present one: shape, dtype and row slicing.

    Records every slice it is asked for.
    """

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.reads = []
        self.readers = set()

    def __getitem__(self, index):
        self.reads.append(index)
        self.readers.add(threading.current_thread().name)
        return self._array[index].copy()


# ------------------------------------------------------------- same numbers

@pytest.mark.parametrize("block_rows", [256, 250, 7])
def test_memmap_without_shuffle_equals_in_memory(tmp_path, block_rows):
    """Identical row order, so bit-identical parameters: with whole-batch blocks, with
    blocks that end mid-batch (rows carried over), and with blocks smaller than a batch."""
    X, y = blobs()
    X_disk = on_disk(tmp_path, "X", X)
    in_memory = Network([20, 16, 3], dtype="float64", seed=0)
    streamed = Network([20, 16, 3], dtype="float64", seed=0)
    expected = in_memory.fit(X, y, epochs=3, batch_size=32, momentum=0.9, shuffle=False)
    history = streamed.fit(X_disk, y, epochs=3, batch_size=32, momentum=0.9, shuffle=False,
                           block_rows=block_rows)
    assert X.shape[0] >= 10 * block_rows or block_rows == 7
    np.testing.assert_array_equal(streamed.params, in_memory.params)
    assert history["loss"] == expected["loss"]
    assert history["error"] == expected["error"]


def test_shuffle_visits_blocks_then_rows_in_random_order(tmp_path):
    """Streaming with shuffle is in-memory training over the row order that
    block_schedule draws from the network's shuffle generator."""
    X, y = blobs(n=1000)
    X_disk = on_disk(tmp_path, "X", X)
    streamed = Network([20, 16, 3], dtype="float64", seed=4)
    replay = Network([20, 16, 3], dtype="float64", seed=4)
    rng = np.random.default_rng()
    rng.bit_generator.state = streamed.training_state.rng_state
    streamed.fit(X_disk, y, epochs=2, batch_size=16, momentum=0.9, block_rows=100)
    for epoch in range(2):
        blocks = list(block_schedule(1000, 100, True, rng))
        starts = [start for start, _, _ in blocks]
        assert sorted(starts) == list(range(0, 1000, 100)) and starts != sorted(starts)
        rows = np.concatenate([start + order for start, _, order in blocks])
        assert not np.array_equal(rows[:100], np.arange(blocks[0][0], blocks[0][1]))
        replay.fit(X[rows], y[rows], epochs=1, batch_size=16, momentum=0.9, shuffle=False,
                   warm_start=epoch > 0)
    np.testing.assert_array_equal(streamed.params, replay.params)


def test_data_in_one_block_shuffles_as_in_memory(tmp_path):
    X, y = blobs(n=1000)
    streamed = Network([20, 16, 3], dtype="float64", seed=2)
    in_memory = Network([20, 16, 3], dtype="float64", seed=2)
    streamed.fit(on_disk(tmp_path, "X", X), y, epochs=3, batch_size=32)  # default block
    in_memory.fit(X, y, epochs=3, batch_size=32)
    np.testing.assert_array_equal(streamed.params, in_memory.params)


def test_streamed_training_learns_and_reproduces(tmp_path):
    X, y = blobs(n=4000, spread=2.0)
    X_disk, y_disk = on_disk(tmp_path, "X", X.astype(np.float32)), on_disk(tmp_path, "y", y)
    histories, params = [], []
    for _ in range(2):
        net = Network([20, 32, 3], seed=1)
        histories.append(net.fit(X_disk, y_disk, epochs=4, batch_size=32, lr=0.05,
                                 momentum=0.9, block_rows=512))
        params.append(net.params.copy())
    loss = histories[0]["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert net.score(X, y) > 0.9
    np.testing.assert_array_equal(params[0], params[1])  # the seed fixes the block orders


def test_any_sliceable_array_like_is_streamed_in_contiguous_blocks(tmp_path):
    X, y = blobs(n=900)
    source = BlockArray(X)
    assert is_out_of_core(source) and is_out_of_core(on_disk(tmp_path, "X", X))
    assert not is_out_of_core(X) and not is_out_of_core(X.tolist())
    assert not is_out_of_core(scipy.sparse.csr_matrix(X))
    Network([20, 8, 3], seed=0).fit(source, y, epochs=2, batch_size=10)
    assert len(source.reads) == 2  # 900 rows fit in one default (64 MiB) block
    source.reads.clear()
    streamed = Network([20, 8, 3], dtype="float64", seed=0)
    in_memory = Network([20, 8, 3], dtype="float64", seed=0)
    streamed.fit(source, y, epochs=2, batch_size=10, shuffle=False, block_rows=200)
    in_memory.fit(X, y, epochs=2, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(streamed.params, in_memory.params)
    # each epoch reads each block once, as one contiguous slice, never the whole array
    expected = [slice(a, min(a + 200, 900)) for a in range(0, 900, 200)] * 2
    assert source.reads == expected
    # read in the background, while the main thread trains the previous block
    assert len(source.readers) == 1 and source.readers.pop().startswith("fastnn-reader")


# -------------------------------------------------------------------- memory

def test_peak_memory_is_bounded_by_the_block_not_the_data(tmp_path):
    n, d = 40_000, 200
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y = rng.integers(0, 10, n)
    X_disk = on_disk(tmp_path, "X", X)
    del X
    data_bytes = n * d * 4  # 32 MB

    def peak(fit):
        # compiled (or cache-loaded) kernels allocate Python objects on first use:
        # warm them up, run alone this test would otherwise measure the compiler
        Network([d, 16, 10], seed=0).fit(X_disk[:256], y[:256], epochs=1, batch_size=64,
                                         block_rows=128)
        tracemalloc.start()
        try:
            fit()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    streamed = peak(lambda: Network([d, 16, 10], seed=0).fit(
        X_disk, y, epochs=1, batch_size=64, block_rows=1024))
    # the same fit in memory converts the whole array: the measurement does see it
    in_memory = peak(lambda: Network([d, 16, 10], seed=0).fit(
        np.asarray(X_disk), y, epochs=1, batch_size=64))
    staging = 2 * (1024 + 64) * (d + 10 + 1) * 4  # two buffers: inputs, targets, weights
    assert in_memory > data_bytes
    assert streamed < data_bytes / 8
    assert streamed < 3 * staging + y.nbytes


# ------------------------------------------------------------------ features

def test_validation_weights_schedules_and_early_stopping_work_streamed(tmp_path):
    """With shuffle=False everything matches in-memory fit: sample and class
    weights, a streamed validation set, eval_every, a schedule and early stopping."""
    X, y = blobs(n=1200, seed=2)
    X_val, y_val = blobs(n=300, seed=3)
    w = np.random.default_rng(5).uniform(0.5, 1.5, 1200)
    options = dict(epochs=12, batch_size=32, lr=0.2, momentum=0.9, shuffle=False,
                   class_weight="balanced", eval_every=10, patience=2,
                   lr_schedule=schedules.StepLR(2, gamma=0.7))
    in_memory = Network([20, 16, 3], dtype="float64", seed=0)
    streamed = Network([20, 16, 3], dtype="float64", seed=0)
    expected = in_memory.fit(X, y, sample_weight=w, validation_data=(X_val, y_val), **options)
    history = streamed.fit(on_disk(tmp_path, "X", X), on_disk(tmp_path, "y", y),
                           sample_weight=on_disk(tmp_path, "w", w),
                           validation_data=(on_disk(tmp_path, "Xv", X_val), y_val),
                           block_rows=100, **options)
    np.testing.assert_array_equal(streamed.params, in_memory.params)
    assert history.best_epoch == expected.best_epoch and history.stop_reason == expected.stop_reason
    for key in ("loss", "error", "lr"):
        assert history[key] == expected[key]
    for key in ("val_loss", "val_error"):
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-12)
    np.testing.assert_allclose(history.validations["val_loss"],
                               expected.validations["val_loss"], rtol=1e-12)


def test_validation_split_of_a_streamed_regression(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 4)) + 3.0
    y = X @ [1.0, -2.0, 0.5, 0.0] + 100.0  # far from 0: R² must not lose its precision
    a = Network([4, 1], output="identity", dtype="float64", seed=0)
    b = Network([4, 1], output="identity", dtype="float64", seed=0)
    expected = a.fit(X, y, epochs=3, lr=0.01, shuffle=False, validation_split=0.3)
    history = b.fit(on_disk(tmp_path, "X", X), y, epochs=3, lr=0.01, shuffle=False,
                    validation_split=0.3, block_rows=64)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_allclose(history["val_r2"], expected["val_r2"], rtol=1e-10)
    np.testing.assert_allclose(history["val_loss"], expected["val_loss"], rtol=1e-12)


# ---------------------------------------------------------------- bad input

def test_a_bad_block_names_its_rows_and_restores_the_epoch_start(tmp_path):
    X, y = blobs(n=3000)
    X_disk = on_disk(tmp_path, "X", X)
    net = Network([20, 16, 3], dtype="float64", seed=0)
    net.fit(X_disk, y, epochs=1, batch_size=32, momentum=0.9, shuffle=False, block_rows=256)
    after_first = net.params.copy()
    threads = threading.active_count()

    writable = np.load(tmp_path / "X.npy", mmap_mode="r+")
    writable[3 * 256 + 17, 4] = np.nan  # in block 3; blocks 0-2 train before it is read
    writable.flush()
    with pytest.raises(StreamDataError, match=r"X rows 768\.\.1023 \(block 3 of 12, 256 rows "
                                              r"each\): 1 NaN .* at row 785, column 4") as raised:
        net.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=2, batch_size=32,
                momentum=0.9, shuffle=False, block_rows=256, warm_start=True)
    assert isinstance(raised.value, ValueError)
    assert (raised.value.start, raised.value.stop) == (768, 1024)
    np.testing.assert_array_equal(net.params, after_first)
    assert net.training_state.epochs_done == 1
    assert threading.active_count() == threads  # the reader thread is gone

    labels = y.copy()
    labels[2000] = 7
    with pytest.raises(ValueError, match=r"y rows 1792\.\.2047 \(block 7 of 12.*labels must "
                                         r"lie in 0\.\.2"):
        net.fit(X, on_disk(tmp_path, "y", labels), epochs=1, batch_size=32, shuffle=False,
                block_rows=256)
    np.testing.assert_array_equal(net.params, after_first)


@pytest.mark.parametrize("change,error,match", [
    (dict(block_rows=0), ValueError, "block_rows must be an integer >= 1"),
    (dict(block_rows=2.5), TypeError, "block_rows must be an integer"),
    (dict(X=np.zeros((50, 7))), ValueError, "X has 7 features per row but the network "
                                            "expects 20"),
    (dict(y=np.zeros(49, dtype=int)), ValueError, "X has 50 rows but y has 49"),
    (dict(X=np.zeros((0, 20))), ValueError, "X is empty"),
    (dict(X=np.array([["a"] * 20] * 50)), TypeError, "X must be a numeric array"),
    (dict(sample_weight=-np.ones(50)), ValueError, "sample_weight must be >= 0"),
    (dict(validation_split=1.5), ValueError, "validation_split must be in"),
], ids=["zero-block", "float-block", "width", "y-rows", "empty", "strings", "weights",
        "split"])
def test_bad_arguments_are_refused_before_training(tmp_path, change, error, match):
    X, y = blobs(n=50)
    arguments = dict(X=on_disk(tmp_path, "X", X), y=y, block_rows=16)
    for key, value in change.items():
        arguments[key] = on_disk(tmp_path, key, value) if key == "X" else value
    net = Network([20, 4, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(error, match=match):
        net.fit(arguments.pop("X"), arguments.pop("y"), epochs=1, **arguments)
    np.testing.assert_array_equal(net.params, before)
