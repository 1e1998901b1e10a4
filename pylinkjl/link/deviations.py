"""Where pylinkjl's link command deliberately differs from Julia's, and why.

This table is the single source: the planner applies these rows (unless ``julia_exact``), the README's
deviation table lists the same ids (a test keeps the two in step), and ``--dry-run -v`` names the ones
applied to a plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deviation:
    id: str
    what: str
    why: str


DROP_EMPTY_ARGS = Deviation(
    "drop-empty-args",
    "No empty argv elements.",
    "Julia interpolates an empty string for an absent `--verbose` (and for NO_WHOLE_ARCHIVE on macOS). LLD "
    "ignores them, but they are noise in logs and response files and break naive tools that re-run the command.",
)
EXPLICIT_DLL_ENTRY = Deviation(
    "explicit-dll-entry",
    "Windows lines before release-1.13 get `--entry=_DllMainCRTStartup` (x86_64, aarch64) or "
    "`--entry=__DllMainCRTStartup@12` (i686).",
    "Julia relies on LLD's default DLL entry, which is the name of its injected stub up to LLD 21; LLD >= 22 "
    "defaults to `DllMainCRTStartup` and the link fails with `undefined symbol: DllMainCRTStartup`.",
)
ARM64PE = Deviation(
    "arm64pe",
    "`-m arm64pe` for aarch64 Windows.",
    "Julia passes `-m i386pe` for every non-x86_64 Windows, which makes LLD reject arm64 objects "
    "(`machine type arm64 conflicts with x86`).",
)
INSTALL_NAME = Deviation(
    "install-name",
    "macOS links get `-install_name @rpath/<output file name>`.",
    "Julia links to a temporary file, so its images carry LC_ID_DYLIB = that temporary path "
    "(e.g. `/Users/x/.julia/compiled/v1.9/Adapt/jl_zpdKe9`); a stable name is reproducible and honest.",
)
PSEUDO_RELOC_STUB = Deviation(
    "pseudo-reloc-stub",
    "Windows lines 1.9.0 - 1.10.3 link a no-op `_pei386_runtime_relocator` when no input defines one.",
    "Those lines allow runtime pseudo relocations (auto-import of `jl_RTLD_DEFAULT_handle` into "
    "`jl_RTLD_DEFAULT_handle_pointer`). LLD <= 16, which those Julias bundle, wrote such images without a "
    "relocator; LLD >= 17 refuses (`output image has runtime pseudo relocations, but the function "
    "_pei386_runtime_relocator is missing`). The stub reproduces the old result: the relocations stay "
    "unprocessed, as in Julia's own images (`verify` reports them).",
)

ALL_DEVIATIONS: tuple[Deviation, ...] = (DROP_EMPTY_ARGS, EXPLICIT_DLL_ENTRY, ARM64PE, INSTALL_NAME,
                                         PSEUDO_RELOC_STUB)
