"""Deployment target and install name of a Mach-O dylib (thin or universal).

``pylinkjl link`` for macOS copies ``-platform_version macos <minos> <sdk>`` from the target Julia's
``libjulia.dylib``, as Julia's own ``MACOS_PRODUCT_VERSION``/``MACOS_PLATFORM_VERSION`` describe the
build it ships with. Versions are packed ``xxxx.yy.zz`` nibbles: 0x000B0000 is "11.0", 0x000A0E06 is
"10.14.6".
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.files import mapped_file
from pylinkjl.errors import InputError

LC_ID_DYLIB = 0xD
LC_VERSION_MIN_MACOSX = 0x24
LC_BUILD_VERSION = 0x32
_VERSION_MIN = {LC_VERSION_MIN_MACOSX: "macos", 0x25: "ios", 0x2F: "tvos", 0x30: "watchos"}
# PLATFORM_* numbers, spelled as ld64.lld's -platform_version accepts them
PLATFORMS = {
    1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 5: "bridgeos", 6: "mac-catalyst", 7: "ios-simulator",
    8: "tvos-simulator", 9: "watchos-simulator", 10: "driverkit", 11: "xros", 12: "xros-simulator",
}
T = TypeVar("T")
_ARCH_ALIASES = {"arm64": "aarch64", "aarch64": "aarch64", "x86_64": "x86_64", "i386": "i686", "i686": "i686"}


@dataclass(frozen=True)
class BuildVersion:
    platform: str  # "macos", ...
    minos: str  # "11.0", "10.14.6"
    sdk: str  # "0.0" when the file records none


def format_version(packed: int) -> str:
    major, minor, patch = packed >> 16, (packed >> 8) & 0xFF, packed & 0xFF
    return f"{major}.{minor}" if patch == 0 else f"{major}.{minor}.{patch}"


def _pick_header(view: BoundedBytes, arch: str | None) -> mh.MachHeader:
    """The header of the slice for ``arch`` (any spelling; None: the only slice)."""
    want = None if arch is None else _ARCH_ALIASES.get(arch.lower(), arch.lower())
    if mh.is_fat(bytes(view.data[:8])):
        slices = mh.fat_slices(view)
        names = ", ".join(s.arch for s in slices)
        if want is None and len(slices) > 1:
            raise InputError(view.source, f"universal binary with slices {names}: pass the architecture")
        chosen = [s for s in slices if want is None or s.arch == want]
        if not chosen:
            raise InputError(view.source, f"universal binary has no {arch} slice (it has {names})")
        view.need(chosen[0].offset, chosen[0].size, f"{chosen[0].arch} slice")
        return mh.read_header(view, chosen[0].offset)
    header = mh.read_header(view, 0)
    if want is not None and header.arch != want:
        raise InputError(view.source, f"is a {header.arch} Mach-O file, not {arch}",
                         hint="point pylinkjl at the Julia build for the target architecture")
    return header


def _commands(view: BoundedBytes, arch: str | None) -> Iterator[tuple[int, int, int]]:
    return mh.load_commands(view, _pick_header(view, arch))


def build_version_of(data: Buffer, source: str, arch: str | None = None) -> BuildVersion | None:
    """LC_BUILD_VERSION (or the older LC_VERSION_MIN_*) of the Mach-O file in ``data``."""
    view = BoundedBytes(data, source)
    fallback: BuildVersion | None = None
    for cmd, at, size in _commands(view, arch):
        if cmd == LC_BUILD_VERSION and size >= 24:
            platform, minos, sdk = struct.unpack_from("<III", data, at + 8)
            return BuildVersion(PLATFORMS.get(platform, f"platform {platform}"),
                                format_version(minos), format_version(sdk))
        if cmd in _VERSION_MIN and size >= 16 and fallback is None:
            version, sdk = struct.unpack_from("<II", data, at + 8)
            fallback = BuildVersion(_VERSION_MIN[cmd], format_version(version), format_version(sdk))
    return fallback


def install_name_of(data: Buffer, source: str, arch: str | None = None) -> str | None:
    """The LC_ID_DYLIB path of the Mach-O file in ``data`` (None for a non-dylib)."""
    view = BoundedBytes(data, source)
    for cmd, at, size in _commands(view, arch):
        if cmd == LC_ID_DYLIB:
            name_at = view.u32(at + 8, "LC_ID_DYLIB") if size >= 12 else 0
            if name_at < 12 or name_at >= size:
                raise view.fail(at, f"LC_ID_DYLIB name offset {name_at} lies outside the command")
            raw = bytes(data[at + name_at:at + size]).split(b"\0", 1)[0]
            return raw.decode("utf-8", errors="backslashreplace")
    return None


def _with_mapped(path: str | os.PathLike[str], read: Callable[[Buffer, str, str | None], T],
                 arch: str | None) -> T:
    with mapped_file(path, "Mach-O file") as mapped:
        if not mapped:
            raise InputError(str(path), "empty file, not a Mach-O file")
        return read(mapped, str(path), arch)


def read_build_version(path: str | os.PathLike[str], arch: str | None = None) -> BuildVersion | None:
    """Platform, minimum OS and SDK of the dylib at ``path`` (the ``arch`` slice of a universal
    file: ``x86_64``, ``arm64``/``aarch64``). None if it records neither. Raises InputError."""
    return _with_mapped(path, build_version_of, arch)


def read_install_name(path: str | os.PathLike[str], arch: str | None = None) -> str | None:
    """LC_ID_DYLIB of the dylib at ``path`` (None if it has none). Raises InputError."""
    return _with_mapped(path, install_name_of, arch)
