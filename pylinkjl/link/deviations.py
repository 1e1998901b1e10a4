"""Where pylinkjl's link command deliberately differs from Julia's, and why.

This table is the single source: each row says what, why, when it applies and how, and the planner
applies the rows stage by stage (unless ``julia_exact``) without knowing any of them; the README's
deviation table lists the same ids (a test keeps the two in step), and ``--dry-run -v`` names the ones
applied to a plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pylinkjl.target import Target

if TYPE_CHECKING:
    from pylinkjl.link.inputs import InputSummary
    from pylinkjl.link.toolchain import Profile

# When a row acts: on the input list, on the template's values, on the filled-in command, on the final argv.
Stage = Literal["inputs", "values", "command", "final"]


@dataclass
class Draft:
    """The command while it is planned: what a deviation may look at and change."""

    target: Target
    profile: Profile
    summary: InputSummary
    entry_symbol: str | None  # the DLL entry point the image needs (Windows), None otherwise
    output: Path
    inputs: list[str]
    values: dict[str, list[str]]  # the template's placeholders, filled before expansion
    args: list[str]  # the profile's default_args, expanded
    body: list[str]  # the profile's argv, expanded


@dataclass(frozen=True)
class Deviation:
    """One argv change pylinkjl makes on purpose: when it applies, what it does, and why."""

    id: str
    what: str
    why: str
    stage: Stage
    applies: Callable[[Draft], bool]
    apply: Callable[[Draft], None]


def _windows(d: Draft) -> bool:
    return d.target.os == "windows"


def _add_pseudo_reloc_stub(d: Draft) -> None:
    from pylinkjl.link.stubs.objects import pseudo_reloc_stub

    d.inputs.append(str(pseudo_reloc_stub(d.target)))


def _install_name(d: Draft) -> None:
    at = d.body.index("-o") + 2
    d.body[at:at] = ["-install_name", f"@rpath/{d.output.name}"]


def _drop_empty(d: Draft) -> None:
    d.args[:] = [a for a in d.args if a != ""]
    d.body[:] = [a for a in d.body if a != ""]


DROP_EMPTY_ARGS = Deviation(
    "drop-empty-args",
    "No empty argv elements.",
    "Julia interpolates an empty string for an absent `--verbose` (and for NO_WHOLE_ARCHIVE on macOS). LLD "
    "ignores them, but they are noise in logs and response files and break naive tools that re-run the command.",
    "final", lambda d: "" in d.args or "" in d.body, _drop_empty,
)
EXPLICIT_DLL_ENTRY = Deviation(
    "explicit-dll-entry",
    "Windows lines before release-1.13 get `--entry=_DllMainCRTStartup` (x86_64, aarch64) or "
    "`--entry=__DllMainCRTStartup@12` (i686).",
    "Julia relies on LLD's default DLL entry, which is the name of its injected stub up to LLD 21; LLD >= 22 "
    "defaults to `DllMainCRTStartup` and the link fails with `undefined symbol: DllMainCRTStartup`.",
    "command", lambda d: _windows(d) and d.entry_symbol is not None and "-e" not in d.profile.default_args,
    lambda d: d.args.append(f"--entry={d.entry_symbol}"),
)
ARM64PE = Deviation(
    "arm64pe",
    "`-m arm64pe` for aarch64 Windows.",
    "Julia passes `-m i386pe` for every non-x86_64 Windows, which makes LLD reject arm64 objects "
    "(`machine type arm64 conflicts with x86`).",
    "values", lambda d: _windows(d) and d.values["mingw_emulation"] != [d.target.mingw_emulation],
    lambda d: d.values.update(mingw_emulation=[d.target.mingw_emulation]),
)
INSTALL_NAME = Deviation(
    "install-name",
    "macOS links get `-install_name @rpath/<output file name>`.",
    "Julia links to a temporary file, so its images carry LC_ID_DYLIB = that temporary path "
    "(e.g. `/Users/x/.julia/compiled/v1.9/Adapt/jl_zpdKe9`); a stable name is reproducible and honest.",
    "command", lambda d: d.target.os == "macos" and "-install_name" not in d.body, _install_name,
)
PSEUDO_RELOC_STUB = Deviation(
    "pseudo-reloc-stub",
    "Windows lines 1.9.0 - 1.10.3 link a no-op `_pei386_runtime_relocator` when no input defines one.",
    "Those lines allow runtime pseudo relocations (auto-import of `jl_RTLD_DEFAULT_handle` into "
    "`jl_RTLD_DEFAULT_handle_pointer`). LLD <= 16, which those Julias bundle, wrote such images without a "
    "relocator; LLD >= 17 refuses (`output image has runtime pseudo relocations, but the function "
    "_pei386_runtime_relocator is missing`). The stub reproduces the old result: the relocations stay "
    "unprocessed, as in Julia's own images (`verify` reports them).",
    "inputs", lambda d: (_windows(d) and "--disable-runtime-pseudo-reloc" not in d.profile.default_args
                         and not d.summary.defines(d.target.mangle("_pei386_runtime_relocator"))),
    _add_pseudo_reloc_stub,
)

ALL_DEVIATIONS: tuple[Deviation, ...] = (DROP_EMPTY_ARGS, EXPLICIT_DLL_ENTRY, ARM64PE, INSTALL_NAME,
                                         PSEUDO_RELOC_STUB)


def apply_deviations(stage: Stage, draft: Draft) -> list[str]:
    """Apply the rows of ``stage`` that hold for ``draft``; their ids, in table order."""
    applied = []
    for row in ALL_DEVIATIONS:
        if row.stage == stage and row.applies(draft):
            row.apply(draft)
            applied.append(row.id)
    return applied
