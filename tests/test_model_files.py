"""Model files: no pickle, every member checked, damage reported clearly."""

import os
import zipfile

import numpy as np
import pytest

from fastnn import Network
from fastnn.model_files import ModelFileError


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "net.npz"
    Network([4, 5, 3], activation="tanh", seed=1).save(path)
    return path


def members(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def rewrite(path, **changes):
    arrays = members(path)
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    with open(path, "wb") as file:
        np.savez(file, **arrays)


class Exploit:
    """Unpickling this would run code; the loader must never get that far."""

    def __reduce__(self):
        return (os.system, ("touch /tmp/fastnn-pwned",))


CASES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:200]),
    "garbage": lambda p: p.write_bytes(b"\x00not a zip file at all" * 10),
    "empty-file": lambda p: p.write_bytes(b""),
    "wrong-version": lambda p: rewrite(p, version=np.array(99)),
    "wrong-format-tag": lambda p: rewrite(p, format=np.array("something-else")),
    "extra-member": lambda p: rewrite(p, surprise=np.zeros(3)),
    "missing-member": lambda p: rewrite(p, params=None),
    "params-too-short": lambda p: rewrite(p, params=members(p)["params"][:-1]),
    "params-wrong-dtype": lambda p: rewrite(p, params=members(p)["params"].astype(np.float64)),
    "params-nan": lambda p: rewrite(p, params=np.full_like(members(p)["params"], np.nan)),
    "sizes-mismatch": lambda p: rewrite(p, sizes=np.array([4, 6, 3])),
    "sizes-negative": lambda p: rewrite(p, sizes=np.array([4, -5, 3])),
    "activation-unknown": lambda p: rewrite(p, activation=np.array(["swish"])),
    "output-unknown": lambda p: rewrite(p, output=np.array("softplus")),
    "dtype-unknown": lambda p: rewrite(p, dtype=np.array("int8")),
    "rng-state-garbage": lambda p: rewrite(p, rng_state=np.array("{not json")),
    "object-array": lambda p: rewrite(p, params=np.array([Exploit()], dtype=object)),
}


@pytest.mark.parametrize("damage", CASES, ids=list(CASES))
def test_damaged_or_crafted_files_raise_clear_errors(saved, damage):
    if os.path.exists("/tmp/fastnn-pwned"):
        os.remove("/tmp/fastnn-pwned")
    CASES[damage](saved)
    with pytest.raises(ModelFileError, match=r"is not a valid fastnn model file: .+"):
        Network.load(saved)
    assert not os.path.exists("/tmp/fastnn-pwned"), "loading a model file ran code"


def test_single_npy_array_is_refused(tmp_path):
    path = tmp_path / "plain.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ModelFileError, match="single array"):
        Network.load(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        Network.load(tmp_path / "absent.npz")


def test_model_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


def test_file_holds_only_plain_arrays(saved):
    with zipfile.ZipFile(saved) as archive:
        for name in archive.namelist():
            header = archive.read(name)[:200]
            assert b"'descr': '|O'" not in header, f"{name} is an object array"
    arrays = members(saved)
    assert arrays["version"] == 1 and str(arrays["format"]) == "fastnn-network"


def test_save_is_atomic_and_leaves_no_temporaries(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    net = Network([4, 3, 2], seed=1)
    net.save(path)
    original = path.read_bytes()

    def fail_midway(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        Network([4, 3, 2], seed=2).save(path)
    assert path.read_bytes() == original, "a failed save must not clobber the old file"
    assert os.listdir(tmp_path) == ["net.npz"]


@pytest.fixture
def checkpoint_file(tmp_path):
    path = tmp_path / "fit.ckpt"
    rng = np.random.default_rng(0)
    Network([4, 5, 3], seed=1).fit(rng.standard_normal((20, 4)), np.arange(20) % 3, epochs=1,
                                   optimizer="adam", checkpoint=path)
    return path


CHECKPOINT_CASES = {
    "state-shape": lambda p: rewrite(p, state=members(p)["state"][:1]),
    "state-nan": lambda p: rewrite(p, state=np.full_like(members(p)["state"], np.nan)),
    "optimizer-unknown": lambda p: rewrite(p, optimizer=np.array("lbfgs")),
    "step-negative": lambda p: rewrite(p, step=np.array([-1])),
    "best-params-shape": lambda p: rewrite(p, best_params=np.zeros(3, np.float32)),
    "fit-not-json": lambda p: rewrite(p, fit=np.array("{")),
    "fit-keys": lambda p: rewrite(p, fit=np.array('{"epochs_done": 1}')),
    "member-missing": lambda p: rewrite(p, step=None),
}


@pytest.mark.parametrize("damage", CHECKPOINT_CASES, ids=list(CHECKPOINT_CASES))
def test_damaged_checkpoints_raise_clear_errors(checkpoint_file, damage):
    from fastnn.checkpoint import read_checkpoint
    CHECKPOINT_CASES[damage](checkpoint_file)
    with pytest.raises(ModelFileError, match=r"is not a valid fastnn model file: .+"):
        read_checkpoint(checkpoint_file)
