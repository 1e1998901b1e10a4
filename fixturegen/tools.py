"""The LLVM tools the generator runs: a compiler for IR (llc, or clang with ``-x ir``) and llvm-ar.

Discovery probes each candidate once (``--version``) and keeps the first LLVM >= 16 (older ones do
not read opaque-pointer IR). Every process goes through :func:`pylinkjl.process.run_process`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.errors import LldNotFoundError, PylinkjlError
from pylinkjl.process import run_process
from pylinkjl.target import Target

log = logging.getLogger("fixturegen.tools")

MIN_LLVM_MAJOR = 16
_VERSIONS = ("19", "20", "18", "17", "16", "")
LLC_NAMES = tuple(f"llc-{v}" if v else "llc" for v in _VERSIONS)
CLANG_NAMES = tuple(f"clang-{v}" if v else "clang" for v in _VERSIONS)
AR_NAMES = tuple(f"llvm-ar-{v}" if v else "llvm-ar" for v in _VERSIONS)
_VERSION_RE = re.compile(r"(?:LLVM|clang) version (\d+)\.(\d+)\.(\d+)")
TIMEOUT = 3600.0  # seconds; a 150k-function shard takes about a minute


class ToolNotFoundError(LldNotFoundError):
    """llc/clang or llvm-ar is missing (same exit code as a missing LLD: install the LLVM toolchain)."""


class ToolFailedError(PylinkjlError):
    """llc/clang or llvm-ar ran and failed (the message carries the command and its output)."""

    exit_code = 5

    def __init__(self, message: str, *, argv: list[str], output: str) -> None:
        super().__init__(f"{message}\ncommand: {' '.join(argv)}\n{output.rstrip()}")
        self.argv = argv
        self.output = output


@dataclass(frozen=True)
class Tools:
    compiler: str  # path of llc or clang
    compiler_kind: str  # "llc" | "clang"
    llvm_ar: str
    llvm_version: str  # of the compiler, e.g. "19.1.7": committed fixtures are byte-exact only for 19

    def compile_argv(self, target: Target, ll: Path, obj: Path, opt: str = "-O0") -> list[str]:
        pic = target.format in ("elf", "macho")  # Julia: Reloc::PIC_ on ELF; Mach-O is always PIC
        if self.compiler_kind == "llc":
            return [self.compiler, opt, "-filetype=obj", *(["-relocation-model=pic"] if pic else []),
                    "-o", str(obj), str(ll)]
        return [self.compiler, "-c", "-x", "ir", opt, *(["-fPIC"] if pic else []),
                "-Wno-override-module", "-o", str(obj), str(ll)]

    def archive_argv(self, target: Target, out: Path, members: list[str]) -> list[str]:
        # Julia's archive: GNU format on Linux/Windows, Darwin format with a symbol table on macOS.
        fmt = "darwin" if target.format == "macho" else "gnu"
        return [self.llvm_ar, f"--format={fmt}", "rcsD", str(out), *members]


def _probe(path: str) -> str | None:
    """The LLVM version a tool reports, or None if it cannot run."""
    try:
        done = run_process([path, "--version"], timeout=30)
    except OSError:
        return None
    m = _VERSION_RE.search(done.output)
    return ".".join(m.groups()) if m and done.returncode == 0 else None


def _first(names: tuple[str, ...], env: str) -> tuple[str, str] | None:
    candidates = [os.environ[env]] if os.environ.get(env) else []
    candidates += [p for p in (shutil.which(n) for n in names) if p]
    for path in candidates:
        version = _probe(path)
        if version and int(version.split(".")[0]) >= MIN_LLVM_MAJOR:
            return path, version
        log.debug("skipping %s (version %s)", path, version)
    return None


def find_tools() -> Tools:
    """Find llc (or clang) and llvm-ar; ``PYLINKJL_LLC`` / ``PYLINKJL_CLANG`` / ``PYLINKJL_LLVM_AR``
    override the search. Raises ToolNotFoundError naming what is missing."""
    compiler = _first(LLC_NAMES, "PYLINKJL_LLC")
    kind = "llc"
    if compiler is None:
        compiler, kind = _first(CLANG_NAMES, "PYLINKJL_CLANG"), "clang"
    ar = _first(AR_NAMES, "PYLINKJL_LLVM_AR")
    missing = [what for what, found in (("llc (or clang)", compiler), ("llvm-ar", ar)) if found is None]
    if compiler is None or ar is None:
        raise ToolNotFoundError(
            f"the fixture generator needs {' and '.join(missing)} from LLVM >= {MIN_LLVM_MAJOR}",
            hint="apt-get install llvm-19 (provides llc-19 and llvm-ar-19), or set PYLINKJL_LLC / PYLINKJL_LLVM_AR")
    return Tools(compiler[0], kind, ar[0], compiler[1])


def run_tool(argv: list[str], *, cwd: Path | None = None) -> None:
    """Run one tool; ToolFailedError with its output if it fails."""
    done = run_process(argv, timeout=TIMEOUT, cwd=cwd)
    if done.returncode != 0 or done.timed_out:
        what = "timed out" if done.timed_out else f"failed with exit code {done.returncode}"
        raise ToolFailedError(f"{Path(argv[0]).name} {what}", argv=list(argv), output=done.output)
