"""The LLVM tools the tests run, named once: ``.ci/install`` installs LLVM 19 (PYLINKJL_LLVM_SUFFIX overrides)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pylinkjl.target import Target

SUFFIX = os.environ.get("PYLINKJL_LLVM_SUFFIX", "-19")

CLANG = f"clang{SUFFIX}"
LLC = f"llc{SUFFIX}"
LLVM_MC = f"llvm-mc{SUFFIX}"
LLVM_AR = f"llvm-ar{SUFFIX}"
LLVM_NM = f"llvm-nm{SUFFIX}"
LLVM_OBJCOPY = f"llvm-objcopy{SUFFIX}"
LLVM_READOBJ = f"llvm-readobj{SUFFIX}"
LLVM_READELF = f"llvm-readelf{SUFFIX}"
LD_LLD = f"ld.lld{SUFFIX}"
LD64_LLD = f"ld64.lld{SUFFIX}"
LLD_LINK = f"lld-link{SUFFIX}"
LLVM_DLLTOOL = f"llvm-dlltool{SUFFIX}"
LLD = f"lld{SUFFIX}"
LLVM_LIPO = f"llvm-lipo{SUFFIX}"
LLVM_OBJDUMP = f"llvm-objdump{SUFFIX}"
LLVM_FOLDER = f"llvm{SUFFIX}"  # /usr/lib/llvm-19


def run_tool(argv: list[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run a tool the tests need (through pylinkjl's own runner); it must succeed. Its output."""
    from pylinkjl.process import run_process

    done = run_process(argv, timeout=120, cwd=cwd, env=None if env is None else {**os.environ, **env})
    assert done.returncode == 0, f"{' '.join(argv)}\n{done.output}"
    return done.output


def compile_c(source: Path, target: Target, out: Path, *flags: str) -> Path:
    """Compile a C snippet into an object file for ``target``."""
    run_tool([CLANG, f"--target={target.llvm_triple}", "-c", *flags, str(source), "-o", str(out)])
    return out
