"""Mach-O headers shared by the sniffer, the symbol reader and the build-version reader: the
``mach_header(_64)``, universal ("fat") slices and the load-command walk. Little-endian thin files
only (every Mach-O target pylinkjl links for); fat headers are big-endian by definition.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pylinkjl.binfmt.bounded import BoundedBytes

MH_MAGIC = 0xFEEDFACE
MH_MAGIC_64 = 0xFEEDFACF
MH_CIGAM = 0xCEFAEDFE  # big-endian 32-bit, as read little-endian
MH_CIGAM_64 = 0xCFFAEDFE
FAT_MAGIC = 0xCAFEBABE  # as read big-endian
FAT_MAGIC_64 = 0xCAFEBABF

CPU_TYPE_X86 = 7
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM = 12
CPU_TYPE_ARM64 = 0x0100000C
CPU_TYPE_ARM64_32 = 0x0200000C
CPU_TYPE_POWERPC = 18
CPU_TYPE_POWERPC64 = 0x01000012

CPU_ARCH = {
    CPU_TYPE_X86_64: "x86_64", CPU_TYPE_ARM64: "aarch64", CPU_TYPE_X86: "i686", CPU_TYPE_ARM: "arm",
    CPU_TYPE_ARM64_32: "arm64_32", CPU_TYPE_POWERPC: "ppc", CPU_TYPE_POWERPC64: "ppc64",
}

MH_OBJECT = 1
MH_EXECUTE = 2
MH_DYLIB = 6
MH_BUNDLE = 8
MH_DYLIB_STUB = 9
MH_DSYM = 10

# A Java class file shares the fat magic; its "slice count" is the class version (>= 45).
_MAX_FAT_SLICES = 32
_MACH_HEADER = struct.Struct("<IiiIIII")  # magic cputype cpusubtype filetype ncmds sizeofcmds flags
_FAT_HEADER = struct.Struct(">II")  # magic nfat_arch
_FAT_ARCH = struct.Struct(">iiIII")  # cputype cpusubtype offset size align
_FAT_ARCH_64 = struct.Struct(">iiQQII")  # ... offset size align reserved


def arch_name(cputype: int) -> str:
    return CPU_ARCH.get(cputype, f"cputype {cputype:#x}")


@dataclass(frozen=True)
class MachHeader:
    """A Mach-O header's fields that the readers need."""

    offset: int  # of the header inside the buffer (non-zero for a slice of a fat file)
    is64: bool
    cputype: int
    filetype: int
    ncmds: int
    sizeofcmds: int

    @property
    def arch(self) -> str:
        return arch_name(self.cputype)

    @property
    def commands_offset(self) -> int:
        return self.offset + (32 if self.is64 else 28)


@dataclass(frozen=True)
class FatSlice:
    """One architecture's slice of a fat (universal) Mach-O file."""

    cputype: int
    offset: int
    size: int

    @property
    def arch(self) -> str:
        return arch_name(self.cputype)


def is_fat(head: bytes) -> bool:
    if len(head) < 8:
        return False
    magic, count = struct.unpack_from(">II", head)
    return magic in (FAT_MAGIC, FAT_MAGIC_64) and 0 < count <= _MAX_FAT_SLICES


def is_thin_macho(head: bytes) -> bool:
    return len(head) >= 4 and struct.unpack_from("<I", head)[0] in (MH_MAGIC, MH_MAGIC_64, MH_CIGAM, MH_CIGAM_64)


def fat_slices(view: BoundedBytes) -> list[FatSlice]:
    """The slices listed by a universal header (not checked against the file length)."""
    magic, count = (int(x) for x in view.unpack(_FAT_HEADER, 0, "universal header"))
    if count == 0 or count > _MAX_FAT_SLICES:
        raise view.fail(4, f"universal header lists {count} slices")
    entry = _FAT_ARCH_64 if magic == FAT_MAGIC_64 else _FAT_ARCH
    out = []
    for i in range(count):
        fields = view.unpack(entry, 8 + i * entry.size, "universal slice entry")
        out.append(FatSlice(int(fields[0]), int(fields[2]), int(fields[3])))
    return out


def read_header(view: BoundedBytes, offset: int = 0) -> MachHeader:
    magic, cputype, _sub, filetype, ncmds, sizeofcmds, _flags = view.unpack(_MACH_HEADER, offset, "Mach-O header")
    if magic in (MH_CIGAM, MH_CIGAM_64):
        raise view.fail(offset, "big-endian Mach-O files are not supported")
    if magic not in (MH_MAGIC, MH_MAGIC_64):
        raise view.fail(offset, f"not a Mach-O header (magic {magic:#010x})")
    return MachHeader(offset, magic == MH_MAGIC_64, cputype, filetype, ncmds, sizeofcmds)


def load_commands(view: BoundedBytes, header: MachHeader) -> Iterator[tuple[int, int, int]]:
    """Yield ``(cmd, offset, cmdsize)`` for each load command; every one lies inside the buffer."""
    pos = header.commands_offset
    end = pos + header.sizeofcmds
    view.need(pos, header.sizeofcmds, "load commands")
    for _ in range(header.ncmds):
        if pos + 8 > end:
            raise view.fail(pos, "load command runs past sizeofcmds")
        cmd, size = struct.unpack_from("<II", view.data, pos)
        if size < 8 or pos + size > end:
            raise view.fail(pos, f"load command {cmd:#x} has an impossible size {size}")
        yield cmd, pos, size
        pos += size
