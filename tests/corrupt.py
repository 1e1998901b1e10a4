"""Making corrupted copies of images for the verify tests: copy a file aside, overwrite bytes in it."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_to(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    shutil.copyfile(src, dst)
    return dst


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
