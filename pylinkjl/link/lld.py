"""Finding LLD: an ordered list of candidates, each probed once, the first usable one wins.

Order (first wins): ``--lld PATH``, ``$PYLINKJL_LLD``, the Julia install (its bundled lld, run with the
library path Julia gives it, julia-linking.md §1.2), then ``PATH`` (``lld``, ``lld-NN`` newest first,
``ld.lld``, ``ld64.lld``), then the usual LLVM folders. LLD picks its driver from ``-flavor`` (only as
argv[1]) or else from its program name (lld-toolchain.md §1.2), so each candidate records the driver its
name selects: a generic ``lld`` serves every flavor, ``ld.lld`` only ELF/MinGW, ``ld64.lld`` only Mach-O.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pylinkjl.errors import LldNotFoundError, TargetError
from pylinkjl.link.cachedir import read_json, write_json
from pylinkjl.link.juliatree import JuliaTree, find_julia_on_path, open_tree
from pylinkjl.process import run_process
from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.lld")

Kind = Literal["generic", "ld.lld", "ld64.lld", "lld-link", "wasm-ld"]
Flavor = Literal["gnu", "darwin", "link", "wasm"]

MIN_VERSION = (14, 0, 0)  # the oldest LLD a Julia release bundled for pkgimages (1.9: LLVM 14)
ENV_VAR = "PYLINKJL_LLD"
_ON_WINDOWS = os.name == "nt"
_EXE = ".exe" if _ON_WINDOWS else ""
_VERSION_RE = re.compile(r"LLD (\d+)\.(\d+)\.(\d+)")

# -flavor spellings LLD accepts, and the program-name parts it recognises (lld/tools/lld/lld.cpp).
_FLAVOR_NAMES: dict[str, Flavor] = {
    "gnu": "gnu", "ld": "gnu", "ld.lld": "gnu",
    "darwin": "darwin", "ld64": "darwin", "ld64.lld": "darwin",
    "link": "link",
    "wasm": "wasm", "ld-wasm": "wasm",
}
_KIND_OF_FLAVOR: dict[Flavor, Kind] = {"gnu": "ld.lld", "darwin": "ld64.lld", "link": "lld-link", "wasm": "wasm-ld"}
_FLAVOR_OF_KIND: dict[Kind, Flavor] = {kind: flavor for flavor, kind in _KIND_OF_FLAVOR.items()}


@dataclass(frozen=True)
class LldCandidate:
    path: Path
    source: str  # "explicit" | "PYLINKJL_LLD" | "julia" | "PATH" | "llvm-folder"
    env: dict[str, str] = field(default_factory=dict)  # variables to set when running this lld
    kind: Kind = "generic"


@dataclass(frozen=True)
class LldProbe:
    candidate: LldCandidate
    version: tuple[int, int, int] | None
    version_text: str
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None and self.version is not None and self.version >= MIN_VERSION

    @property
    def version_string(self) -> str | None:
        return None if self.version is None else ".".join(map(str, self.version))


# -- names and flavors -----------------------------------------------------------------------------------

def kind_of(path: str | os.PathLike[str]) -> Kind:
    """The driver LLD picks from its program name: basename, ``.exe`` dropped, split on ``-``, first
    part that names a flavor wins; no such part means the generic driver (needs ``-flavor``)."""
    name = Path(path).name
    if name.lower().endswith(".exe"):
        name = name[:-4]
    for part in name.split("-"):
        flavor = _FLAVOR_NAMES.get(part.lower())
        if flavor is not None:
            return _KIND_OF_FLAVOR[flavor]
    return "generic"


def canonical_flavor(flavor: str) -> Flavor:
    try:
        return _FLAVOR_NAMES[flavor]
    except KeyError:
        raise TargetError(f"unknown LLD flavor {flavor!r}; expected one of gnu, darwin, link, wasm") from None


def target_flavor(target: Target) -> Flavor:
    """The ``-flavor`` Julia uses per OS: MinGW goes through the GNU front-end (``-m i386pep``)."""
    return "darwin" if target.os == "macos" else "gnu"


def serves(kind: Kind, flavor: str) -> bool:
    return kind == "generic" or _FLAVOR_OF_KIND[kind] == canonical_flavor(flavor)


def flavor_args(candidate: LldCandidate, flavor: str) -> list[str]:
    """What goes right after argv[0]: ``-flavor <f>`` for the generic driver, nothing for a binary whose
    name already selects that driver. Raises LldNotFoundError when the binary cannot link that flavor."""
    canon = canonical_flavor(flavor)
    if candidate.kind == "generic":
        return ["-flavor", canon]
    if _FLAVOR_OF_KIND[candidate.kind] == canon:
        return []
    raise LldNotFoundError(
        f"{candidate.path} is {candidate.kind}, which cannot link -flavor {canon}",
        hint=f"use a generic lld (e.g. lld-19) or {_KIND_OF_FLAVOR[canon]}, via --lld PATH or {ENV_VAR}")


# -- candidates ------------------------------------------------------------------------------------------

def julia_lld_env(tree: JuliaTree, lld_path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables Julia sets before running its bundled lld (``adjust_ENV!``, julia-linking.md §1.2):
    the bundled lld links against Julia's libLLVM in lib/julia, which its RPATH does not find."""
    tree_os = tree.os or ("windows" if _ON_WINDOWS else "macos" if sys.platform == "darwin" else "linux")
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
            yield LldCandidate(path, "julia", julia_lld_env(tree, path, environ), kind_of(path))


