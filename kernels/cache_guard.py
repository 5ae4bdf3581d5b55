"""Clear this package's Numba cache when any kernel source has changed.

Numba checks a cached function against its own source file only.  A kernel
that calls (and so embeds) code from another file keeps running the old code
after that file changes: editing ``elementwise.py`` would leave the cached
``backward_pass`` stale (docs/design.md, rule 3; it also happened while building this).
So the cache folder carries a stamp, a hash of every source the kernels are
compiled from, and a stamp that does not match the sources clears the folder's
fastnn entries before anything is loaded from it.
"""

import hashlib
import os
from pathlib import Path

import fastnn

_KERNELS = Path(__file__).resolve().parent
_PACKAGE = Path(fastnn.__file__).resolve().parent
#: every file whose code is compiled into the kernels
SOURCES = sorted(_KERNELS.glob("*.py")) + [_PACKAGE / "layout.py", _PACKAGE / "codes.py"]
STAMP_NAME = "fastnn-kernels.stamp"


def sources_digest():
    """SHA-256 over the kernel sources' names and contents."""
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def guard(cache_dir):
    """Remove stale cache entries of the kernels in ``cache_dir``; write the new stamp.

    Parameters
    ----------
    cache_dir : str or Path
        Where Numba keeps the cache of the kernels' source folder (index
        ``.nbi`` and data ``.nbc`` files).
    """
    cache_dir = Path(cache_dir)
    stamp = cache_dir / STAMP_NAME
    digest = sources_digest()
    try:
        if stamp.read_text() == digest:
            return
    except OSError:
        pass
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # the folder is Numba's cache for this source folder only: all of it is ours
        for entry in cache_dir.iterdir():
            if entry.suffix in (".nbi", ".nbc"):
                entry.unlink(missing_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:
        # a read-only install: Numba cannot write its cache there either, so
        # nothing stale can have been written; compile in memory as usual
        pass
