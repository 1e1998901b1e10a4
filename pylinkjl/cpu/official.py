"""The ``JULIA_CPU_TARGET`` strings the official Julia binaries are built with.

Source: JuliaCI/julia-buildkite ``utilities/build_envs.sh`` as summarised in docs/julia-linking.md §5.3.
These are the *system image* targets; package images use the user's ``JULIA_CPU_TARGET`` (or
``native``). A pkgimage meant to run on every machine the official binary runs on can use the same
string.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OfficialString:
    arch: str  # x86_64, aarch64, i686, armv7l, ppc64le
    platforms: str  # "all", "linux", "macos"
    period: str  # when julia-buildkite used it
    releases: str  # Julia releases built in that period (inferred from build dates)
    string: str
    source: str


_X86_OLD = "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)"
_X86_NEW = _X86_OLD + ";x86-64-v4,-rdrnd,base(1)"
_ARM_OLD = "generic;cortex-a57;thunderx2t99;carmel"
_ARM_2024 = "generic;cortex-a57;thunderx2t99;carmel,clone_all;apple-m1,base(3);neoverse-512tvb,base(3)"
_ARM_2026 = "generic;cortex-a57;thunderx2t99;carmel,clone_all;apple-m1,base(3);neoverse-512tvb,-rand,-fpac,base(3)"

OFFICIAL: tuple[OfficialString, ...] = (
    OfficialString("x86_64", "all", "until 2024-03-08", "1.9.x, 1.10.0-1.10.2", _X86_OLD, "julia-buildkite"),
    OfficialString("x86_64", "all", "from 2024-03-08", "1.10.3+, 1.11, 1.12, 1.13", _X86_NEW,
                   "julia-buildkite PR #341"),
    OfficialString("aarch64", "all", "until 2024-03-08", "1.9.x, 1.10.0-1.10.2", _ARM_OLD, "julia-buildkite"),
    OfficialString("aarch64", "linux", "2024-03-08 to 2026-05-30", "1.10.3+, 1.11, 1.12", _ARM_2024,
                   "julia-buildkite PR #341"),
    OfficialString("aarch64", "linux", "from 2026-05-30", "1.12.x and 1.13 built since", _ARM_2026,
                   "julia-buildkite PR #540"),
    OfficialString("aarch64", "macos", "2024-03-08 to 2024-06-09", "1.10.3-1.10.4", _ARM_2024,
                   "julia-buildkite PR #341"),
    OfficialString("aarch64", "macos", "from 2024-06-09", "1.10.5+, 1.11, 1.12, 1.13", "generic;apple-m1,clone_all",
                   "julia-buildkite PR #354/#357"),
    OfficialString("i686", "all", "until 2023-06-20", "none of 1.9+", "pentium4;sandybridge,-xsaveopt,clone_all",
                   "julia-buildkite"),
    OfficialString("i686", "all", "from 2023-06-20", "1.9+", "pentium4", "julia-buildkite PR #308"),
    OfficialString("armv7l", "all", "", "1.9+", "armv7-a;armv7-a,neon;armv7-a,neon,vfp4", "julia-buildkite"),
    OfficialString("ppc64le", "all", "", "1.9+", "pwr8", "julia-buildkite"),
)

_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686", "x86": "i686",
                 "armv7": "armv7l", "arm": "armv7l"}


def official_strings(arch: str | None = None) -> list[OfficialString]:
    """All rows, or the rows of one architecture (aliases such as ``arm64`` accepted)."""
    if arch is None:
        return list(OFFICIAL)
    a = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    return [o for o in OFFICIAL if o.arch == a]


def known_arches() -> list[str]:
    return sorted({o.arch for o in OFFICIAL})
