"""A Julia installation on disk, read without running Julia.

Mirrors the directory helpers of ``Base.Linking`` (docs/julia-linking.md §1.1, §1.4): ``bindir``, ``libdir``,
``private_libdir``, ``shlibdir`` and the three in-tree places Julia looks for its bundled ``lld``.
The version comes from ``include/julia/julia_version.h``, else ``share/julia/base/version_git.jl`` or a
``VERSION`` file, else the runtime's own file names (``libjulia.so.1.13.1``, ``libjulia.1.13.1.dylib``, also
when grafted: ``ICl90UHn_libjulia.so.1.13.1``), else on Windows the string ``ijl_ver_string`` of
``bin/libjulia-internal.dll`` returns (read from its code); a tree that tells none has no version and the
link needs ``--julia-version``. The OS comes from which ``libjulia`` files exist; the
architecture from the first bytes of the ``libjulia`` binary. So a Windows or macOS tree copied to a Linux
machine is read as what it is, which is what cross-linking needs. Real runtime trees without headers
(juliac bundles, PackageCompiler apps, runtime-only layers): docs/julia-linking.md §1.8.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pylinkjl.binfmt.sniff import sniff_file
from pylinkjl.errors import InputError, PylinkjlError
from pylinkjl.process import which
from pylinkjl.target import FORMAT_OF_OS

if TYPE_CHECKING:
    from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.juliatree")

TreeOS = Literal["linux", "macos", "windows"]

VERSION_HEADER = Path("include", "julia", "julia_version.h")
VERSION_GIT = Path("share", "julia", "base", "version_git.jl")
# Bounded reads: none of these files is anywhere near this big in a real tree.
_MAX_TEXT = 1 << 16
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")


@dataclass(frozen=True)
class JuliaTree:
    home: Path
    version: str | None  # None: nothing in the tree tells it (the link needs --julia-version)
    os: TreeOS | None
    arch: str | None
    debug: bool
    version_source: str = ""  # the file the version was read from ("" when there is none)
    token_salt: str = ""  # newer JuliaC --privatize: "libjulia" replaced by this salt (Xy12-_Ab.so.1.13.1)

    @property
    def bindir(self) -> Path:
        return self.home / "bin"

    @property
    def libdir(self) -> Path:
        return self.home / "lib"

    @property
    def private_libdir(self) -> Path:
        return self.home / "lib" / "julia"

    @property
    def shlibdir(self) -> Path:
        """Where the shared ``libjulia`` lives: ``bin`` on Windows (DLLs sit next to the exe), ``lib`` elsewhere."""
        return self.bindir if self.os == "windows" else self.libdir

    @property
    def libexecdir(self) -> Path:
        return self.home / "libexec" / "julia"

    @property
    def exe_suffix(self) -> str:
        return ".exe" if self.os == "windows" else ""

    def lld_candidates(self) -> list[Path]:
        """The in-tree paths Julia tries, in its order (``Base.Linking.__init__`` / ``lld_path``)."""
        name = "lld" + self.exe_suffix
        return [self.libexecdir / name, self.bindir / ".." / "tools" / name, self.bindir / name]

    def matches(self, target: Target) -> bool:
        """Whether this tree's libraries can be linked against for ``target`` (unknown arch: assume yes)."""
        return self.os == target.os and (self.arch is None or self.arch == target.arch)

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        m = re.match(r"(\d+)\.(\d+)\.(\d+)", self.version or "")
        return None if m is None else (int(m.group(1)), int(m.group(2)), int(m.group(3)))


# -- version -------------------------------------------------------------------------------------------

def _read_text(path: Path) -> str:
    from pylinkjl.binfmt.files import read_head

    return read_head(path, _MAX_TEXT).decode("utf-8", errors="replace")


def parse_version_header(path: Path) -> str:
    """The version in a ``julia_version.h``: ``JULIA_VERSION_STRING``, else MAJOR/MINOR/PATCH/IS_RELEASE."""
    text = _read_text(path)
    m = re.search(r'^[ \t]*#[ \t]*define[ \t]+JULIA_VERSION_STRING[ \t]+"([^"\n]*)"', text, re.MULTILINE)
    if m:
        if _VERSION_RE.match(m.group(1)):
            return m.group(1)
        raise InputError(path, f"JULIA_VERSION_STRING {m.group(1)!r} is not a Julia version",
                         offset=len(text[: m.start(1)].encode("utf-8", errors="replace")))
    parts: dict[str, int] = {}
    for name in ("MAJOR", "MINOR", "PATCH", "IS_RELEASE"):
        d = re.search(rf"^[ \t]*#[ \t]*define[ \t]+JULIA_VERSION_{name}[ \t]+(\d{{1,6}})\b", text, re.MULTILINE)
        if d:
            parts[name] = int(d.group(1))
    if not all(k in parts for k in ("MAJOR", "MINOR", "PATCH")):
        raise InputError(path, "no JULIA_VERSION_STRING and no JULIA_VERSION_MAJOR/MINOR/PATCH defines")
    version = f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"
    # Julia's Makefile writes IS_RELEASE 0 when VERSION has a suffix; the suffix itself is only in the
    # string, and "-DEV" is by far the most common one.
    return version if parts.get("IS_RELEASE", 1) else version + "-DEV"