def candidates(*, explicit: str | os.PathLike[str] | None = None, julia_home: str | os.PathLike[str] | None = None,
               environ: Mapping[str, str] = os.environ) -> Iterator[LldCandidate]:
    """Every LLD worth trying, in order, without duplicates (same binary reached as the same driver).
    Explicit and ``$PYLINKJL_LLD`` entries are yielded even when missing so that probing can say so."""
    def raw() -> Iterator[LldCandidate]:
        if explicit is not None:
            path = _explicit_path(os.fspath(explicit), environ)
            yield LldCandidate(path, "explicit", {}, kind_of(path))
        if environ.get(ENV_VAR):
            path = _explicit_path(environ[ENV_VAR], environ)
            yield LldCandidate(path, ENV_VAR, {}, kind_of(path))
        tree = open_tree(julia_home) if julia_home is not None else find_julia_on_path(environ)
        if tree is not None:
            yield from _julia_candidates(tree, environ)
        for path in _path_candidates(environ):
            if path.is_file():
                yield LldCandidate(path, "PATH", {}, kind_of(path))
        for path in _llvm_folder_candidates():
            if path.is_file():
                yield LldCandidate(path, "llvm-folder", {}, kind_of(path))

    # Keyed by (binary, driver): ld.lld-19 and lld-19 are one file but not one driver.
    seen: set[tuple[str, Kind]] = set()
    for cand in raw():
        key = (os.path.realpath(cand.path), cand.kind)
        if key in seen:
            log.debug("skipping %s (%s): same binary as an earlier candidate", cand.path, cand.source)
            continue
        seen.add(key)
        yield cand


# -- probing ---------------------------------------------------------------------------------------------

_probe_cache: dict[tuple[object, ...], tuple[tuple[int, int, int] | None, str, str | None]] = {}
_probe_lock = threading.Lock()


def clear_probe_cache() -> None:
    with _probe_lock:
        _probe_cache.clear()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "(no output)"


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def version_argv(candidate: LldCandidate) -> list[str]:
    if candidate.kind == "generic":
        return [str(candidate.path), "-flavor", "gnu", "--version"]
    return [str(candidate.path), "--version"]


