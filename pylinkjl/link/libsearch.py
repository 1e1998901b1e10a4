"""How each LLD driver resolves ``-lNAME`` against ``-L`` folders, so a missing library is reported
before LLD runs (PackageCompiler.jl#1067: ``unable to find library -lssp``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def library_patterns(driver: str, name: str) -> list[str]:
    """File names LLD tries for ``-l<name>``, in order. ``driver`` is ``elf``, ``mingw`` or ``darwin``."""
    if name.startswith(":"):  # -l:exact.file
        return [name[1:]]
    if driver == "mingw":  # lld/MinGW/Driver.cpp searchLibrary (-Bdynamic)
        return [f"lib{name}.dll.a", f"{name}.dll.a", f"lib{name}.a", f"{name}.lib", f"lib{name}.dll", f"{name}.dll"]
    if driver == "darwin":  # ld64: text stubs and dylibs, then static archives
        return [f"lib{name}.tbd", f"lib{name}.dylib", f"lib{name}.so", f"lib{name}.a"]
    return [f"lib{name}.so", f"lib{name}.a"]


def find_library(driver: str, name: str, dirs: Sequence[Path]) -> Path | None:
    """The file LLD would pick for ``-l<name>`` (folder by folder, pattern by pattern), or None."""
    patterns = library_patterns(driver, name)
    for folder in dirs:
        for pattern in patterns:
            candidate = folder / pattern
            if candidate.is_file():
                return candidate
    return None


def split_link_args(argv: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The ``-L`` folders and ``-l`` names of an argv, in order (joined forms ``-Lx``/``-lx`` only,
    which is how Julia writes them)."""
    dirs = [Path(a[2:]) for a in argv if a.startswith("-L") and len(a) > 2]
    libs = [a[2:] for a in argv if a.startswith("-l") and len(a) > 2]
    return dirs, libs