def _version_from_fallbacks(home: Path) -> tuple[str, Path] | None:
    """Trees without headers: a ``VERSION`` file or ``version_git.jl`` (tag-like string), with the file."""
    vfiles = [home / "VERSION", home / "share" / "julia" / "VERSION"]
    if home.name == "usr":  # an in-tree build: <source>/usr, with the version in <source>/VERSION
        vfiles.append(home.parent / "VERSION")
    for vfile in vfiles:
        if vfile.is_file():
            first = _read_text(vfile).strip().splitlines()[:1]
            if first and _VERSION_RE.match(first[0].strip()):
                return first[0].strip(), vfile
    git = home / VERSION_GIT
    if git.is_file():
        m = re.search(r'"v?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)"', _read_text(git))
        if m:
            return m.group(1), git
    return None


# The runtime's file names: libjulia.so.1.13.1 (Linux), libjulia.1.13.1.dylib (macOS), in a juliac bundle
# or a wheel also with a graft prefix (JuliaC's --privatize, auditwheel/delocate): ICl90UHn_libjulia.so.1.13.1.
# Group "base" is the name without the prefix and without the version.
_RUNTIME_NAME = re.compile(
    r"^(?:(?P<graft>[0-9A-Za-z_.-]*?)_)?(?P<base>lib(?P<name>julia(?:-internal|-codegen)?(?:-debug)?))"
    r"(?:-(?P<hash>[0-9a-f]{8}))?"  # auditwheel's graft: libjulia-1a2b3c4d.so.1.13.1
    r"(?:\.so(?P<so_version>(?:\.\d+)*)|(?P<dylib_version>(?:\.\d+)*)\.dylib)$")


# Newer JuliaC (2026) privatises Linux trees by replacing the "libjulia" token with an 8-character salt
# (length-preserving): Xy12-_Ab.so.1.13.1, lib/julia/Xy12-_Ab-internal.so.1.13. Read in its source
# (src/privatize_linux.jl), not seen in a real tree.
_TOKEN_INTERNAL = re.compile(r"^(?P<salt>[0-9A-Za-z_-]{8})-internal(?:-debug)?\.so(?:\.\d+)*$")


def token_salt(home: Path) -> str:
    """The salt of a tree privatised by token replacement ("" for any other tree): ``lib/julia`` holds
    ``<salt>-internal.so...`` and ``lib`` holds ``<salt>.so...``."""
    try:
        internal = [m.group("salt") for p in (home / "lib" / "julia").iterdir()
                    if (m := _TOKEN_INTERNAL.match(p.name)) and not m.group("salt").startswith("lib")]
        names = [p.name for p in (home / "lib").iterdir()]
    except OSError:
        return ""
    for salt in sorted(set(internal)):
        if any(re.fullmatch(rf"{re.escape(salt)}(?:-debug)?\.so(?:\.\d+)*", n) for n in names):
            return salt
    return ""


def parse_runtime_name(file_name: str, salt: str = "") -> tuple[str, str, str, str] | None:
    """``(graft, library, os, version)`` of a libjulia-family file name, e.g. ``ICl90UHn_libjulia.so.1.13.1``
    -> ``("ICl90UHn", "julia", "linux", "1.13.1")`` (auditwheel's ``libjulia-1a2b3c4d.so.1.13.1`` gives the
    hash as the graft); None for any other name."""
    if salt and file_name.startswith(salt):
        t = re.fullmatch(rf"{re.escape(salt)}(?P<kind>(?:-internal|-codegen)?(?:-debug)?)\.so(?P<v>(?:\.\d+)*)",
                         file_name)
        if t is not None:
            return salt, "julia" + t.group("kind"), "linux", t.group("v").lstrip(".")
    m = _RUNTIME_NAME.match(file_name)
    if m is None:
        return None
    linux = m.group("so_version") is not None
    version = (m.group("so_version") if linux else m.group("dylib_version")) or ""
    graft = m.group("graft") or m.group("hash") or ""
    return graft, m.group("name"), "linux" if linux else "macos", version.lstrip(".")


def _version_from_file_names(files: list[Path], salt: str = "") -> tuple[str, Path] | None:
    """The full X.Y.Z a libjulia file name carries (``libjulia.so.1.13.1``); shorter ones (``.so.1``,
    ``.so.1.13``) do not say which patch release it is."""
    for path in files:
        parsed = parse_runtime_name(path.name, salt)
        if parsed is not None and re.fullmatch(r"\d+\.\d+\.\d+", parsed[3]):
            return parsed[3], path
    return None


def _version_from_dll(home: Path) -> tuple[str, Path] | None:
    """Windows: what ``ijl_ver_string`` of ``bin/libjulia-internal.dll`` returns, read from its code
    (binfmt/runtimeversion.py); the DLLs carry no version in their names or resources."""
    from pylinkjl.binfmt.runtimeversion import read_dll_version

    for name in ("libjulia-internal.dll", "libjulia-internal-debug.dll"):
        dll = home / "bin" / name
        if dll.is_file():
            try:
                version = read_dll_version(str(dll))
            except PylinkjlError as exc:
                log.debug("cannot read the version of %s: %s", dll, exc)
                continue
            if version is not None:
                return version, dll
    return None


