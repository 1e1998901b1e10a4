"""When do two spellings name one file? The one place pylinkjl compares paths it will write.

Two paths are the same file when their resolved forms are equal (``os.path.realpath``: symlinks and
``..`` followed, so ``dup.so`` and ``sub/../dup.so`` are one name, and so are a symlink and its target),
or when they exist and share ``(st_dev, st_ino)`` (hard links, bind mounts). A file that does not
exist yet has only its resolved path.
"""

from __future__ import annotations

import os

PathLike = str | os.PathLike[str]
Key = tuple[str, ...] | tuple[str, int, int]


def file_keys(path: PathLike) -> frozenset[Key]:
    """Every identity of ``path``: its resolved path and, if it exists, its device and inode."""
    keys: set[Key] = {("path", os.path.normcase(os.path.realpath(path)))}
    try:
        st = os.stat(path)  # stat, never open: a FIFO must not block here
    except (OSError, ValueError):
        return frozenset(keys)
    keys.add(("inode", st.st_dev, st.st_ino))
    return frozenset(keys)


def how_same(a: PathLike, b: PathLike) -> str | None:
    """None when ``a`` and ``b`` are different files; else how they are the same (for messages)."""
    shared = file_keys(a) & file_keys(b)
    if not shared:
        return None
    if os.fspath(a) == os.fspath(b):
        return "the same path"
    if any(k[0] == "path" for k in shared):
        return "the same file (one resolves to the other)"
    return "the same file (hard links: one inode)"
