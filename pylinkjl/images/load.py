"""Load check: ``dlopen`` a host ELF image with RTLD_NOW in a child process, as Julia would.

The child (a fresh Python running cffi) loads the image against a runtime directory: a real Julia's
``lib/`` + ``lib/julia`` given by the user, or stubs built from the image's own imports
(:mod:`pylinkjl.link.stubs.libraries`) under the names its DT_NEEDED asks for (``libjulia.so.1`` /
``libjulia-internal.so.1`` for 1.9, ``libjulia.so.1.10`` ... from 1.10 on), each defining its symbols under
the version node Julia's libraries of that version have (none for 1.9, ``JL_LIBJULIA_1.10`` ...): glibc checks
an image's version needs at load time (a need of a library that has no versions at all trips its assertion). A crash or an unresolved symbol takes
down only the child. Since the dynamic loader names only the first unresolved symbol, the full list is
computed statically as well: every non-weak import that no library on the search path exports.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pylinkjl.errors import InputError, TargetError
from pylinkjl.process import run_process
from pylinkjl.target import Target, host_target

log = logging.getLogger("pylinkjl.images.load")

_CHILD = r"""
import json, sys
try:
    import cffi
    ffi = cffi.FFI()
    ffi.dlopen(sys.argv[1], ffi.RTLD_NOW)
    print(json.dumps({"loaded": True}))
except OSError as err:
    print(json.dumps({"loaded": False, "error": str(err)}))
"""
_JULIA_LIBS = re.compile(r"^lib(julia(?:-internal)?(?:-debug)?)\.so\.(\d+(?:\.\d+)*)$")
_SYSTEM_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")


@dataclass
class LoadResult:
    loaded: bool
    error: str | None
    unresolved: list[str] = field(default_factory=list)  # imports no library on the search path exports
    missing_libraries: list[str] = field(default_factory=list)  # DT_NEEDED names not found
    runtime: str = ""  # the directory put on LD_LIBRARY_PATH
    stubbed: bool = False  # runtime made of generated stub libraries

    @property
    def ok(self) -> bool:
        return self.loaded

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stub_runtime(image: Path, target: Target, imports: dict[str, bool], needed: tuple[str, ...]) -> Path:
    """Stub libjulia*.so.N defining exactly the image's imports (cached by content), named and versioned as
    DT_NEEDED's version asks (:func:`pylinkjl.link.stubs.libraries.julia_symbol_version`)."""
    from pylinkjl.link.lld import find_lld
    from pylinkjl.link.stubs.libraries import cached_stub_dir, plan_stub_libraries

    link_names, version = [], "1"
    for soname in needed:
        m = _JULIA_LIBS.match(soname)
        if m:
            link_names.append(m.group(1))
            version = m.group(2)
    if not link_names:
        link_names = ["julia", "julia-internal"]
    lld = find_lld(flavor="gnu")
    libs = plan_stub_libraries(target, sorted(imports), sorted(n for n, d in imports.items() if d), link_names,
                               soname_version=version)
    return cached_stub_dir(target, libs, str(lld.candidate.path), lld.version_string or "")


def _exports_in(directory_list: list[Path], soname: str) -> frozenset[str] | None:
    from pylinkjl.binfmt.lief import open_binary

    for d in directory_list:
        p = d / soname
        if p.is_file():
            try:
                with open_binary(p) as lib:
                    return lib.exported_symbols()
            except InputError as err:
                log.debug("cannot read %s: %s", p, err)
                return frozenset()
    return None


def static_unresolved(image: Path, runtime: Path) -> tuple[list[str], list[str]]:
    """(imports nothing exports, DT_NEEDED libraries not found) for ``image`` on ``runtime`` + system dirs."""
    from pylinkjl.binfmt.lief import open_binary

    with open_binary(image) as view:
        imports = view.undefined_imports() if view.format == "elf" else {}
        needed = view.needed_libraries
    dirs = [runtime] + [Path(d) for d in _SYSTEM_DIRS]
    provided: set[str] = set()
    missing = []
    for soname in needed:
        found = _exports_in(dirs, soname)
        if found is None:
            missing.append(soname)
        else:
            provided |= found
    # the process that loads a pkgimage (julia) already has libc and friends: what a real loader sees too
    for soname in ("libc.so.6", "libm.so.6"):
        provided |= _exports_in([Path(d) for d in _SYSTEM_DIRS], soname) or frozenset()
    return sorted(n for n in imports if n not in provided), missing


def load_check(image: str | os.PathLike[str], *, runtime: str | os.PathLike[str] | None = None,
               timeout: float = 60.0) -> LoadResult:
    """dlopen ``image`` (RTLD_NOW) in a child process against ``runtime`` (or generated stubs)."""
    from pylinkjl.binfmt.lief import open_binary

    path = Path(image).resolve()
    with open_binary(path) as view:
        fmt, arch, imports, needed = view.format, view.arch, (
            view.undefined_imports() if view.format == "elf" else {}), view.needed_libraries
    host = host_target()
    if fmt != "elf" or host.format != "elf" or arch != host.arch:
        raise TargetError(f"--load can only load images for this host ({host.name}); {path.name} is {fmt} {arch}")
    stubbed = runtime is None
    run_dir = Path(runtime) if runtime is not None else _stub_runtime(path, host, imports, needed)
    if not run_dir.is_dir():
        raise InputError(run_dir, "runtime directory does not exist")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = str(run_dir) + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH")
                                             else "")
    done = run_process([sys.executable, "-c", _CHILD, str(path)], env=env, timeout=timeout)
    unresolved, missing = static_unresolved(path, run_dir)
    if done.timed_out:
        return LoadResult(False, f"dlopen did not return within {timeout:.0f} s", unresolved, missing,
                          str(run_dir), stubbed)
    answer = None
    for line in reversed(done.output.splitlines()):
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except ValueError:
                pass
            break
    if answer is None:
        return LoadResult(False, f"the loader process died (exit {done.returncode}): {done.output.strip()[-400:]}",
                          unresolved, missing, str(run_dir), stubbed)
    error = answer.get("error")
    if error:
        named = re.findall(r"undefined symbol: ([^\s,]+)", error)
        for n in (x.rstrip(".;:") for x in named):  # cffi ends its sentence right after the name
            if n not in unresolved:
                unresolved.append(n)
    return LoadResult(bool(answer.get("loaded")), error, unresolved, missing, str(run_dir), stubbed)


def check_load(image: str | os.PathLike[str], *, runtime: str | os.PathLike[str] | None = None) -> Any:
    """The ``load`` verification check."""
    from pylinkjl.images.report import CheckResult

    try:
        res = load_check(image, runtime=runtime)
    except TargetError as err:
        return CheckResult("load", "not_applicable", err.message)
    nums = res.to_dict()
    where = "stub runtime" if res.stubbed else f"runtime {res.runtime}"
    if res.loaded:
        return CheckResult("load", "passed", f"dlopen(RTLD_NOW) succeeded against the {where}", nums)
    detail = res.error or "dlopen failed"
    if res.missing_libraries:
        detail = f"libraries not found: {', '.join(res.missing_libraries)} — {detail}"
    if res.unresolved:
        detail = f"unresolved symbols: {', '.join(res.unresolved[:20])}" + (
            f" (and {len(res.unresolved) - 20} more)" if len(res.unresolved) > 20 else "") + f" — {detail}"
    return CheckResult("load", "failed", f"dlopen(RTLD_NOW) against the {where} failed: {detail}", nums)
