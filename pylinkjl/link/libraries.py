"""Which files stand behind the libraries of a link line: a real Julia install's, or generated stubs.

A profile names three kinds of things: ``-lNAME`` libraries searched in the ``-L`` folders, static
files (``{static:crti.o}``, Julia's ``_find_static``), and the C library and dynamic loader Julia finds
among its loaded libraries (``{libc}``, ``{dynamic_loader}``). With a real install each must exist;
without one (or with ``--stub-missing``) pylinkjl provides stand-ins: stub libraries built with LLD,
and the C runtime stub objects shipped in ``stubs/crt/<target>/``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.errors import MissingLibraryError
from pylinkjl.link.inputs import InputSummary
from pylinkjl.link.libsearch import find_library, find_runtime_library
from pylinkjl.link.stubs.libraries import (
    StubLibrary,
    StubSet,
    alias_library,
    plan_stub_libraries,
    plan_stub_set,
)
from pylinkjl.link.toolchain import Profile, lines, needs
from pylinkjl.resources import data_dir
from pylinkjl.target import Target

if TYPE_CHECKING:
    from pylinkjl.link.juliatree import JuliaTree

log = logging.getLogger("pylinkjl.link.libraries")

# Static files that stub libraries stand in for (the rest are shipped objects/archives in stubs/crt/).
_STATIC_AS_LIBRARY = {"libSystem.tbd": "System"}
_DYNAMIC_LOADER = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}


def find_static(tree: JuliaTree, name: str) -> Path:
    """Julia's ``_find_static``: private_libdir/NAME if it exists, else libdir/NAME."""
    private = tree.private_libdir / name
    return private if private.is_file() else tree.libdir / name


def shipped_crt(target: Target, name: str) -> Path:
    return data_dir("stubs") / "crt" / target.name / name


_LOADED_RE = {
    "libc": r"/libc\.so\.\d+$",
    "dynamic_loader": r"/ld-(?:linux|musl|elf)[^/]*\.so\.\d+$",
}


def loaded_libraries(maps: Path = Path("/proc/self/maps")) -> dict[str, Path]:
    """Julia's ``_find_loaded``: the C library and dynamic loader mapped into this process (Linux), by kind
    (``libc``, ``dynamic_loader``); one read of ``maps`` for both."""
    try:
        text = maps.read_text()
    except OSError:
        return {}
    found: dict[str, Path] = {}
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6:
            continue
        for kind, pattern in _LOADED_RE.items():
            if kind not in found and re.search(pattern, fields[5]):
                found[kind] = Path(fields[5])
        if len(found) == len(_LOADED_RE):
            break
    return found


@dataclass(frozen=True)
class Libraries:
    """Where a link's ``-l`` libraries come from: Julia's folders, stubs, and what stands in for what."""

    dirs: dict[str, str]  # libdir, private_libdir, shlibdir
    static: dict[str, Path]
    loaded: dict[str, Path]
    extra_dirs: tuple[str, ...]  # -L folders added after Julia's (stubs for --stub-missing)
    stubs: StubSet | None
    stubbed: tuple[str, ...]  # what stands in for what, for the log
    # -lNAME -> what the command says instead: -l:FILE for a library the tree has only under its runtime
    # name (libjulia.so.1.13.1, ICl90UHn_libjulia.so.1.13.1), or the path of a link-time alias
    renamed: dict[str, str] = field(default_factory=dict)
    found: dict[str, Path] = field(default_factory=dict)  # -lNAME -> the tree's file it resolves to
    missing: tuple[str, ...] = ()  # what the tree lacks, when planning anyway (a dry run)


def _soname_version(prof: Profile) -> str:
    """The version in the names of libjulia / libjulia-internal, from the line's first version (every OS):
    ``"1"`` before 1.10 (``libjulia.so.1``, ``@rpath/libjulia.1.dylib``), else ``"MAJOR.MINOR"``
    (``libjulia.so.1.10``, ``@rpath/libjulia.1.11.dylib``). Seen in real images: Linux 1.9 and 1.10.10, macOS
    1.9, 1.11 and 1.12; the 1.13.1 runtime's version definitions name ``libjulia.so.1.13`` (docs/julia-linking.md
    §1.8)."""
    first = next(line.first for line in lines() if line.name == prof.line)
    return "1" if (first.major, first.minor) < (1, 10) else f"{first.major}.{first.minor}"


def _tree_library(target: Target, name: str, search: list[Path], token_salt: str = "") -> tuple[Path | None, bool]:
    """The tree's file for ``-l<name>`` and whether only its runtime name found it (then the command must
    name the file: LLD itself would not find it)."""
    path = find_library(target.library_search, name, search)
    if path is not None:
        return path, False
    path = find_runtime_library(target.library_search, name, search, token_salt)
    return path, path is not None


def _needs_alias(target: Target, path: Path) -> StubLibrary | None:
    """A library whose load name (ELF soname, Mach-O install name) names no file beside it
    (docs/julia-linking.md §1.8): LLD would write that name into DT_NEEDED / LC_LOAD_DYLIB and the image
    would not load from the tree; link against a copy named as the tree names it instead."""
    if target.format not in ("elf", "macho") or path.suffix in (".a", ".tbd"):
        return None
    from pylinkjl.binfmt.files import mapped_file
    from pylinkjl.binfmt.loadname import load_name_slot

    with mapped_file(path, "shared library") as data:
        slot = load_name_slot(data, str(path)) if data else None
    if slot is None:
        return None
    folder, _, base = slot[0].rpartition("/")
    if base in (path.name, path.resolve().name) or (path.parent / base).exists():
        return None
    wanted = f"{folder}/{path.name}" if folder else path.name  # @rpath/<file name> on macOS
    if len(wanted.encode("utf-8")) > slot[2]:
        log.warning("%s is loaded as %s, which names no file of the tree, and %s does not fit in its place; "
                    "the image will need %s", path, slot[0], wanted, slot[0])
        return None
    return alias_library(path, wanted)