# -- OS, architecture, debug ----------------------------------------------------------------------------

def _libjulia_files(home: Path, salt: str = "") -> dict[TreeOS, list[Path]]:
    """libjulia files by the OS their name implies (release before debug, real files before links)."""
    found: dict[TreeOS, list[Path]] = {}
    bindir, libdir = home / "bin", home / "lib"
    win = [p for p in (bindir / "libjulia.dll", bindir / "libjulia-debug.dll") if p.is_file()]
    if win or (bindir / "julia.exe").is_file():
        found["windows"] = win
    try:
        names = sorted(p for p in libdir.iterdir() if "libjulia" in p.name or (salt and p.name.startswith(salt)))
    except OSError:  # no lib/ (a Windows tree) or unreadable
        names = []
    if names:
        parsed = {p: parse_runtime_name(p.name, salt) for p in names}
        mine = {p: v for p, v in parsed.items() if v is not None and v[1] in ("julia", "julia-debug")}
        mac = [p for p, v in mine.items() if v[2] == "macos"]
        lin = [p for p, v in mine.items() if v[2] == "linux"]
        for os_, files in (("macos", mac), ("linux", lin)):
            if files:
                # The longest name (libjulia.so.1.11.7) is the real file; the others are symlinks to it.
                found[os_] = sorted(files, key=lambda p: ("-debug" in p.name, -len(p.name)))  # type: ignore[index]
    return found


def _binary_arch(path: Path, tree_os: TreeOS) -> str | None:
    """The architecture in libjulia's header (None when unreadable, fat, or not the format its name says)."""
    try:
        kind = sniff_file(path)
    except PylinkjlError as exc:
        log.debug("cannot read %s: %s", path, exc)
        return None
    if kind.format != FORMAT_OF_OS[tree_os]:
        log.warning("%s is %s, not the %s file its name implies", path, kind.description, FORMAT_OF_OS[tree_os])
        return None
    return kind.arch if kind.arch in ("x86_64", "aarch64", "i686") else None


# -- opening a tree ---------------------------------------------------------------------------------------

def open_tree(home: str | os.PathLike[str]) -> JuliaTree:
    """Read the Julia tree at ``home`` (the folder holding ``bin``, ``lib``, ``include``). Raises InputError
    when it is not a folder, or holds neither a version file nor any libjulia."""
    root = Path(os.path.abspath(home))
    if not root.is_dir():
        raise InputError(root, "not a directory (expected a Julia installation: the folder holding bin/ and lib/)")
    header = root / VERSION_HEADER
    found = (parse_version_header(header), header) if header.is_file() else _version_from_fallbacks(root)
    salt = token_salt(root)
    libs = _libjulia_files(root, salt)
    if len(libs) > 1:
        log.warning("%s holds libjulia files of several OSes (%s); using %s", root, ", ".join(libs), next(iter(libs)))
    tree_os: TreeOS | None = next(iter(libs), None)
    files = libs.get(tree_os, []) if tree_os else []
    if found is None:
        found = _version_from_file_names(files, salt)
    if found is None and tree_os == "windows":
        found = _version_from_dll(root)
    if found is None and not files:
        looked = ", ".join(str(p) for p in (VERSION_HEADER, VERSION_GIT, Path("VERSION"), Path("lib", "libjulia.*"),
                                            Path("bin", "libjulia.dll")))
        raise InputError(root, f"not a Julia tree: none of {looked} is there",
                         hint="pass the folder that contains bin/julia or lib/libjulia (e.g. /opt/julia-1.11.7)")
    release = [p for p in files if "-debug" not in p.name]
    debug = bool(files) and not release
    arch = _binary_arch((release or files)[0], tree_os) if files and tree_os else None
    version, source = found if found is not None else (None, None)
    tree = JuliaTree(home=root, version=version, os=tree_os, arch=arch, debug=debug, token_salt=salt,
                     version_source=str(source.relative_to(root) if source.is_relative_to(root) else source)
                     if source is not None else "")
    log.debug("Julia tree %s: %s", root, tree)
    return tree


def find_julia_on_path(environ: Mapping[str, str] = os.environ) -> JuliaTree | None:
    """The tree of the ``julia`` found on ``environ['PATH']``, or None (no julia, or a launcher such as
    juliaup's that does not sit inside a tree)."""
    exe = which("julia", environ)
    return tree_of_program(exe) if exe is not None else None


def tree_of_program(exe: str) -> JuliaTree | None:
    """The tree a ``julia`` program sits in (``<tree>/bin/julia``, links followed), or None (a launcher)."""
    resolved = Path(exe).resolve()
    try:
        return open_tree(resolved.parent.parent)
    except InputError as exc:
        log.debug("julia on PATH (%s -> %s) is not inside a Julia tree: %s", exe, resolved, exc)
        return None
