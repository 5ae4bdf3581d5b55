"""Where the compiled kernels are kept when the installed sources are read-only.

A site-packages that the user cannot write to is common (a system Python, a
Docker image with a read-only file system).  Numba then keeps the cache in
the user's cache folder (``~/.cache/numba``), or where ``NUMBA_CACHE_DIR``
says; with no writable place at all, fastnn compiles in every process and
says so (Numba alone would fail to import the kernels).  Each case runs fresh
processes on a copy of the installed package mounted read-only (in a private
mount namespace: as root, file permissions alone do not stop writes) or, for
other users, made read-only with chmod.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import fastnn
import fastnn.kernels

_FIT = r"""
import numpy as np
from fastnn import Network
import fastnn
net = Network([6, 5, 3], seed=0)
X = np.random.default_rng(0).random((40, 6)); y = np.arange(40) % 3
history = net.fit(X, y, epochs=1, batch_size=8)
print(fastnn.__file__, history.compile_time)
"""


def _copy_package(destination):
    """The installed fastnn (kernels included) as a plain package under ``destination``."""
    package = destination / "fastnn"
    shutil.copytree(Path(fastnn.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copytree(Path(fastnn.kernels.__file__).parent, package / "kernels",
                    ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return package


def _read_only_runner(paths):
    """A command prefix that runs a shell with ``paths`` read-only, or None."""
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            return None
        binds = " && ".join(f"mount --bind {p} {p} && mount -o remount,ro,bind {p} {p}"
                            for p in paths)
        return lambda command: ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                f"{binds} && exec {command}"]
    for p in paths:
        for root, dirs, files in os.walk(p):
            for name in dirs + files:
                os.chmod(os.path.join(root, name), 0o555)
        os.chmod(p, 0o555)
    return lambda command: ["sh", "-c", f"exec {command}"]


def _run(runner, script, env):
    done = subprocess.run(runner(f"{sys.executable} {script}"), env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    where, compile_time = done.stdout.split()
    return where, float(compile_time), done.stderr


@pytest.fixture
def setup(tmp_path):
    root = tmp_path / "install"
    root.mkdir()
    package = _copy_package(root)
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "fit.py"
    script.write_text(_FIT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(PYTHONPATH=str(root), HOME=str(home))
    return root, package, home, script, env


def _no_cache_files(package):
    return not any(p.suffix in (".nbi", ".nbc") for p in package.rglob("*"))


def test_read_only_install_caches_in_the_user_folder(setup):
    root, package, home, script, env = setup
    runner = _read_only_runner([str(root)])
    if runner is None:
        pytest.skip("needs unshare (as root) to mount the copy read-only")
    where, first, notice = _run(runner, script, env)
    assert where.startswith(str(package)), where  # the read-only copy ran
    assert first > 0 and "compiling the float32 SGD " in notice
    _, second, notice = _run(runner, script, env)
    assert second == 0 and "compiling" not in notice
    assert _no_cache_files(package)
    assert any((home / ".cache" / "numba").rglob("*.nbc"))


def test_numba_cache_dir_is_used(setup, tmp_path):
    root, package, home, script, env = setup
    runner = _read_only_runner([str(root), str(home)])
    if runner is None:
        pytest.skip("needs unshare (as root) to mount the copy read-only")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    _, first, _ = _run(runner, script, env)
    _, second, _ = _run(runner, script, env)
    assert first > 0 and second == 0
    assert any((tmp_path / "numba-cache").rglob("*.nbc"))


def test_no_writable_cache_compiles_and_says_so(setup):
    root, package, home, script, env = setup
    runner = _read_only_runner([str(root), str(home)])
    if runner is None:
        pytest.skip("needs unshare (as root) to mount the copy read-only")
    _, seconds, notice = _run(runner, script, env)
    assert seconds > 0
    assert "no writable place for Numba's cache" in notice and "NUMBA_CACHE_DIR" in notice
    assert "compiled in every new process" in notice