def _loader_stub(target: Target) -> StubLibrary:
    name = _DYNAMIC_LOADER.get(target.arch, "ld-linux.so")
    return StubLibrary("dynamic-loader", name, name)


def resolve_libraries(prof: Profile, target: Target, tree: JuliaTree | None, summary: InputSummary, *,
                      debug: bool, lld_version: str, stub_missing: bool, loaded_here: Mapping[str, Path],
                      cache_root: Path | None = None, julia_version: str | None = None,
                      allow_missing: bool = False) -> Libraries:
    """Find (or plan stubs for) everything the command links against. ``loaded_here``: the libc and
    dynamic loader of this process, for a link for this machine (Julia takes them from its own process).
    Raises MissingLibraryError, unless ``allow_missing`` (a dry run): then what is missing is listed in
    ``Libraries.missing`` and the command names it as Julia's would."""
    renamed: dict[str, str] = {}
    found: dict[str, Path] = {}
    aliases: list[StubLibrary] = []
    missing_report: tuple[str, ...] = ()
    if tree is None:
        need = needs(prof, debug, lambda name: False)
        missing_libs, missing_static, missing_loaded = list(need.libraries), list(need.static), list(need.loaded)
        static: dict[str, Path] = {}
        loaded: dict[str, Path] = {}
    else:
        need = needs(prof, debug, lambda name: find_static(tree, name).is_file())
        search = [Path(p) for p in dict.fromkeys(map(str, (tree.private_libdir, tree.libdir, tree.shlibdir)))]
        missing_libs = []
        for n in need.libraries:
            path, by_runtime_name = _tree_library(target, n, search, tree.token_salt)
            if path is None:
                missing_libs.append(n)
                continue
            found[n] = path
            if by_runtime_name:  # ld64 has no -l:FILE; a dylib given by path is linked by its install name
                renamed[n] = str(path) if target.library_search == "darwin" else f"-l:{path.name}"
            alias = _needs_alias(target, path)
            if alias is not None:
                aliases.append(alias)
        static = {n: find_static(tree, n) for n in need.static}
        missing_static = [n for n, p in static.items() if not p.is_file()]
        loaded = {}
        for kind in need.loaded:
            if kind in loaded_here:
                loaded[kind] = loaded_here[kind]
        missing_loaded = [k for k in need.loaded if k not in loaded]
        if (missing_libs or missing_static or missing_loaded) and not stub_missing:
            what = [f"-l{n}" for n in missing_libs] + missing_static + [
                f"the running {k.replace('_', ' ')} (Julia takes it from its own process)" for k in missing_loaded]
            error = MissingLibraryError(
                f"the Julia install at {tree.home} lacks what the Julia {prof.line} link command needs: "
                f"{', '.join(what)} (searched {', '.join(map(str, search))})",
                hint="a relocated or partial install (PackageCompiler.jl#1067)? Pass --stub-missing to link "
                     "against generated stubs instead, or point --julia-home at a complete install")
            if not allow_missing:
                raise error
            missing_report = tuple(what)
            missing_libs, missing_static, missing_loaded = [], [], []

    link_names = list(missing_libs)
    link_names += [_STATIC_AS_LIBRARY[n] for n in missing_static if n in _STATIC_AS_LIBRARY]
    if "libc" in missing_loaded:
        link_names.append("c")
    stub_libs = list(plan_stub_libraries(target, summary.undefined, summary.data_hints, link_names,
                                         soname_version=_soname_version(prof),
                                         julia_version=julia_version, provided=tuple(found))) if link_names else []
    if "dynamic_loader" in missing_loaded:
        stub_libs.append(_loader_stub(target))
    stub_libs += aliases
    stubs = plan_stub_set(target, stub_libs, lld_version, cache_root) if stub_libs else None
    stub_dir = stubs.directory if stubs is not None else None
    by_link = {lib.link_name: lib for lib in stub_libs if lib.kind != "alias"}
    for alias in aliases:
        assert stub_dir is not None
        for n, path in found.items():
            if str(path) == alias.source:
                renamed[n] = str(stub_dir / alias.file_name)
    for name in missing_static:
        if name in _STATIC_AS_LIBRARY:
            assert stub_dir is not None
            static[name] = stub_dir / by_link[_STATIC_AS_LIBRARY[name]].file_name
        else:
            static[name] = shipped_crt(target, name)
    if stub_dir is not None:
        if "libc" in missing_loaded:
            loaded["libc"] = stub_dir / by_link["c"].file_name
        if "dynamic_loader" in missing_loaded:
            loaded["dynamic_loader"] = stub_dir / _loader_stub(target).file_name

    stubbed = tuple([f"-l{n}" for n in missing_libs] + missing_static + list(missing_loaded))
    if tree is None:
        folder = str(stub_dir) if stub_dir is not None else str(shipped_crt(target, ""))
        dirs = {"libdir": folder, "private_libdir": folder, "shlibdir": folder}
        extra: tuple[str, ...] = ()
    else:
        dirs = {"libdir": str(tree.libdir), "private_libdir": str(tree.private_libdir),
                "shlibdir": str(tree.shlibdir)}
        extra = (str(stub_dir),) if missing_libs and stub_dir is not None else ()
    return Libraries(dirs, static, loaded, extra, stubs, stubbed, renamed, found, missing_report)
