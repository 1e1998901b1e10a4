"""Choosing LLD: the first candidate that runs, is new enough and serves the flavor; and what ``doctor`` shows
of them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

from pylinkjl.errors import LldNotFoundError
from pylinkjl.link.lld.names import DRIVER_OF_FLAVOR, ENV_VAR, canonical_flavor, serves
from pylinkjl.link.lld.probe import MIN_VERSION, LldProbe, probe
from pylinkjl.link.lld.search import candidates
from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.lld")


def rejection(found: LldProbe, flavor: str) -> str | None:
    """Why this probe cannot link ``flavor`` (None: it can)."""
    if not found.usable:
        return found.problem or "unusable"
    if not serves(found.candidate.driver, flavor):
        return (f"{found.candidate.driver} cannot link -flavor {canonical_flavor(flavor)} "
                f"(needs a generic lld or {DRIVER_OF_FLAVOR[canonical_flavor(flavor)]})")
    return None


def choose(probes: Iterable[LldProbe], flavor: str = "gnu") -> LldProbe | None:
    """The probe ``find_lld`` would return from these, or None (an unusable explicit one stops the search)."""
    for found in probes:
        if rejection(found, flavor) is None:
            return found
        if found.candidate.source == "explicit":
            return None
    return None


def _not_found(tried: list[tuple[LldProbe, str]], flavor: str) -> LldNotFoundError:
    canon = canonical_flavor(flavor)
    lines = [f"no usable LLD for -flavor {canon}."]
    if tried:
        lines.append("Tried, in order:")
        for i, (found, why) in enumerate(tried, 1):
            c = found.candidate
            lines.append(f"  {i}. {c.path} ({c.source}, {c.driver}): {why}")
    else:
        lines.append(f"Nothing found: no --lld, no {ENV_VAR}, no Julia install with a bundled lld, no lld, lld-NN, "
                     "ld.lld or ld64.lld on PATH, none in the usual LLVM folders.")
    need = "a generic lld or ld64.lld" if canon == "darwin" else "a generic lld or ld.lld"
    return LldNotFoundError("\n".join(lines), hint=(
        f"install {need} version {MIN_VERSION[0]} or newer (Debian/Ubuntu: apt-get install lld-19; "
        f"macOS: brew install lld), or name one with --lld PATH or the {ENV_VAR} environment variable"))


def find_lld(*, explicit: str | os.PathLike[str] | None = None, julia_home: str | os.PathLike[str] | None = None,
             flavor: str = "gnu", environ: Mapping[str, str] = os.environ, timeout: float = 5.0) -> LldProbe:
    """The first candidate that runs, is LLD >= 14 and can link ``flavor``. An unusable ``--lld`` is an
    error of its own (we never silently use another linker than the one asked for)."""
    canonical_flavor(flavor)  # reject a bad flavor before running anything
    tried: list[tuple[LldProbe, str]] = []
    for cand in candidates(explicit=explicit, julia_home=julia_home, environ=environ):
        found = probe(cand, timeout, environ=environ)
        why = rejection(found, flavor)
        if why is None:
            log.info("using %s (%s, LLD %s)", cand.path, cand.source, found.version_string)
            return found
        if cand.source == "explicit":
            raise LldNotFoundError(f"--lld {cand.path} cannot be used: {why}", hint=(
                f"pass an LLD {MIN_VERSION[0]} or newer that can link -flavor {canonical_flavor(flavor)}, or leave "
                "out --lld to search the Julia install, PATH and the usual LLVM folders"))
        if cand.source == ENV_VAR:
            log.warning("%s=%s cannot be used (%s); searching on", ENV_VAR, cand.path, why)
        tried.append((found, why))
    raise _not_found(tried, flavor)


def describe(probes: Iterable[LldProbe]) -> list[dict[str, object]]:
    """Plain data for ``doctor`` (text or JSON)."""
    return [{
        "source": p.candidate.source,
        "path": str(p.candidate.path),
        "kind": p.candidate.driver,
        "version": p.version_string,
        "usable": p.usable,
        "problem": p.problem,
        "env": dict(p.candidate.env),
    } for p in probes]


def version_notes(found: LldProbe, target: Target) -> list[str]:
    """What this LLD version lacks for ``target`` (measured differences, docs/lld-toolchain.md §0, §3.3, §8)."""
    if found.version is None:
        return []
    major = found.version[0]
    notes: list[str] = []
    if target.os == "macos" and major < 16:
        notes.append(f"LLD {major} may lack -fixup_chains (LLD 14 does; 16 and 19 have it)")
    if target.os == "windows":
        if major < 15:
            notes.append(f"LLD {major} crashes on an empty --entry= (LLD 14 segfaults); pylinkjl always names the entry")
        if major < 19:
            notes.append(f"LLD {major} silently accepts DLLs that need runtime pseudo-relocations (19 refuses them); "
                         "run `pylinkjl verify` on the output")
        if major >= 22:
            notes.append(f"LLD {major} defaults the DLL entry to DllMainCRTStartup; pylinkjl passes --entry explicitly")
    return notes
