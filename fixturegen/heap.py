"""A plausible ``jl_system_image_data`` blob: the pkgimage heap header of docs/julia-linking.md §3.7.

Layout (1.9 - 1.13): the ``.ji`` header with the pkgimage byte set to 1 and the checksum and data
positions filled in, the cache-flags byte, the required-module list, zero padding to 64 bytes, then
the "heap" (zeros here, so that a 30 MB blob costs nothing to render: LLVM writes it as ``.zero``).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import crc32c

from pylinkjl.target import Target

JI_MAGIC = b"\xfbjli\r\n\x1a\n"
JI_FORMAT_VERSION = 12
BOM = 0xFEFF
CACHE_BYTE_ALIGNMENT = 64
CHECKSUM_TAG = 0xFAFBFCFD << 32
# use_pkgimages=1, debug_level=1, check_bounds=0, inline=1, opt_level=2 (docs/julia-linking.md §4.5)
CACHE_FLAGS = 1 | (1 << 1) | (1 << 5) | (2 << 6)
REQUIRED_MODULES = ("Core", "Base")
_UNAME = {"linux": "Linux", "macos": "Darwin", "windows": "WINNT"}


@dataclass(frozen=True)
class HeapBlob:
    header: bytes  # everything before the data (datastartpos bytes, padding included)
    size: int  # total bytes; the rest after the header is zeros
    checksum64: int  # crc32c(data) | 0xfafbfcfd << 32, as stored in the header
    checksum32: int  # crc32c of the whole blob (what 1.13's jl_system_image_checksum holds here)
    compressed: bool = False  # a zstd frame (system images, --compress-sysimage): header is the whole frame
    unpacked_size: int | None = None  # bytes after decompression (compressed blobs)

    @property
    def unpacker(self) -> str:
        """The libjulia-internal function jl_image_unpack points to (1.13 layout)."""
        return "jl_image_unpack_zstd" if self.compressed else "jl_image_unpack_uncomp"

    @property
    def data_start(self) -> int:
        return len(self.header)

    @property
    def data_end(self) -> int:
        return self.size

    def tail_size(self) -> int:
        return self.size - len(self.header)


def _header(target: Target, julia_version: str, checksum64: int, start: int, end: int) -> bytes:
    line = ".".join(julia_version.split(".")[:2])
    commit = hashlib.sha1(f"pylinkjl fixture {julia_version}".encode()).hexdigest()
    out = bytearray(JI_MAGIC)
    out += struct.pack("<HHB", JI_FORMAT_VERSION, BOM, target.pointer_size)
    for text in (_UNAME[target.os], target.arch, julia_version, f"release-{line}", commit):
        out += text.encode() + b"\0"
    out += b"\x01"  # pkgimage: 1 inside jl_system_image_data (0 in the .ji)
    out += struct.pack("<QQQ", checksum64, start, end)
    out += bytes([CACHE_FLAGS])
    for i, name in enumerate(REQUIRED_MODULES):
        raw = name.encode()
        out += struct.pack("<i", len(raw)) + raw + struct.pack("<QQQQ", 0, 0, 0, 0x1000 + i)
    out += struct.pack("<i", 0)
    out += bytes(-len(out) % CACHE_BYTE_ALIGNMENT)
    return bytes(out)


def header_size(target: Target, julia_version: str) -> int:
    """Bytes before the heap data: the smallest possible blob."""
    return len(_header(target, julia_version, 0, 0, 0))


def heap_blob(target: Target, julia_version: str, size: int) -> HeapBlob:
    """The blob for ``size`` total bytes (must leave room for the header)."""
    start = header_size(target, julia_version)
    if size < start:
        raise ValueError(f"blob of {size} bytes cannot hold the {start}-byte heap header")
    zeros = bytes(size - start)
    checksum64 = crc32c.crc32c(zeros) | CHECKSUM_TAG
    header = _header(target, julia_version, checksum64, start, size)
    checksum32 = crc32c.crc32c(zeros, crc32c.crc32c(header))
    return HeapBlob(header, size, checksum64, checksum32)


def sysimage_blob(size: int, *, compress: bool = False) -> HeapBlob:
    """A system image heap: no cache header (docs/julia-linking.md §3.2b: the real juliac heaps start with a
    little-endian uint64 and no magic), ``size`` bytes; with ``compress`` one zstd frame of it, as
    ``--compress-sysimage`` stores it (``jl_system_image_size`` is then the compressed length and
    ``jl_system_image_checksum`` the CRC-32C of the decompressed bytes)."""
    if size < 8:
        raise ValueError(f"a system image heap of {size} bytes cannot hold its leading size word")
    raw = struct.pack("<Q", size - 8) + bytes(size - 8)
    checksum = crc32c.crc32c(raw)
    if not compress:
        return HeapBlob(raw[:8], size, 0, checksum)
    import zstandard

    frame = zstandard.ZstdCompressor(level=3, write_content_size=True).compress(raw)
    return HeapBlob(frame, len(frame), 0, checksum, compressed=True, unpacked_size=size)
