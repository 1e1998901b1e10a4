"""What pylinkjl leaves beside an output while it works, and when such a thing is provably stale.

While it runs, a link keeps a staging folder ``.pylinkjl-XXXX`` beside its output, and a reseal a
temporary ``.NAME.ji.XXXX.reseal`` beside its ``.ji``. Both are removed when the command ends, however it
ends, except when the process is killed outright (SIGKILL, a power cut). Such leftovers are removed the
next time a link or reseal uses the same folder, and ``pylinkjl depot`` reports them, but only when they
are provably ours and stale:

- the name: exactly the pattern above (a folder for staging, a regular file for a reseal; no symlinks);
- the owner: the user running pylinkjl;
- the age: untouched for :data:`GRACE_SECONDS` (this closes the instant between a link creating its
  folder and locking it);
- and no live process holds it: a running link holds an exclusive ``flock`` on its staging folder (a
  reseal on its temporary) until it has cleaned up. The kernel drops the lock when the process dies, so a
  lock that can be taken belongs to nobody. A concurrent link's folder, however old, is never touched.

Where ``flock`` is not available (Windows), nothing is judged stale.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("pylinkjl.fs.leftovers")

STAGING_PREFIX = ".pylinkjl-"
RESEAL_SUFFIX = ".reseal"
GRACE_SECONDS = 60.0
_STAGING = re.compile(r"\.pylinkjl-[A-Za-z0-9]{1,64}")
_RESEAL = re.compile(r"\..+\.ji\.[A-Za-z0-9_]{6,16}\.reseal")  # tempfile.mkstemp(prefix=".NAME.ji.", suffix=...)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Leftover:
    """A folder or file an interrupted pylinkjl run left behind."""

    path: Path
    kind: str  # "staging" (a link's folder) or "reseal" (a reseal's temporary .ji)
    age: float  # seconds since it was last changed

    def to_dict(self) -> dict[str, Any]:
        what = ("staging folder of a pylinkjl link" if self.kind == "staging"
                else "temporary .ji of a pylinkjl reseal")
        return {"path": str(self.path), "kind": self.kind,
                "why": f"{what} that was killed (untouched for {self.age:.0f} s, no process holds it)"}


def lock(fd: int) -> None:
    """Take the exclusive lock that marks ``fd``'s folder or file as in use by this process."""
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def make_staging(path: Path) -> int | None:
    """Create the staging folder ``path`` and lock it; returns the descriptor that holds the lock (None
    where folders cannot be locked), for :func:`release` once the folder is gone."""
    os.mkdir(path)
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        lock(fd)
    except OSError as err:  # a file system without flock: the folder is still ours, just not provably
        log.debug("cannot lock %s: %s", path, err)
    return fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def remove_flat(folder: Path) -> None:
    """Remove a staging folder and what is in it (flat: the staged output, maybe a response file)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):  # LLD never makes one; be thorough anyway
                import shutil

                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(folder)
    except OSError:
        pass


def _kind(name: str, st: os.stat_result) -> str | None:
    if _STAGING.fullmatch(name) and stat.S_ISDIR(st.st_mode):
        return "staging"
    if name.endswith(RESEAL_SUFFIX) and _RESEAL.fullmatch(name) and stat.S_ISREG(st.st_mode):
        return "reseal"
    return None


@contextmanager
def _if_free(path: Path, kind: str) -> Iterator[bool]:
    """Yield True while holding the leftover's lock when no live process holds it."""
    if fcntl is None:
        yield False
        return
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    if kind == "staging":
        flags |= getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live link (EWOULDBLOCK), or no flock here: not provably stale
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _candidates(folder: Path, now: float) -> Iterator[Leftover]:
    """Leftovers by name, owner and age (not yet checked for a live holder)."""
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(".") or not (entry.name.startswith(STAGING_PREFIX)
                                                  or entry.name.endswith(RESEAL_SUFFIX)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        kind = _kind(entry.name, st)
        age = now - st.st_mtime
        if kind is None or (uid is not None and st.st_uid != uid) or age < GRACE_SECONDS:
            continue
        yield Leftover(Path(entry.path), kind, age)


def find_stale(folder: str | os.PathLike[str]) -> list[Leftover]:
    """The provably stale leftovers in ``folder`` (see the module docstring); removes nothing."""
    out = []
    for left in _candidates(Path(folder), time.time()):
        with _if_free(left.path, left.kind) as free:
            if free:
                out.append(left)
    return out


def clean_stale(folder: str | os.PathLike[str]) -> list[Leftover]:
    """Remove the provably stale leftovers in ``folder``, each while holding its lock; returns them."""
    removed = []
    for left in _candidates(Path(folder), time.time()):
        with _if_free(left.path, left.kind) as free:
            if not free:
                continue
            if left.kind == "staging":
                remove_flat(left.path)
            else:
                try:
                    os.unlink(left.path)
                except OSError:
                    continue
            if not os.path.lexists(left.path):
                log.info("removed %s, left by a pylinkjl that was killed %.0f s ago", left.path, left.age)
                removed.append(left)
    return removed

