"""How each LLD driver resolves ``-lNAME`` against ``-L`` folders, so a missing library is reported
before LLD runs (PackageCompiler.jl#1067: ``unable to find library -lssp``); and the names a runtime tree
has instead when it lacks the link-time name (``libjulia.so``): docs/julia-linking.md §1.8."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

# A graft prefix: JuliaC's --privatize and auditwheel-style tools put a salt before the name.
_GRAFT = r"(?:[0-9A-Za-z_.-]*_)?"
# auditwheel's graft: an 8-hex-digit hash after the name (libz-eb09ad1d.so.1.2.13).
_HASH = r"(?:-[0-9a-f]{8})?"


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


def runtime_name_pattern(driver: str, name: str, token_salt: str = "") -> re.Pattern[str] | None:
    """File names a runtime tree (no development symlinks) has for ``-l<name>``: ELF ``libNAME.so.1.13.1``,
    Mach-O ``libNAME.1.13.1.dylib``, both also grafted (JuliaC: ``ICl90UHn_libjulia.so.1.13.1``, auditwheel:
    ``libjulia-1a2b3c4d.so.1.13.1``); MinGW
    ``libNAME-1.dll`` and ``libNAME_seh-1.dll`` (``libgcc_s_seh-1.dll``, ``libatomic-1.dll``)."""
    if name.startswith(":"):
        return None
    n = re.escape(name)
    if token_salt and driver == "elf" and re.fullmatch(r"julia(?:-internal|-codegen)?(?:-debug)?", name):
        # newer JuliaC --privatize replaced the "libjulia" token: Xy12-_Ab.so.1.13.1, Xy12-_Ab-internal.so.1.13
        return re.compile(rf"^{re.escape(token_salt)}{re.escape(name[len('julia'):])}\.so(?:\.\d+)*$")
    if driver == "mingw":
        return re.compile(rf"^lib{n}(?:_[a-z]+)?-\d+\.dll$")
    if driver == "darwin":
        return re.compile(rf"^{_GRAFT}lib{n}{_HASH}(?:\.\d+)*\.dylib$")
    return re.compile(rf"^{_GRAFT}lib{n}{_HASH}\.so(?:\.\d+)*$")


def find_runtime_library(driver: str, name: str, dirs: Sequence[Path], token_salt: str = "") -> Path | None:
    """The file a runtime tree has for ``-l<name>`` under a runtime name (:func:`runtime_name_pattern`),
    folder by folder; within a folder ungrafted before grafted, then the shortest name (the soname-like
    one: ``libjulia.so.1.13`` before ``libjulia.so.1.13.1``). None when there is none."""
    pattern = runtime_name_pattern(driver, name, token_salt)
    if pattern is None:
        return None
    for folder in dirs:
        try:
            names = [entry.name for entry in folder.iterdir()]
        except OSError:
            continue
        matches = sorted((n for n in names if pattern.match(n)),
                         key=lambda n: (not n.startswith(("lib", token_salt or "lib")), len(n), n))
        for match in matches:
            if (folder / match).is_file():
                return folder / match
    return None
