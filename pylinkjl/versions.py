"""Julia version strings, ordered the way Julia orders them (``1.13.0-DEV < 1.13.0-rc1 < 1.13.0``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pylinkjl.errors import TargetError

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.\-]+))?(?:\+[0-9A-Za-z.\-]+)?$")


@dataclass(frozen=True)
class JuliaVersion:
    """A Julia version number, as ``VERSION`` prints it."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""  # "", "DEV", "rc1", "beta2", ...
    patch_given: bool = True

    @classmethod
    def parse(cls, text: str) -> JuliaVersion:
        m = _VERSION_RE.match(text.strip())
        if not m:
            raise TargetError(f"not a Julia version: {text!r} (expected X.Y, X.Y.Z or X.Y.Z-rcN)")
        major, minor, patch, pre = m.groups()
        return cls(int(major), int(minor), int(patch or 0), pre or "", patch is not None)

    def sort_key(self) -> tuple[int, int, int, int, str]:
        # DEV builds precede every pre-release of that version, which precede the release.
        rank = 2 if not self.prerelease else (0 if self.prerelease.upper().startswith("DEV") else 1)
        return (self.major, self.minor, self.patch, rank, self.prerelease)

    def __lt__(self, other: JuliaVersion) -> bool:
        return self.sort_key() < other.sort_key()

    def __le__(self, other: JuliaVersion) -> bool:
        return self.sort_key() <= other.sort_key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}" if self.patch_given else f"{self.major}.{self.minor}"
        return f"{text}-{self.prerelease}" if self.prerelease else text


# Julia 1.10.4 (PR #54572) made runtime data dllimport on Windows and, with it, replaced the exported
# jl_RTLD_DEFAULT_handle_pointer by the getter get_jl_RTLD_DEFAULT_handle_addr (docs/julia-linking.md §3.2a).
DLLIMPORT_AND_RTLD_GETTER_SINCE = JuliaVersion(1, 10, 4)
