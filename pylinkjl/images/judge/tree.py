"""The parts of a real Julia runtime tree the judge boots: libjulia, libjulia-internal, a system image.

Any real layout is accepted: an official tree, a PackageCompiler app, a juliac bundle or a Python wheel
whose library names were grafted by auditwheel or delocate (``lib/ICl90UHn_libjulia.so.1.13.1``). Nothing
is run; the OS and architecture come from libjulia's own header.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.binfmt.sniff import sniff_file
from pylinkjl.errors import InputError, PylinkjlError

# libjulia under its own name or a grafted one (an 8-character hash and "_" before it).
_GRAFT = r"(?:[A-Za-z0-9]{8}_)?"
_LIBJULIA = {
    "linux": re.compile(rf"^{_GRAFT}libjulia\.so(\.\d+)*$"),
    "macos": re.compile(rf"^{_GRAFT}libjulia(\.\d+)*\.dylib$"),
    "windows": re.compile(r"^libjulia\.dll$"),
}
_INTERNAL = {
    "linux": re.compile(rf"^{_GRAFT}libjulia-internal\.so(\.\d+)*$"),
    "macos": re.compile(rf"^{_GRAFT}libjulia-internal(\.\d+)*\.dylib$"),
    "windows": re.compile(r"^libjulia-internal\.dll$"),
}
_SYSIMAGE = {"linux": "sys.so", "macos": "sys.dylib", "windows": "sys.dll"}
_OS_OF_FORMAT = {"elf": "linux", "macho": "macos", "coff": "windows"}


@dataclass(frozen=True)
class RuntimeTree:
    home: Path
    os: str  # linux | macos | windows
    arch: str  # x86_64 | aarch64 | i686
    libjulia: Path
    libjulia_internal: Path | None
    sysimage: Path | None  # the tree's own lib/julia/sys.* (None: a juliac or runtime-only tree)
    version: str | None  # from the file names (libjulia.so.1.13.1), when they tell

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


def _find(folders: list[Path], pattern: re.Pattern[str]) -> Path | None:
    """The real file among the matches: the longest name (libjulia.so.1.13.1), not a symlink to it."""
    found: list[Path] = []
    for folder in folders:
        try:
            found += [p for p in folder.iterdir() if pattern.match(p.name) and p.is_file()]
        except OSError:
            continue
    found.sort(key=lambda p: (p.is_symlink(), -len(p.name), p.name))
    return found[0] if found else None


def open_runtime_tree(home: str | os.PathLike[str]) -> RuntimeTree:
    """Read the runtime tree at ``home`` (the folder holding ``lib/`` or ``bin/``). Raises InputError."""
    root = Path(os.path.abspath(home))
    if not root.is_dir():
        raise InputError(root, "not a directory (expected a Julia runtime tree: the folder holding lib/ or bin/)")
    for tree_os, folders in (("windows", [root / "bin"]), ("linux", [root / "lib"]), ("macos", [root / "lib"])):
        libjulia = _find(folders, _LIBJULIA[tree_os])
        if libjulia is not None:
            break
    else:
        raise InputError(root, "not a Julia runtime tree: no libjulia in lib/ (libjulia.so*, libjulia*.dylib) or "
                               "bin/ (libjulia.dll)", hint="pass the folder that holds lib/ (or bin/ on Windows)")
    try:
        kind = sniff_file(libjulia)
    except PylinkjlError as exc:
        raise InputError(libjulia, f"cannot read libjulia: {exc}") from exc
    if _OS_OF_FORMAT.get(kind.format) != tree_os or kind.arch not in ("x86_64", "aarch64", "i686"):
        raise InputError(libjulia, f"is {kind.description}, not a {tree_os} libjulia")
    private = [root / "bin"] if tree_os == "windows" else [root / "lib" / "julia", root / "lib"]
    internal = _find(private, _INTERNAL[tree_os])
    sysimage = root / "lib" / "julia" / _SYSIMAGE[tree_os]
    m = re.search(r"(\d+\.\d+\.\d+)", libjulia.name)
    return RuntimeTree(home=root, os=tree_os, arch=str(kind.arch), libjulia=libjulia, libjulia_internal=internal,
                       sysimage=sysimage if sysimage.is_file() else None, version=m.group(1) if m else None)
