"""The training buffers start on a cache line (fastnn.aligned)."""

import pickle

import numpy as np
import pytest

from fastnn import Network
from fastnn.aligned import ALIGNMENT, aligned_copy, aligned_zeros


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "uint8"])
@pytest.mark.parametrize("shape", [0, 1, 7, 159_010, (2, 5), (3, 0), (2, 3, 4)])
def test_aligned_zeros(shape, dtype):
    # many allocations: NumPy's own start anywhere on a 16-byte boundary
    for _ in range(20):
        a = aligned_zeros(shape, dtype)
        assert a.size == 0 or a.ctypes.data % ALIGNMENT == 0  # (an empty array has no data)
        assert a.shape == ((shape,) if isinstance(shape, int) else shape)
        assert a.dtype == np.dtype(dtype) and a.flags["C_CONTIGUOUS"] and a.flags["WRITEABLE"]
        assert not a.any()


def test_aligned_copy():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3, 17))[:, 1:]  # not contiguous
    copy = aligned_copy(values)
    assert copy.ctypes.data % ALIGNMENT == 0 and copy.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(copy, values)
    copy[0, 0] = 42.0
    assert values[0, 0] != 42.0


def _aligned(a):
    return a.ctypes.data % ALIGNMENT == 0


def test_network_buffers_are_aligned(tmp_path):
    """The parameters, the fit's gradient, optimizer state and workspaces, and the
    parameters of an unpickled or loaded network."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 7)), rng.integers(0, 3, 50)
    net = Network([7, 5, 3], dtype="float32", seed=0)
    assert _aligned(net.params)
    seen = {}
    import fastnn.training as training
    original = training.TrainingRun.run

    def spy(run):
        seen["buffers"] = [run.grad, run.moments, run.workspace.acts, run.workspace.deltas,
                           run.workspace.x, run.workspace.y, run.workspace.w]
        return original(run)

    training.TrainingRun.run = spy
    try:
        net.fit(X, y, epochs=1, batch_size=8, optimizer="adam", lr=0.01)
    finally:
        training.TrainingRun.run = original
    assert all(_aligned(b) for b in seen["buffers"])
    again = pickle.loads(pickle.dumps(net))
    assert _aligned(again.params) and np.array_equal(again.params, net.params)
    net.save(tmp_path / "net.npz")
    loaded = Network.load(tmp_path / "net.npz")
    assert _aligned(loaded.params) and np.array_equal(loaded.params, net.params)
