"""The cache-flags byte of a ``.ji`` file (``jl_cache_flags``, layout "OOICCDDP", 1.9 - master).

Bits: 0 ``--pkgimages``, 1-2 ``-g`` level, 3-4 ``--check-bounds``, 5 ``--inline``, 6-7 ``-O`` level.
A cache is loaded only by a session whose flags match (docs/julia-linking.md §4.5); the rule changed
in 1.11 and 1.12, and :func:`flags_match` applies the one of the cache's Julia version.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from pylinkjl.errors import TargetError

_CHECK_BOUNDS = {0: "auto", 1: "yes", 2: "no"}  # JL_OPTIONS_CHECK_BOUNDS_{DEFAULT,ON,OFF}


@dataclass(frozen=True)
class CacheFlags:
    use_pkgimages: int = 1
    debug_level: int = 1
    check_bounds: int = 0
    inline: int = 1
    opt_level: int = 2

    @classmethod
    def from_byte(cls, b: int) -> CacheFlags:
        return cls(b & 1, (b >> 1) & 3, (b >> 3) & 3, (b >> 5) & 1, (b >> 6) & 3)

    def to_byte(self) -> int:
        return ((self.use_pkgimages & 1) | (self.debug_level & 3) << 1 | (self.check_bounds & 3) << 3
                | (self.inline & 1) << 5 | (self.opt_level & 3) << 6)

    def to_cli(self) -> list[str]:
        """The command-line flags this byte stands for."""
        return [f"--pkgimages={'yes' if self.use_pkgimages else 'no'}", f"-g{self.debug_level}",
                f"--check-bounds={_CHECK_BOUNDS.get(self.check_bounds, str(self.check_bounds))}",
                f"--inline={'yes' if self.inline else 'no'}", f"-O{self.opt_level}"]

    def __str__(self) -> str:
        return " ".join(self.to_cli())


DEFAULT = CacheFlags()  # a plain `julia` session: 0xa3


def parse_session_flags(text: str | list[str]) -> tuple[CacheFlags, bool]:
    """Parse the Julia command-line flags of a session (``"-O3 --check-bounds=yes"``).
    Returns the flags and whether ``--pkgimages=existing`` was given. Raises TargetError."""
    try:
        args = shlex.split(text) if isinstance(text, str) else list(text)
    except ValueError as err:  # an unterminated quote
        raise TargetError(f"--julia-flags {text!r} cannot be split into arguments: {err}") from None
    f = {"use_pkgimages": 1, "debug_level": 1, "check_bounds": 0, "inline": 1, "opt_level": 2}
    existing = False
    i = 0
    while i < len(args):
        a = args[i]
        key, eq, value = a.partition("=")
        if not eq and key in ("--pkgimages", "--check-bounds", "--inline", "--optimize") and i + 1 < len(args):
            i += 1
            value = args[i]
        if key == "--pkgimages":
            existing = value == "existing"
            f["use_pkgimages"] = {"yes": 1, "no": 0, "existing": 0}.get(value, -1)
        elif key == "--check-bounds":
            f["check_bounds"] = {"auto": 0, "yes": 1, "no": 2}.get(value, -1)
        elif key == "--inline":
            f["inline"] = {"yes": 1, "no": 0}.get(value, -1)
        elif a.startswith("-O") or key == "--optimize":
            level = value if key == "--optimize" else a[2:]
            f["opt_level"] = int(level) if level.isdigit() and int(level) <= 3 else (3 if level == "" else -1)
        elif a.startswith("-g") or key == "--debug-info":
            level = value if key == "--debug-info" else a[2:]
            f["debug_level"] = int(level) if level.isdigit() and int(level) <= 2 else (2 if level == "" else -1)
        else:
            raise TargetError(f"unsupported Julia flag {a!r}: give --pkgimages, -g, --check-bounds, --inline, -O")
        if -1 in f.values():
            raise TargetError(f"invalid value in Julia flag {a!r}")
        i += 1
    return CacheFlags(**f), existing


def flags_match(cached: CacheFlags, session: CacheFlags, version: tuple[int, int, int], *,
                pkgimages_existing: bool = False) -> tuple[bool, str]:
    """Would a session with ``session`` flags accept a cache with ``cached`` flags (Julia ``version``)?
    Returns (ok, explanation)."""
    c, s = cached.to_byte(), session.to_byte()
    if not (c & 1) and not (s & 1):
        return True, "neither side uses pkgimages: other flags are not compared"
    if version >= (1, 11, 0) and pkgimages_existing:
        c &= ~1
    if version >= (1, 12, 0):
        mask = 0b0011_1001  # pkgimages, check-bounds, inline: exact; -O and -g: cache >= session
        if c & mask != s & mask:
            return False, _diff(cached, session, exact=("use_pkgimages", "check_bounds", "inline"))
        if cached.opt_level < session.opt_level or cached.debug_level < session.debug_level:
            return False, _diff(cached, session, exact=(), at_least=("opt_level", "debug_level"))
        return True, "flags match"
    mask = 0b0011_1111  # everything but -O must be equal; the cache's -O may be higher
    if c & mask != s & mask:
        return False, _diff(cached, session, exact=("use_pkgimages", "debug_level", "check_bounds", "inline"))
    if cached.opt_level < session.opt_level:
        return False, _diff(cached, session, exact=(), at_least=("opt_level",))
    return True, "flags match"


def _diff(cached: CacheFlags, session: CacheFlags, *, exact: tuple[str, ...], at_least: tuple[str, ...] = ()) -> str:
    parts = [f"{n}: cache {getattr(cached, n)}, session {getattr(session, n)}"
             for n in exact if getattr(cached, n) != getattr(session, n)]
    parts += [f"{n}: cache {getattr(cached, n)} < session {getattr(session, n)}"
              for n in at_least if getattr(cached, n) < getattr(session, n)]
    return "mismatched flags (" + "; ".join(parts) + f"); cache: {cached}; session: {session}"
