"""The LLVM tools the tests run, named once: ``.ci/install`` installs LLVM 19 (PYLINKJL_LLVM_SUFFIX overrides)."""

from __future__ import annotations

import os

SUFFIX = os.environ.get("PYLINKJL_LLVM_SUFFIX", "-19")

CLANG = f"clang{SUFFIX}"
LLC = f"llc{SUFFIX}"
LLVM_MC = f"llvm-mc{SUFFIX}"
LLVM_AR = f"llvm-ar{SUFFIX}"
LLVM_NM = f"llvm-nm{SUFFIX}"
LLVM_OBJCOPY = f"llvm-objcopy{SUFFIX}"
LLVM_READOBJ = f"llvm-readobj{SUFFIX}"
LD_LLD = f"ld.lld{SUFFIX}"
LD64_LLD = f"ld64.lld{SUFFIX}"
LLD_LINK = f"lld-link{SUFFIX}"
LLVM_DLLTOOL = f"llvm-dlltool{SUFFIX}"
