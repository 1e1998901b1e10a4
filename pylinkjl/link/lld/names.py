"""LLD's one name table: the driver a program name selects, the ``-flavor`` spellings, and the flavor per OS.

LLD picks its driver from ``-flavor`` (only as argv[1]) or else from its program name (docs/lld-toolchain.md
§1.2): a generic ``lld`` serves every flavor, ``ld.lld`` only ELF/MinGW, ``ld64.lld`` only Mach-O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pylinkjl.errors import LldNotFoundError, TargetError
from pylinkjl.target import Target

if TYPE_CHECKING:
    from pylinkjl.link.lld.search import LldCandidate

Driver = Literal["generic", "ld.lld", "ld64.lld", "lld-link", "wasm-ld"]
Flavor = Literal["gnu", "darwin", "link", "wasm"]
ENV_VAR = "PYLINKJL_LLD"

# -flavor spellings LLD accepts, and the program-name parts it recognises (lld/tools/lld/lld.cpp).
_FLAVOR_NAMES: dict[str, Flavor] = {
    "gnu": "gnu", "ld": "gnu", "ld.lld": "gnu",
    "darwin": "darwin", "ld64": "darwin", "ld64.lld": "darwin",
    "link": "link",
    "wasm": "wasm", "ld-wasm": "wasm",
}
DRIVER_OF_FLAVOR: dict[Flavor, Driver] = {"gnu": "ld.lld", "darwin": "ld64.lld", "link": "lld-link", "wasm": "wasm-ld"}
_FLAVOR_OF_DRIVER: dict[Driver, Flavor] = {driver: flavor for flavor, driver in DRIVER_OF_FLAVOR.items()}


def driver_of(path: str | os.PathLike[str]) -> Driver:
    """The driver LLD picks from its program name: basename, ``.exe`` dropped, split on ``-``, first
    part that names a flavor wins; no such part means the generic driver (needs ``-flavor``)."""
    name = Path(path).name
    if name.lower().endswith(".exe"):
        name = name[:-4]
    for part in name.split("-"):
        flavor = _FLAVOR_NAMES.get(part.lower())
        if flavor is not None:
            return DRIVER_OF_FLAVOR[flavor]
    return "generic"


def canonical_flavor(flavor: str) -> Flavor:
    try:
        return _FLAVOR_NAMES[flavor]
    except KeyError:
        raise TargetError(f"unknown LLD flavor {flavor!r}; expected one of gnu, darwin, link, wasm") from None


def target_flavor(target: Target) -> Flavor:
    """The ``-flavor`` Julia uses per OS: MinGW goes through the GNU front-end (``-m i386pep``)."""
    return "darwin" if target.os == "macos" else "gnu"


def serves(driver: Driver, flavor: str) -> bool:
    return driver == "generic" or _FLAVOR_OF_DRIVER[driver] == canonical_flavor(flavor)


def flavor_args(candidate: LldCandidate, flavor: str) -> list[str]:
    """What goes right after argv[0]: ``-flavor <f>`` for the generic driver, nothing for a binary whose
    name already selects that driver. Raises LldNotFoundError when the binary cannot link that flavor."""
    canon = canonical_flavor(flavor)
    if candidate.driver == "generic":
        return ["-flavor", canon]
    if _FLAVOR_OF_DRIVER[candidate.driver] == canon:
        return []
    raise LldNotFoundError(
        f"{candidate.path} is {candidate.driver}, which cannot link -flavor {canon}",
        hint=f"use a generic lld (e.g. lld-19) or {DRIVER_OF_FLAVOR[canon]}, via --lld PATH or {ENV_VAR}")
