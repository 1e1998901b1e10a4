"""Opening a file pylinkjl reads (inputs, images, ``.ji`` caches, manifests, a Julia tree's headers): the one
place that does it, so every reader refuses the same things the same way.

- **Only regular files.** A FIFO, device, socket or folder where a file is expected is an
  :class:`InputError` (exit 3), found with ``stat`` before opening and confirmed with ``fstat`` on a
  descriptor opened with ``O_NONBLOCK``, so a FIFO without a writer can never hang a command.
- **Sizes are checked before anything is mapped or read.** A file above :data:`MAX_FILE_BYTES` is refused
  at once (a 50 GB sparse file costs one ``fstat``), and files are mapped, never read whole, so the
  pages touched are the pages a reader needs.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pylinkjl.errors import InputError

# The largest file pylinkjl reads: 4 GiB. A PE image cannot be larger (SizeOfImage is 32 bits), Julia 1.10's
# shard tables hold 32-bit offsets, and the largest real package and system images are a few hundred MB,
# their archives and caches the same order. Anything bigger is not a Julia cache, image or archive.
MAX_FILE_BYTES = 4 << 30

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link"}


def file_kind(mode: int) -> str:
    """``st_mode`` in words: "a FIFO", "a folder", ... ("a regular file" for one)."""
    return "a regular file" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "a special file")


def _problem(err: OSError) -> str:
    return err.strerror or str(err)


def _check_stat(path: Path, st: os.stat_result, what: str, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        expected = "" if what == "file" else f" ({what} must be one)"
        raise InputError(path, f"is {file_kind(st.st_mode)}, not a regular file{expected}")
    if st.st_size > limit:
        raise InputError(path, f"is {st.st_size} bytes, more than the {_size(limit)} pylinkjl reads"
                               + ("" if what == "file" else f" as {what}"),
                         hint=None if limit != MAX_FILE_BYTES else "a Julia archive, image or cache is far "
                              "smaller: is it the right file (a sparse or extended copy)?")


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def require_exists(path: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` unless ``path`` can be looked at: "no such file", or the system's reason (a
    symbolic-link loop, a name too long, a folder on the way that may not be searched)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        raise InputError(Path(path), "no such file") from None
    except OSError as err:
        raise InputError(Path(path), f"cannot be opened: {_problem(err)}") from None


def open_regular(path: str | os.PathLike[str], what: str = "file", *, limit: int = MAX_FILE_BYTES) -> BinaryIO:
    """``path`` opened for reading in binary mode, if it is a regular file of at most ``limit`` bytes.
    Raises :class:`InputError` (missing, unreadable, not a regular file, too large)."""
    p = Path(path)
    try:
        _check_stat(p, os.stat(p), what, limit)  # before opening: opening a device can have effects
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as err:
        raise InputError(p, f"cannot open{'' if what == 'file' else ' ' + what}: {_problem(err)}") from None
    try:
        _check_stat(p, os.fstat(fd), what, limit)  # what was opened (it may have been swapped meanwhile)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(path: str | os.PathLike[str], what: str = "file", *, limit: int = MAX_FILE_BYTES) -> bytes:
    """The whole of a (small) regular file. Raises :class:`InputError`."""
    with open_regular(path, what, limit=limit) as handle:
        try:
            return handle.read()
        except OSError as err:
            raise InputError(Path(path), f"cannot read{'' if what == 'file' else ' ' + what}: "
                                         f"{_problem(err)}") from None


def read_head(path: str | os.PathLike[str], n: int, what: str = "file") -> bytes:
    """The first ``n`` bytes of a regular file (fewer if it is shorter). Raises :class:`InputError`."""
    with open_regular(path, what) as handle:
        try:
            return handle.read(n)
        except OSError as err:
            raise InputError(Path(path), f"cannot read{'' if what == 'file' else ' ' + what}: "
                                         f"{_problem(err)}") from None


@contextmanager
def mapped_file(path: str | os.PathLike[str], what: str = "file", *,
                limit: int = MAX_FILE_BYTES) -> Iterator[mmap.mmap | bytes]:
    """The contents of a regular file, mapped read-only (pages are read only when touched, so walking the
    headers of a 50 MB archive costs almost nothing). An empty file gives ``b""``."""
    with open_regular(path, what, limit=limit) as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except (OSError, ValueError) as exc:
            problem = _problem(exc) if isinstance(exc, OSError) else str(exc)
            raise InputError(Path(path), f"cannot map {what}: {problem}") from None
    if mapped is None:
        yield b""
        return
    try:
        yield mapped
    finally:
        try:
            mapped.close()
        except BufferError:  # a view of it is still alive (e.g. in a traceback): the GC closes it later
            pass


@contextmanager
def mapped_view(path: str | os.PathLike[str], what: str = "file", *,
                limit: int = MAX_FILE_BYTES) -> Iterator[memoryview]:
    """:func:`mapped_file` as a read-only memoryview, released (before the map closes) on the way out."""
    with mapped_file(path, what, limit=limit) as data:
        view = memoryview(data)
        try:
            yield view
        finally:
            try:
                view.release()
            except BufferError:  # a slice of it is still alive: released with it
                pass