def _run_probe(candidate: LldCandidate, timeout: float, environ: Mapping[str, str]) \
        -> tuple[tuple[int, int, int] | None, str, str | None, bool]:
    """(version, version_text, problem, cacheable)."""
    path = candidate.path
    if not path.exists():
        return None, "", "does not exist", False
    if not path.is_file():
        return None, "", "is not a file", False
    if not os.access(path, os.X_OK):
        return None, "", f"is not executable (chmod +x {path})", False
    try:
        done = run_process(version_argv(candidate), env={**environ, **candidate.env}, timeout=timeout)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return None, "", f"cannot be started: {why} (a binary for another OS or architecture?)", True
    if done.timed_out:
        return None, "", f"did not answer --version within {timeout:g} s", False
    m = _VERSION_RE.search(done.output)
    text = _first_line(done.output)
    if done.returncode < 0:
        return None, text, f"crashed ({_signal_name(done.returncode)}) running --version: {text}", True
    if done.returncode != 0 or m is None:
        if "generic driver" in done.output:
            problem = f"refused to run as a generic driver without -flavor: {text}"
        elif done.returncode != 0:
            problem = f"crashed (exit status {done.returncode}) running --version: {text}"
            if "shared librar" in done.output or "Library not loaded" in done.output:
                problem += " (its libLLVM is not on the library path)"
        else:
            problem = f"printed no LLD version: {text}"
        return None, text, problem, True
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if version < MIN_VERSION:
        return version, text, (
            f"LLD {'.'.join(map(str, version))} is older than {MIN_VERSION[0]}, the oldest LLD Julia used for "
            "pkgimages; install a newer one (apt-get install lld-19)"), True
    return version, text, None, True


def probe(candidate: LldCandidate, timeout: float = 5.0, *, environ: Mapping[str, str] | None = None) -> LldProbe:
    """Run ``--version`` once per binary (cached by path, size, mtime and environment)."""
    base = os.environ if environ is None else environ
    key: tuple[object, ...] | None
    try:
        st = os.stat(candidate.path)
        key = (str(candidate.path), candidate.kind, st.st_size, st.st_mtime_ns, tuple(sorted(candidate.env.items())))
    except OSError:
        key = None
    if key is not None:
        with _probe_lock:
            hit = _probe_cache.get(key)
        if hit is None:
            hit = _disk_probe(key)
        if hit is not None:
            return LldProbe(candidate, *hit)
    version, text, problem, cacheable = _run_probe(candidate, timeout, base)
    log.debug("probed %s: %s %s", candidate.path, text, problem or "")
    if key is not None and cacheable:
        with _probe_lock:
            _probe_cache[key] = (version, text, problem)
        _remember_probe(key, version, text, problem)
    return LldProbe(candidate, version, text, problem)


_PROBES_FILE = "lld-probes.json"


def _disk_probe(key: tuple[object, ...]) -> tuple[tuple[int, int, int] | None, str, str | None] | None:
    """A probe another pylinkjl process made of the same binary (same path, size, mtime, environment):
    saves starting LLD once per command (~15 ms)."""
    entry = read_json(_PROBES_FILE).get(repr(key))
    if not (isinstance(entry, list) and len(entry) == 3):
        return None
    version, text, problem = entry
    parsed = tuple(version) if isinstance(version, list) and len(version) == 3 else None
    return (parsed, str(text), problem if isinstance(problem, str) else None)


def _remember_probe(key: tuple[object, ...], version: tuple[int, int, int] | None, text: str,
                    problem: str | None) -> None:
    records = read_json(_PROBES_FILE)
    if len(records) > 64:  # binaries come and go; keep the record small
        records.clear()
    records[repr(key)] = [list(version) if version else None, text, problem]
    write_json(_PROBES_FILE, records)


# -- choosing --------------------------------------------------------------------------------------------

def rejection(found: LldProbe, flavor: str) -> str | None:
    """Why this probe cannot link ``flavor`` (None: it can)."""
    if not found.usable:
        return found.problem or "unusable"
    if not serves(found.candidate.kind, flavor):
        return (f"{found.candidate.kind} cannot link -flavor {canonical_flavor(flavor)} "
                f"(needs a generic lld or {_KIND_OF_FLAVOR[canonical_flavor(flavor)]})")
    return None


