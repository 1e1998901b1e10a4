"""Advice for known LLD failures: a table of (pattern, advice). Each row is tested against the output
of a real LLD that fails that way (tests/test_hints.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    id: str
    pattern: re.Pattern[str]
    advice: str  # may use {1}, {2}... for the pattern's groups
    only_os: str | None = None  # the row applies to links for this OS only


def _h(id_: str, pattern: str, advice: str, only_os: str | None = None) -> Hint:
    return Hint(id_, re.compile(pattern, re.MULTILINE), advice, only_os)


HINTS: tuple[Hint, ...] = (
    _h("generic-driver", r"lld is a generic driver",
       "LLD was started without `-flavor` as its first argument; pylinkjl always passes it, so this LLD was "
       "probably wrapped by a script that reorders arguments. Point --lld at the real `lld` binary."),
    _h("unknown-flavor", r"Unknown flavor: (\S+)",
       "This LLD does not know the flavor `{1}`; it may be built without that driver. Use a full LLD (Debian "
       "`lld-19`, or Julia's own `libexec/julia/lld`)."),
    _h("missing-library", r"(?:unable to find library|library not found for) -l(\S+)",
       "LLD cannot find `-l{1}` in the -L folders. A relocated or partial Julia install lacks lib/julia "
       "(PackageCompiler.jl#1067); pass --stub-missing to link against a generated stub, or point --julia-home "
       "at a complete install."),
    _h("missing-entry", r"undefined symbol: (?:__declspec\(dllimport\) )?_?_?DllMainCRTStartup(?:@12)?\b",
       "No input defines the DLL entry point. Julia puts a `_DllMainCRTStartup` stub into metadata.o; this "
       "archive lacks it. pylinkjl injects its own stub unless --julia-exact is given."),
    _h("arch-mismatch",
       r"(?:is incompatible with|machine type \S+ conflicts with|has architecture \S+ which is incompatible)",
       "An input or library was built for another architecture than the target. Check --target and that the "
       "archive and the Julia install belong to the same platform."),
    _h("unknown-emulation", r"unknown emulation: (\S+)",
       "The ELF driver got a MinGW emulation `{1}`: `-m` and its value must be two arguments and the LLD must "
       "include the MinGW driver (the generic `lld` binary with `-flavor gnu`, not zig's `ld.lld`)."),
    _h("platform-version", r"must specify -platform_version",
       "ld64.lld needs `-platform_version macos MIN SDK`; pass --macos-version (or set MACOSX_DEPLOYMENT_TARGET)."),
    _h("darwin-arch", r"missing or unsupported -arch (\S+)",
       "ld64.lld spells the architecture `arm64` (never `aarch64`) and needs -platform_version as well."),
    _h("too-many-exports", r"too many exported symbols",
       "A DLL can export at most 65535 symbols (julia#50729, #52561). Julia marks only its tables dllexport so "
       "LLD does not export everything; objects without any dllexport get every global exported. Rebuild the "
       "cache with one image shard (JULIA_IMAGE_THREADS=1) or fewer functions per package."),
    _h("pseudo-relocs", r"(?:runtime pseudo relocations|requires pseudo relocations)",
       "The objects reference runtime data without dllimport (julia#54550, #62545). Julia >= 1.10.4 passes "
       "--disable-runtime-pseudo-reloc, so every data import must be dllimport; regenerate the cache with the "
       "matching Julia or link with --julia-version for the Julia that produced it."),
    _h("data-without-dllimport", r"undefined symbol: (\S+)\n>>> referenced by [^\n]*\(\.refptr\.",
       "`{1}` is data the objects reach through `.refptr.{1}`, i.e. without dllimport. Julia >= 1.10.4 links "
       "with --disable-auto-import, so such references cannot resolve (julia#54550, #62545). Link with the "
       "Julia line that made the objects (--julia-version 1.10.3 or older allows auto-import), or regenerate them."),
    _h("julia-data-without-dllimport",
       r"undefined symbol: _?(jl_RTLD_DEFAULT_handle|jl_small_typeof|jl_(?:true|false|nothing|emptytuple)|"
       r"jl_\w+_type)\b(?!\S)",
       "`{1}` is runtime data, which the Windows runtime libraries export as DATA only (`__imp_{1}`): the "
       "objects reference it without dllimport. Julia >= 1.10.4 passes --disable-auto-import, so this cannot "
       "resolve (julia#54550, #62545). Link with the Julia line that made the objects (--julia-version 1.10.3 "
       "or older allows auto-import), or regenerate them with the Julia you link for.", only_os="windows"),
    _h("undefined-symbol", r"undefined symbol: (?:__declspec\(dllimport\) )?(\S+)",
       "`{1}` is referenced but no input or library defines it. On Windows every symbol must resolve at link "
       "time: the runtime libraries must match the Julia that made the cache (JuliaInterpreter.jl#621). On "
       "Linux, release-1.13 and newer link with `-z defs`."),
    _h("unknown-argument", r"unknown argument:? '?(-[^'\s]+)",
       "This LLD is too old for `{1}`; pylinkjl needs LLD 14 or newer, and some Julia lines use newer options. "
       "Install lld-19 or pass --lld."),
)


def advise(output: str, os: str | None = None) -> list[str]:
    """Advice lines for an LLD output, most specific first, each hint at most once. ``os`` is the target's
    OS (rows for another OS are skipped); None considers every row."""
    out: list[str] = []
    for hint in HINTS:
        if os is not None and hint.only_os not in (None, os):
            continue
        m = hint.pattern.search(output)
        if m is None:
            continue
        if hint.id == "undefined-symbol" and any(
                h.startswith(("[missing-entry]", "[data-without-dllimport]", "[julia-data-without-dllimport]"))
                for h in out):
            continue
        advice = hint.advice
        for i, group in enumerate(m.groups(), start=1):
            advice = advice.replace(f"{{{i}}}", group or "")
        out.append(f"[{hint.id}] {advice}")
    return out
