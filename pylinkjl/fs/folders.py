"""Folders made for an output, removed again when the command fails (deepest first, only if empty)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pylinkjl.errors import filesystem_error


@contextmanager
def folders_for(path: Path) -> Iterator[list[Path]]:
    """Create the missing parent folders of ``path``; remove those it created (deepest first, only if
    empty) when the block raises. Yields the list of folders created. Raises FileSystemError."""
    missing: list[Path] = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError as err:
                if not folder.is_dir():
                    raise filesystem_error(err, "create a folder for the output", folder) from None
                continue
            except OSError as err:
                raise filesystem_error(err, "create a folder for the output", folder) from None
            created.append(folder)
        yield created
    except BaseException:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
        raise
