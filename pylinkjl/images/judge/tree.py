"""The parts of a real Julia runtime tree the judge boots: libjulia, libjulia-internal, a system image.

Any real layout is accepted: an official tree, a PackageCompiler app, a juliac bundle or a Python wheel
whose library names were grafted by auditwheel or delocate (``lib/ICl90UHn_libjulia.so.1.13.1``). Nothing
is run; the OS and architecture come from libjulia's own header.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.errors import InputError
from pylinkjl.link.juliatree import open_tree, parse_runtime_name

_SYSIMAGE = {"linux": "sys.so", "macos": "sys.dylib", "windows": "sys.dll"}


@dataclass(frozen=True)
class RuntimeTree:
    home: Path
    os: str  # linux | macos | windows
    arch: str  # x86_64 | aarch64 | i686
    libjulia: Path
    libjulia_internal: Path | None
    sysimage: Path | None  # the tree's own lib/julia/sys.* (None: a juliac or runtime-only tree)
    version: str | None  # what open_tree reads: the version header, the file names (libjulia.so.1.13.1), ...

    @property
    def bindir(self) -> Path:
        return self.home / "bin"

    @property
    def library_dirs(self) -> list[Path]:
        """Where Julia's own executable finds its libraries (its RUNPATH: lib/julia, then lib; bin on Windows)."""
        if self.os == "windows":
            return [self.home / "bin"]
        return [self.home / "lib" / "julia", self.home / "lib"]

    @property
    def platform(self) -> str:
        return f"{self.os}-{self.arch}"

    def to_dict(self) -> dict[str, object]:
        return {"home": str(self.home), "os": self.os, "arch": self.arch, "libjulia": str(self.libjulia),
                "libjulia_internal": None if self.libjulia_internal is None else str(self.libjulia_internal),
                "sysimage": None if self.sysimage is None else str(self.sysimage), "version": self.version}


def _find(folders: list[Path], tree_os: str, library: str) -> Path | None:
    """The real file of ``library`` (julia, julia-internal): the longest name (libjulia.so.1.13.1, possibly
    grafted), not a symlink to it. Windows: ``lib<library>.dll``."""
    found: list[Path] = []
    for folder in folders:
        if tree_os == "windows":
            found += [p for p in (folder / f"lib{library}.dll",) if p.is_file()]
            continue
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for p in entries:
            parsed = parse_runtime_name(p.name)
            if parsed is not None and parsed[1] == library and parsed[2] == tree_os and p.is_file():
                found.append(p)
    found.sort(key=lambda p: (p.is_symlink(), -len(p.name), p.name))
    return found[0] if found else None


def open_runtime_tree(home: str | os.PathLike[str]) -> RuntimeTree:
    """Read the runtime tree at ``home`` (the folder holding ``lib/`` or ``bin/``; :func:`open_tree` says its
    OS, architecture and version). Raises InputError."""
    tree = open_tree(home)
    root = tree.home
    libjulia = None
    if tree.os is not None:
        libjulia = _find([root / "bin"] if tree.os == "windows" else [root / "lib"], tree.os, "julia")
    if libjulia is None or tree.os is None or tree.arch is None:
        raise InputError(root, "not a Julia runtime tree: no libjulia of a known architecture in lib/ "
                               "(libjulia.so*, libjulia*.dylib) or bin/ (libjulia.dll)",
                         hint="pass the folder that holds lib/ (or bin/ on Windows)")
    private = [root / "bin"] if tree.os == "windows" else [root / "lib" / "julia", root / "lib"]
    internal = _find(private, tree.os, "julia-internal")
    sysimage = root / "lib" / "julia" / _SYSIMAGE[tree.os]
    return RuntimeTree(home=root, os=tree.os, arch=tree.arch, libjulia=libjulia, libjulia_internal=internal,
                       sysimage=sysimage if sysimage.is_file() else None, version=tree.version)
