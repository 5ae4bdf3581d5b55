"""The Numba cache is cleared when any kernel source changes (docs/design.md, rule 3)."""

from fastnn.kernels import cache_guard


def test_stale_entries_are_removed_and_fresh_ones_kept(tmp_path):
    (tmp_path / "backward_pass.backward_pass-32.py311.nbi").write_bytes(b"index")
    (tmp_path / "backward_pass.backward_pass-32.py311.1.nbc").write_bytes(b"code")
    (tmp_path / "unrelated.txt").write_text("keep me")
    (tmp_path / cache_guard.STAMP_NAME).write_text("digest of older sources")

    cache_guard.guard(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache_guard.STAMP_NAME, "unrelated.txt"]
    assert (tmp_path / cache_guard.STAMP_NAME).read_text() == cache_guard.sources_digest()

    # entries compiled from the current sources survive the next import
    (tmp_path / "forward_pass.forward_pass-12.py311.nbi").write_bytes(b"index")
    cache_guard.guard(tmp_path)
    assert (tmp_path / "forward_pass.forward_pass-12.py311.nbi").exists()


def test_digest_covers_every_compiled_source():
    names = {path.name for path in cache_guard.SOURCES}
    assert {"elementwise.py", "matmul.py", "backward_pass.py", "layout.py", "codes.py"} <= names


def test_missing_stamp_clears(tmp_path):
    (tmp_path / "x.nbi").write_bytes(b"")
    cache_guard.guard(tmp_path)
    assert not (tmp_path / "x.nbi").exists()
