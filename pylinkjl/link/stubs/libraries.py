"""Stub runtime libraries for cross-linking: what LLD needs to find every ``-l`` of Julia's link line.

A package image for another machine cannot be linked against that machine's Julia, so we give LLD
stand-ins built from the image's own undefined symbols (:mod:`pylinkjl.link.stubs.providers` says which library
provides each one):

* ELF: a shared object with the real soname (``libjulia.so.1`` for 1.9, ``libjulia.so.1.10`` from 1.10 on) and
  the real symbol version (``JL_LIBJULIA_1.10``, none for 1.9: :func:`julia_symbol_version`), built by LLD from a
  tiny relocatable object that :mod:`pylinkjl.link.stubs.elfobject` writes byte by byte (typed, sized symbols; no
  assembler needed) and a version script;
* Mach-O: a ``.tbd`` v4 text stub with the real install name (``@rpath/libjulia.1.dylib``,
  ``@rpath/libjulia.1.11.dylib``);
* Windows: an import library from a ``.def`` (``lld -flavor link /lib /def:...``) naming the real DLL.
  Windows forbids undefined symbols, so these must cover every symbol the inputs use;
* libraries that are static archives on the real system (``-lgcc``, ``-lmingw32``...): an empty archive.

Planning (:func:`plan_stub_libraries`, :func:`render`, :func:`build_commands`, :func:`stub_cache_key`)
is pure; :func:`build_stub_libraries` and :func:`cached_stub_dir` run LLD and write files.

``lld_path`` is the generic ``lld`` driver (what Julia ships and what pylinkjl's discovery returns);
``-flavor`` is added. A flavor-specific program (``ld.lld``, ``lld-link``, ``ld64.lld``) is used as
is when it matches the flavor needed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pylinkjl.errors import InputError, LinkError, LldNotFoundError
from pylinkjl.link.cachedir import default_cache_root
from pylinkjl.link.stubs.elfobject import stub_object
from pylinkjl.link.stubs.providers import assign_providers
from pylinkjl.process import run_process
from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.stubs.libraries")

Linkage = Literal["shared", "static", "alias"]  # how a stub library is linked ("alias": a link-time copy)

# Bump when the rendered files or the build commands change meaning: it is part of every cache key.
STUB_FORMAT_VERSION = "2"  # 2: ELF sonames .so.1.MINOR from 1.10 and the JL_LIBJULIA_ version node
MANIFEST_NAME = "pylinkjl-stubs.json"
EMPTY_ARCHIVE = b"!<arch>\n"
_LLD_TIMEOUT = 120.0

# -l names that are static archives on the real system: an empty archive satisfies LLD's search.
_STATIC = {
    "linux": frozenset({"gcc", "gcc_eh", "c_nonshared", "ssp_nonshared"}),
    "macos": frozenset({"clang_rt", "clang_rt.osx"}),
    "windows": frozenset({"gcc", "gcc_eh", "mingw32", "mingwex", "moldname", "mingwthrd"}),
}
# Libraries of the host system: never written under their soname, so that a loader pointed at the
# stub directory (LD_LIBRARY_PATH) still finds the real C library.
_LINUX_SYSTEM = frozenset({"c", "m", "dl", "rt", "pthread", "gcc_s", "atomic", "stdc++"})
_LINUX_SONAMES = {
    "openlibm": "libopenlibm.so.4", "gcc_s": "libgcc_s.so.1", "atomic": "libatomic.so.1", "c": "libc.so.6",
    "m": "libm.so.6", "dl": "libdl.so.2", "rt": "librt.so.1", "pthread": "libpthread.so.0",
    "stdc++": "libstdc++.so.6",
}
_MACOS_INSTALL_NAMES = {
    "openlibm": "@rpath/libopenlibm.4.dylib", "gcc_s": "@rpath/libgcc_s.1.1.dylib",
    "atomic": "@rpath/libatomic.1.dylib", "System": "/usr/lib/libSystem.B.dylib",
    "c": "/usr/lib/libSystem.B.dylib", "m": "/usr/lib/libSystem.B.dylib",
}
_WINDOWS_DLLS = {
    "julia": "libjulia.dll", "julia-internal": "libjulia-internal.dll", "julia-debug": "libjulia-debug.dll",
    "julia-internal-debug": "libjulia-internal-debug.dll", "openlibm": "libopenlibm.dll",
    "ssp": "libssp-0.dll", "msvcrt": "msvcrt.dll", "msvcrt-os": "msvcrt.dll", "ucrt": "ucrtbase.dll",
    "ucrtbase": "ucrtbase.dll", "kernel32": "KERNEL32.dll", "advapi32": "ADVAPI32.dll",
    "shell32": "SHELL32.dll", "user32": "USER32.dll", "ws2_32": "WS2_32.dll",
    "pthread": "libwinpthread-1.dll", "winpthread": "libwinpthread-1.dll", "atomic": "libatomic-1.dll",
    "stdc++": "libstdc++-6.dll",
}
_JULIA_FAMILY = frozenset({"julia", "julia-internal", "julia-debug", "julia-internal-debug"})
# Data whose real size we know (the rest get one pointer).
_DATA_SIZES = {"jl_small_typeof": 1024}
_ELF_EMULATION = {"x86_64": "elf_x86_64", "aarch64": "aarch64linux"}


@dataclass(frozen=True)
class StubLibrary:
    """One stand-in for a ``-l`` library. Symbols are plain C names (no ``_`` prefix)."""

    link_name: str  # the -l name: "julia", "julia-internal", "openlibm", "gcc_s", "msvcrt", ...
    file_name: str  # what LLD's -l search finds: libjulia.so, libjulia.tbd, libjulia.dll.a, libgcc.a
    load_name: str  # ELF soname / Mach-O install name / DLL name; "" for a static archive
    functions: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    kind: Linkage = "shared"
    current_version: str = ""  # Mach-O only
    compatibility_version: str = ""  # Mach-O only
    aliases: tuple[str, ...] = ()  # more names for the same file (ELF: the soname, for the loader)
    source: str = ""  # kind "alias": the real library this is a link-time copy of
    symbol_version: str = ""  # ELF: the version node every symbol is defined under (JL_LIBJULIA_1.10); "" none


def alias_library(path: Path, load_name: str) -> StubLibrary:
    """A link-time copy of the real library ``path`` (ELF or Mach-O) whose soname / install name, which
    names no file of the tree, is replaced by ``load_name`` (the file's own name, ``@rpath/`` kept), so
    LLD writes the name the tree has into DT_NEEDED / LC_LOAD_DYLIB. Only LLD reads the copy (a rewritten
    Mach-O's code signature no longer matches, which LLD does not check); the image loads the tree's file."""
    return StubLibrary(path.name, path.name, load_name, kind="alias", source=str(path))


# -- planning ---------------------------------------------------------------------------------------

def _version3(text: str) -> str:
    parts = (text.split(".") + ["0", "0", "0"])[:3]
    return ".".join(p if p.isdigit() else "0" for p in parts)


def julia_symbol_version(soname_version: str) -> str:
    """The ELF version node of libjulia and libjulia-internal whose sonames end in ``soname_version``: none for
    ``"1"`` (1.9: real images import unversioned symbols), else ``JL_LIBJULIA_<soname_version>`` (real 1.10.10
    images import ``@JL_LIBJULIA_1.10`` from libjulia-internal.so.1.10; the real 1.13.1 runtime defines the node,
    renamed by JuliaC's privatisation, in both libraries: docs/julia-linking.md §1.8)."""
    return "" if soname_version == "1" else f"JL_LIBJULIA_{soname_version}"


def _describe(target: Target, name: str, soname_version: str, julia_version: str | None) -> StubLibrary:
    """File name, load name and kind of the stub for ``-l<name>`` (no symbols yet)."""
    if name in _STATIC[target.os]:
        return StubLibrary(name, f"lib{name}.a", "", kind="static")
    if target.os == "linux":
        version = ""
        if name in _JULIA_FAMILY:
            soname = f"lib{name}.so.{soname_version}"
            version = julia_symbol_version(soname_version)
        else:
            soname = _LINUX_SONAMES.get(name, f"lib{name}.so")
        file_name = f"lib{name}.so"
        aliases = (soname,) if name not in _LINUX_SYSTEM and soname != file_name else ()
        return StubLibrary(name, file_name, soname, aliases=aliases, symbol_version=version)
    if target.os == "macos":
        compat = _version3(soname_version)
        if name in ("julia", "julia-debug"):
            # Real images: @rpath/libjulia.1.dylib (1.9), @rpath/libjulia.1.11.dylib (1.11).
            install = f"@rpath/lib{name}.{soname_version}.dylib"
        elif name in ("julia-internal", "julia-internal-debug"):
            install = f"@rpath/lib{name}.dylib"  # unversioned in real 1.9 and 1.11 images
        else:
            install = _MACOS_INSTALL_NAMES.get(name, f"@rpath/lib{name}.dylib")
            compat = ""
        current = _version3(julia_version) if julia_version and name in _JULIA_FAMILY else compat
        return StubLibrary(name, f"lib{name}.tbd", install, current_version=current,
                           compatibility_version=compat)
    dll = _WINDOWS_DLLS.get(name, f"lib{name}.dll")
    if name == "gcc_s":
        dll = "libgcc_s_sjlj-1.dll" if target.arch == "i686" else "libgcc_s_seh-1.dll"
    return StubLibrary(name, f"lib{name}.dll.a", dll)


def plan_stub_libraries(target: Target, undefined: Iterable[str], data_hints: Iterable[str],
                        link_names: Sequence[str], *, soname_version: str = "1",
                        julia_version: str | None = None, provided: Collection[str] = ()) -> list[StubLibrary]:
    """One stub per ``-l`` name of the link line (empty ones too: LLD must find every ``-l``).

    ``undefined``: raw object-file names the inputs leave undefined; ``data_hints``: plain C names
    known to be data; ``soname_version``: ``"1"`` gives ``libjulia.so.1`` / ``@rpath/libjulia.1.dylib``
    (``"1.11"`` gives ``libjulia.so.1.11`` with symbol version ``JL_LIBJULIA_1.11`` /
    ``@rpath/libjulia.1.11.dylib``); ``julia_version`` sets the Mach-O current version;
    ``provided``: the ``-l`` names a real tree has, whose symbols no stub takes (:func:`assign_providers`).
    """
    described = [_describe(target, n, soname_version, julia_version) for n in dict.fromkeys(link_names)]
    shared_names = [lib.link_name for lib in described if lib.kind == "shared"]  # an empty .a holds nothing
    assigned = assign_providers(target, undefined, data_hints, shared_names, provided)
    out = []
    for lib in described:
        functions, data = assigned.get(lib.link_name, ((), ()))
        out.append(dataclasses.replace(lib, functions=functions, data=data))
    return out


# -- rendering --------------------------------------------------------------------------------------

def _tbd(lib: StubLibrary, target: Target) -> str:
    arch = f"{target.darwin_arch}-macos"
    symbols = [target.mangle(s) for s in sorted(set(lib.functions) | set(lib.data))]
    if lib.load_name == "/usr/lib/libSystem.B.dylib":
        symbols.append("dyld_stub_binder")  # no "_" (sic); so it binds two-level as with a real SDK
    lines = [
        "--- !tapi-tbd",
        "tbd-version:     4",
        f"targets:         [ {arch} ]",
        f"install-name:    '{lib.load_name}'",
    ]
    if lib.current_version:
        lines.append(f"current-version: {lib.current_version}")
    if lib.compatibility_version:
        lines.append(f"compatibility-version: {lib.compatibility_version}")
    if symbols:
        quoted = ",\n                     ".join("'" + s.replace("'", "''") + "'" for s in symbols)
        lines += ["exports:", f"  - targets:         [ {arch} ]", f"    symbols:         [ {quoted} ]"]
    lines.append("...")
    return "\n".join(lines) + "\n"


def _check_names(lib: StubLibrary, target: Target) -> None:
    """Refuse names the stub formats cannot carry (LLD would misread them silently, not fail)."""
    for name in (*lib.functions, *lib.data):
        if not name or not name.isprintable() or (target.format == "coff" and '"' in name):
            raise InputError(None, f"symbol {name!r} cannot be written to a stub for {lib.file_name}")


def _def_entry(name: str, target: Target, is_data: bool) -> str:
    if target.arch == "i686" and "@" in name:
        # stdcall (Win32 API): without "==" lld would import the decorated name, which no DLL exports.
        entry = f'"_{name}" == {name.split("@", 1)[0]}'
    else:
        entry = f'"{name}"'  # i686 cdecl: /machine:x86 adds the "_" itself
    return f"  {entry} DATA" if is_data else f"  {entry}"


def _def(lib: StubLibrary, target: Target) -> str:
    lines = [f'LIBRARY "{lib.load_name}"', "EXPORTS"]
    lines += [_def_entry(n, target, False) for n in lib.functions]
    lines += [_def_entry(n, target, True) for n in lib.data]
    return "\n".join(lines) + "\n"


def _version_script(lib: StubLibrary) -> str:
    """Every symbol of the stub under its one version node, as Julia's julia.expmap puts its exports."""
    return f"{lib.symbol_version} {{\n  global:\n    *;\n}};\n"


def render(lib: StubLibrary, target: Target) -> dict[str, bytes]:
    """The input files for ``lib`` (pure): file name -> bytes. For a ``.tbd`` or a static archive the
    input is the final file; otherwise :func:`build_commands` turns it into ``lib.file_name``."""
    if lib.kind == "static":
        return {lib.file_name: EMPTY_ARCHIVE}
    if lib.kind == "alias":  # made from the real library when built (_build_into); keyed by its identity
        return {}
    _check_names(lib, target)
    if target.format == "macho":
        return {lib.file_name: _tbd(lib, target).encode("utf-8")}
    if target.format == "coff":
        return {f"lib{lib.link_name}.def": _def(lib, target).encode("utf-8")}
    sizes = {n: _DATA_SIZES.get(n, target.pointer_size) for n in lib.data}
    files = {f"{lib.file_name}.o": stub_object(target.arch, lib.functions, lib.data, sizes)}
    if lib.symbol_version:
        files[f"{lib.file_name}.ver"] = _version_script(lib).encode("utf-8")
    return files


def lld_argv(lld_path: str, flavor: str) -> list[str]:
    """``[lld_path, "-flavor", flavor]``, or just ``[lld_path]`` when the program name already selects that
    driver (the one name table is :func:`pylinkjl.link.lld.driver_of`)."""
    from pylinkjl.link.lld import canonical_flavor, driver_of, serves

    kind = driver_of(lld_path)
    if kind != "generic" and serves(kind, flavor):
        return [lld_path]
    return [lld_path, "-flavor", canonical_flavor(flavor)]


def build_commands(lib: StubLibrary, target: Target, lld_path: str, workdir: str | os.PathLike[str]
                   ) -> list[list[str]]:
    """LLD invocations that turn :func:`render`'s files in ``workdir`` into ``lib.file_name`` there."""
    if lib.kind in ("static", "alias") or target.format == "macho":
        return []
    work = Path(workdir)
    out = str(work / lib.file_name)
    if target.format == "coff":
        definition = work / f"lib{lib.link_name}.def"
        return [lld_argv(lld_path, "link") + ["/lib", f"/def:{definition}", f"/machine:{target.coff_machine}",
                                              f"/out:{out}"]]
    obj = str(work / f"{lib.file_name}.o")
    version = ["--version-script", str(work / f"{lib.file_name}.ver")] if lib.symbol_version else []
    return [lld_argv(lld_path, "gnu") + ["-shared", "-m", _ELF_EMULATION[target.arch],
                                         "-soname", lib.load_name, *version, "--build-id=none", "-o", out, obj]]


# -- cache key --------------------------------------------------------------------------------------

def _content_hash() -> Any:
    """SHA-256 without importing hashlib, whose OpenSSL load costs ~6 ms of every command's start-up."""
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # CPython 3.10, 3.11
        except ImportError:  # pragma: no cover - other Pythons
            from hashlib import sha256
    return sha256()


def stub_cache_key(target: Target, libs: Sequence[StubLibrary], lld_version: str = "",
                   rendered: Sequence[Mapping[str, bytes]] | None = None) -> str:
    """sha256 (hex) of everything that decides the stub files: the rendered inputs, names, LLD version."""
    h = _content_hash()
    files = rendered if rendered is not None else [render(lib, target) for lib in libs]

    def feed(*parts: str | bytes) -> None:
        for part in parts:
            data = part.encode("utf-8") if isinstance(part, str) else part
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)

    feed("pylinkjl-stubs", STUB_FORMAT_VERSION, target.name, lld_version)
    for lib, inputs in zip(libs, files):
        feed(lib.link_name, lib.file_name, lib.load_name, lib.kind, "\0".join(lib.aliases))
        if lib.kind == "alias":
            st = os.stat(lib.source)
            feed(lib.source, str(st.st_size), str(st.st_mtime_ns))
        for name, content in sorted(inputs.items()):
            feed(name, content)
    digest: str = h.hexdigest()
    return digest


def stub_dir_for(target: Target, libs: Sequence[StubLibrary], lld_version: str,
                 cache_root: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`cached_stub_dir` keeps these stubs (pure: a planner can put it in ``-L``)."""
    return plan_stub_set(target, libs, lld_version, cache_root).directory


@dataclass(frozen=True)
class StubSet:
    """The stub libraries of one link, rendered and keyed once when the link is planned; running the
    plan builds them from these very bytes (:func:`ensure_stub_set`)."""

    target: Target
    libraries: tuple[StubLibrary, ...]
    rendered: tuple[Mapping[str, bytes], ...]  # render(lib) for each library, in order
    lld_version: str
    directory: Path  # <cache_root>/stubs/<key>/

    def manifest(self) -> dict[str, object]:
        return {"key": self.directory.name, "target": self.target.name, "lld_version": self.lld_version,
                "format": STUB_FORMAT_VERSION,
                "libraries": [{"link_name": lib.link_name, "file_name": lib.file_name, "load_name": lib.load_name,
                               "symbol_version": lib.symbol_version, "functions": len(lib.functions),
                               "data": len(lib.data)} for lib in self.libraries]}


def plan_stub_set(target: Target, libs: Sequence[StubLibrary], lld_version: str,
                  cache_root: str | os.PathLike[str] | None = None) -> StubSet:
    """Render ``libs`` and decide their cache folder (pure apart from reading the environment for the root)."""
    rendered = tuple(render(lib, target) for lib in libs)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    key = stub_cache_key(target, libs, lld_version, rendered)
    return StubSet(target, tuple(libs), rendered, lld_version, root / "stubs" / key)


# -- running ----------------------------------------------------------------------------------------

def _run_lld(argv: list[str], lib: StubLibrary) -> None:
    try:
        done = run_process(argv, timeout=_LLD_TIMEOUT)
    except OSError as exc:
        raise LldNotFoundError(f"cannot run {argv[0]}: {exc}",
                               hint="pass the path of LLD's generic 'lld' driver") from exc
    if done.returncode != 0 or done.timed_out:
        why = "timed out" if done.timed_out else f"exit status {done.returncode}"
        raise LinkError(f"building the stub library {lib.file_name} failed ({why})", argv=list(argv),
                        output=done.output, returncode=done.returncode)


def _build_alias(lib: StubLibrary, work: Path) -> None:
    from pylinkjl.binfmt.files import read_file
    from pylinkjl.binfmt.loadname import with_load_name

    data = read_file(lib.source, "a shared library")
    renamed = with_load_name(data, lib.source, lib.load_name)
    if renamed is None:
        raise InputError(lib.source, f"its load name cannot be rewritten to {lib.load_name}")
    (work / lib.file_name).write_bytes(renamed)


def _build_into(libs: Sequence[StubLibrary], target: Target, lld_path: str, work: Path,
                rendered: Sequence[Mapping[str, bytes]] | None = None) -> list[str]:
    """Write and build every stub in ``work``; the final file names, inputs removed."""
    import shutil  # only when building (a cache miss): keeps `pylinkjl link` start-up lean

    finals: list[str] = []
    for i, lib in enumerate(libs):
        inputs = rendered[i] if rendered is not None else render(lib, target)
        if lib.kind == "alias":
            _build_alias(lib, work)
        for name, content in inputs.items():
            (work / name).write_bytes(content)
        for argv in build_commands(lib, target, lld_path, work):
            _run_lld(argv, lib)
            if not (work / lib.file_name).is_file():
                raise LinkError(f"building the stub library {lib.file_name}: LLD reported success but wrote "
                                "nothing", argv=list(argv))
        for name in inputs:
            if name != lib.file_name:
                (work / name).unlink()
        for alias in lib.aliases:
            shutil.copyfile(work / lib.file_name, work / alias)
        finals += [lib.file_name, *lib.aliases]
    return finals


def build_stub_libraries(libs: Sequence[StubLibrary], target: Target, lld_path: str,
                         dest_dir: str | os.PathLike[str], *, manifest: Mapping[str, object] | None = None,
                         rendered: Sequence[Mapping[str, bytes]] | None = None) -> list[Path]:
    """Build ``libs`` into ``dest_dir`` and return the files written there.

    Everything is built in a temporary directory beside ``dest_dir`` first. A new ``dest_dir`` appears
    whole (one rename); in an existing one each file is replaced atomically. Either way an interrupted
    or failed build leaves no half-written library. Raises LinkError / LldNotFoundError.
    """
    import shutil
    import tempfile

    dest = Path(dest_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        finals = _build_into(libs, target, lld_path, work, rendered)
        if manifest is not None:
            text = json.dumps(manifest, indent=1, sort_keys=True)
            (work / MANIFEST_NAME).write_text(text, encoding="utf-8")
        if not dest.exists():
            try:
                os.rename(work, dest)
            except OSError:
                if not dest.is_dir():  # not a concurrent builder that got there first
                    raise
        if dest.exists() and work.exists():
            names = finals + ([MANIFEST_NAME] if manifest is not None else [])
            for name in names:  # manifest last: it marks the directory complete
                os.replace(work / name, dest / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("built %d stub libraries for %s in %s (%.1f ms)", len(libs), target, dest,
             (time.perf_counter() - start) * 1000)
    return [dest / name for name in finals]


def ensure_stub_set(stubs: StubSet, lld_path: str) -> Path:
    """``stubs.directory``, built now from the planned bytes if it is not there yet."""
    dest = stubs.directory
    if (dest / MANIFEST_NAME).is_file():
        log.debug("stub cache hit: %s", dest)
        return dest
    log.debug("stub cache miss: %s", dest)
    try:
        build_stub_libraries(stubs.libraries, stubs.target, lld_path, dest, manifest=stubs.manifest(),
                             rendered=stubs.rendered)
    except OSError as err:
        from pylinkjl.errors import filesystem_error

        # a failed write (ENOSPC) names no file: then the cache folder is the place to name
        raise filesystem_error(err, "write the stub-library cache (PYLINKJL_CACHE_DIR, else ~/.cache/pylinkjl)",
                               err.filename if err.filename is not None else dest,
                               hint="point PYLINKJL_CACHE_DIR at a writable folder") from None
    return dest


def cached_stub_dir(target: Target, libs: Sequence[StubLibrary], lld_path: str, lld_version: str,
                    cache_root: str | os.PathLike[str] | None = None) -> Path:
    """``<cache_root>/stubs/<key>/`` holding ``libs``, built now if it is not there yet."""
    return ensure_stub_set(plan_stub_set(target, libs, lld_version, cache_root), lld_path)
