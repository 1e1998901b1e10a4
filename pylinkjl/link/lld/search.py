"""Where LLD may be, in order: ``--lld PATH``, ``$PYLINKJL_LLD``, the Julia install (its bundled lld, run with
the library path Julia gives it, docs/julia-linking.md §1.2), ``PATH`` (``lld``, ``lld-NN`` newest first,
``ld.lld``, ``ld64.lld``), then the usual LLVM folders."""

from __future__ import annotations

import glob
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.link.lld.names import ENV_VAR, Driver, driver_of
from pylinkjl.process import which
from pylinkjl.target import host_os

if TYPE_CHECKING:
    from pylinkjl.link.juliatree import JuliaTree

log = logging.getLogger("pylinkjl.link.lld")

_ON_WINDOWS = os.name == "nt"
_EXE = ".exe" if _ON_WINDOWS else ""


@dataclass(frozen=True)
class LldCandidate:
    """An LLD program that may run a link, and where it was found."""

    path: Path
    source: str  # "explicit" | "PYLINKJL_LLD" | "julia" | "PATH" | "llvm-folder"
    env: dict[str, str] = field(default_factory=dict)  # variables to set when running this lld
    driver: Driver = "generic"  # what LLD selects from the program name


def julia_lld_env(tree: JuliaTree, lld_path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables Julia sets before running its bundled lld (``adjust_ENV!``, docs/julia-linking.md §1.2):
    the bundled lld links against Julia's libLLVM in lib/julia, which its RPATH does not find."""
    tree_os = tree.os or host_os() or "linux"
    if tree_os == "windows":
        var, sep, default = "PATH", ";", ""
        libpath = [tree.private_libdir, tree.bindir]
    elif tree_os == "macos":
        home = environ.get("HOME", "~")
        var, sep, default = "DYLD_FALLBACK_LIBRARY_PATH", ":", f"{home}/lib:/usr/local/lib:/lib:/usr/lib"
        libpath = [tree.private_libdir, tree.libdir]
    else:
        var, sep, default = "LD_LIBRARY_PATH", ":", ""
        libpath = [tree.private_libdir, tree.libdir]
    joined = sep.join(str(p) for p in libpath)
    base = _get_env(environ, var, default, ignore_case=tree_os == "windows")
    env = {var: f"{joined}{sep}{base}" if base else joined}
    if var != "PATH":  # Julia does not put the lld folder on PATH on Windows
        old_path = environ.get("PATH", "")
        env["PATH"] = f"{lld_path.parent}{sep}{old_path}" if old_path else str(lld_path.parent)
    return env


def _get_env(environ: Mapping[str, str], name: str, default: str, *, ignore_case: bool) -> str:
    if name in environ:
        return environ[name]
    if ignore_case:  # Windows spells it "Path" as often as "PATH"
        for key, value in environ.items():
            if key.upper() == name.upper():
                return value
    return default


def _explicit_path(text: str, environ: Mapping[str, str]) -> Path:
    """``--lld`` takes a path, or a bare program name looked up on PATH (``--lld ld.lld-19``)."""
    path = Path(text).expanduser()
    if not path.exists() and os.sep not in text and (os.altsep is None or os.altsep not in text):
        for folder in _path_dirs(environ):
            for suffix in ("", _EXE) if _EXE else ("",):
                if (folder / (text + suffix)).is_file():
                    return folder / (text + suffix)
    return Path(os.path.abspath(path))


def _path_dirs(environ: Mapping[str, str]) -> list[Path]:
    return [Path(d) for d in environ.get("PATH", "").split(os.pathsep) if d]


_VERSIONED = re.compile(r"(lld|ld\.lld|ld64\.lld)-(\d+)" + re.escape(_EXE) + r"$")


_listings: dict[Path, tuple[int, tuple[str, ...]]] = {}


def _linker_names(folder: Path) -> tuple[str, ...] | None:
    """The LLD-looking names in ``folder`` (None: unreadable), re-listed only when the folder changes:
    batch links plan hundreds of times per process and PATH scans were half of each plan."""
    try:
        stamp = os.stat(folder).st_mtime_ns
        cached = _listings.get(folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        names = tuple(sorted(n for n in os.listdir(folder) if "lld" in n))
    except OSError:
        return None
    _listings[folder] = (stamp, names)
    return names


def _path_candidates(environ: Mapping[str, str]) -> Iterator[Path]:
    """``lld``, ``lld-NN`` (newest first), ``ld.lld``, ``ld.lld-NN``, ``ld64.lld``, ``ld64.lld-NN``."""
    listings: list[tuple[Path, tuple[str, ...]]] = []
    for folder in _path_dirs(environ):
        names = _linker_names(folder)
        if names is not None:
            listings.append((folder, names))
    for base in ("lld", "ld.lld", "ld64.lld"):
        for folder, names in listings:
            if base + _EXE in names:
                yield folder / (base + _EXE)
        versioned: list[tuple[int, int, Path]] = []
        for order, (folder, names) in enumerate(listings):
            for name in names:
                m = _VERSIONED.match(name)
                if m and m.group(1) == base:
                    versioned.append((-int(m.group(2)), order, folder / name))
        yield from (path for _, _, path in sorted(versioned))


def _llvm_folder_candidates() -> Iterator[Path]:
    """Where distributions and Homebrew put LLVM when it is not on PATH."""
    def version_of(path: str) -> int:
        m = re.search(r"llvm-(\d+)", path)
        return int(m.group(1)) if m else -1

    yield from (Path(p) for p in sorted(glob.glob("/usr/lib/llvm-*/bin/lld"), key=version_of, reverse=True))
    yield Path("/usr/local/opt/llvm/bin/lld")
    yield Path("/opt/homebrew/opt/llvm/bin/lld")
    yield Path("/usr/local/bin/lld")
    if _ON_WINDOWS:
        yield Path(r"C:\Program Files\LLVM\bin\lld.exe")


def _julia_candidates(tree: JuliaTree, environ: Mapping[str, str]) -> Iterator[LldCandidate]:
    for path in tree.lld_candidates():
        if path.is_file():
            yield LldCandidate(path, "julia", julia_lld_env(tree, path, environ), driver_of(path))


def _julia_tree(julia_home: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> JuliaTree | None:
    """The Julia install to take LLD from: the one given, else the tree of the ``julia`` on PATH. The tree
    module is imported only when there is one (most links have neither)."""
    if julia_home is not None:
        from pylinkjl.link.juliatree import open_tree

        return open_tree(julia_home)
    exe = which("julia", environ)
    if exe is None:
        return None
    from pylinkjl.link.juliatree import tree_of_program

    return tree_of_program(exe)


def candidates(*, explicit: str | os.PathLike[str] | None = None, julia_home: str | os.PathLike[str] | None = None,
               environ: Mapping[str, str] = os.environ) -> Iterator[LldCandidate]:
    """Every LLD worth trying, in order, without duplicates (same binary reached as the same driver).
    Explicit and ``$PYLINKJL_LLD`` entries are yielded even when missing so that probing can say so."""
    def raw() -> Iterator[LldCandidate]:
        if explicit is not None:
            path = _explicit_path(os.fspath(explicit), environ)
            yield LldCandidate(path, "explicit", {}, driver_of(path))
        if environ.get(ENV_VAR):
            path = _explicit_path(environ[ENV_VAR], environ)
            yield LldCandidate(path, ENV_VAR, {}, driver_of(path))
        tree = _julia_tree(julia_home, environ)
        if tree is not None:
            yield from _julia_candidates(tree, environ)
        for path in _path_candidates(environ):
            if path.is_file():
                yield LldCandidate(path, "PATH", {}, driver_of(path))
        for path in _llvm_folder_candidates():
            if path.is_file():
                yield LldCandidate(path, "llvm-folder", {}, driver_of(path))

    # Keyed by (binary, driver): ld.lld-19 and lld-19 are one file but not one driver.
    seen: set[tuple[str, Driver]] = set()
    for cand in raw():
        key = (os.path.realpath(cand.path), cand.driver)
        if key in seen:
            log.debug("skipping %s (%s): same binary as an earlier candidate", cand.path, cand.source)
            continue
        seen.add(key)
        yield cand