def choose(probes: Iterable[LldProbe], flavor: str = "gnu") -> LldProbe | None:
    """The probe ``find_lld`` would return from these, or None (an unusable explicit one stops the search)."""
    for found in probes:
        if rejection(found, flavor) is None:
            return found
        if found.candidate.source == "explicit":
            return None
    return None


def _not_found(tried: list[tuple[LldProbe, str]], flavor: str) -> LldNotFoundError:
    canon = canonical_flavor(flavor)
    lines = [f"no usable LLD for -flavor {canon}."]
    if tried:
        lines.append("Tried, in order:")
        for i, (found, why) in enumerate(tried, 1):
            c = found.candidate
            lines.append(f"  {i}. {c.path} ({c.source}, {c.kind}): {why}")
    else:
        lines.append(f"Nothing found: no --lld, no {ENV_VAR}, no Julia install with a bundled lld, no lld, lld-NN, "
                     "ld.lld or ld64.lld on PATH, none in the usual LLVM folders.")
    need = "a generic lld or ld64.lld" if canon == "darwin" else "a generic lld or ld.lld"
    return LldNotFoundError("\n".join(lines), hint=(
        f"install {need} version {MIN_VERSION[0]} or newer (Debian/Ubuntu: apt-get install lld-19; "
        f"macOS: brew install lld), or name one with --lld PATH or the {ENV_VAR} environment variable"))


def find_lld(*, explicit: str | os.PathLike[str] | None = None, julia_home: str | os.PathLike[str] | None = None,
             flavor: str = "gnu", environ: Mapping[str, str] = os.environ, timeout: float = 5.0) -> LldProbe:
    """The first candidate that runs, is LLD >= 14 and can link ``flavor``. An unusable ``--lld`` is an
    error of its own (we never silently use another linker than the one asked for)."""
    canonical_flavor(flavor)  # reject a bad flavor before running anything
    tried: list[tuple[LldProbe, str]] = []
    for cand in candidates(explicit=explicit, julia_home=julia_home, environ=environ):
        found = probe(cand, timeout, environ=environ)
        why = rejection(found, flavor)
        if why is None:
            log.info("using %s (%s, LLD %s)", cand.path, cand.source, found.version_string)
            return found
        if cand.source == "explicit":
            raise LldNotFoundError(f"--lld {cand.path} cannot be used: {why}", hint=(
                f"pass an LLD {MIN_VERSION[0]} or newer that can link -flavor {canonical_flavor(flavor)}, or leave "
                "out --lld to search the Julia install, PATH and the usual LLVM folders"))
        if cand.source == ENV_VAR:
            log.warning("%s=%s cannot be used (%s); searching on", ENV_VAR, cand.path, why)
        tried.append((found, why))
    raise _not_found(tried, flavor)


def describe(probes: Iterable[LldProbe]) -> list[dict[str, object]]:
    """Plain data for ``doctor`` (text or JSON)."""
    return [{
        "source": p.candidate.source,
        "path": str(p.candidate.path),
        "kind": p.candidate.kind,
        "version": p.version_string,
        "usable": p.usable,
        "problem": p.problem,
        "env": dict(p.candidate.env),
    } for p in probes]


def version_notes(found: LldProbe, target: Target) -> list[str]:
    """What this LLD version lacks for ``target`` (measured differences, lld-toolchain.md §0, §3.3, §8)."""
    if found.version is None:
        return []
    major = found.version[0]
    notes: list[str] = []
    if target.os == "macos" and major < 16:
        notes.append(f"LLD {major} may lack -fixup_chains (LLD 14 does; 16 and 19 have it)")
    if target.os == "windows":
        if major < 15:
            notes.append(f"LLD {major} crashes on an empty --entry= (LLD 14 segfaults); pylinkjl always names the entry")
        if major < 19:
            notes.append(f"LLD {major} silently accepts DLLs that need runtime pseudo-relocations (19 refuses them); "
                         "run `pylinkjl verify` on the output")
        if major >= 22:
            notes.append(f"LLD {major} defaults the DLL entry to DllMainCRTStartup; pylinkjl passes --entry explicitly")
    return notes
