"""The dynamic table of a little-endian ELF64 file (what every Julia runtime and image for x86_64 and aarch64
Linux is), found as the loader finds it: through the program headers (PT_DYNAMIC), with addresses turned
into file offsets through the PT_LOAD segments. Section headers are not read (patchelf may rewrite them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pylinkjl.binfmt.bounded import BoundedBytes

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL = 0
DT_STRTAB, DT_STRSZ, DT_SONAME = 5, 10, 14
DT_VERDEF, DT_VERDEFNUM, DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFC, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF
_PHDR = struct.Struct("<IIQQQQQQ")  # p_type p_flags p_offset p_vaddr p_paddr p_filesz p_memsz p_align
_DYN = struct.Struct("<qQ")


@dataclass(frozen=True)
class ElfDynamic:
    view: BoundedBytes
    at: int  # file offset of the dynamic table
    tags: dict[int, int]  # the first value of each tag (DT_NEEDED, which repeats, is not for this)
    loads: tuple[tuple[int, int, int], ...]  # PT_LOAD (vaddr, file offset, file size)

    def offset(self, vaddr: int, what: str) -> int:
        """The file offset of ``vaddr``; InputError when no PT_LOAD segment holds it."""
        for start, off, size in self.loads:
            if start <= vaddr < start + size:
                return off + vaddr - start
        raise self.view.fail(self.at, f"{what} (address {vaddr:#x}) lies in no PT_LOAD segment")

    def string(self, index: int, what: str) -> tuple[str, int, int]:
        """``(text, file offset, length)`` of the dynamic string table's string at ``index``."""
        strtab = self.offset(self.tags[DT_STRTAB], "DT_STRTAB")
        start = strtab + index
        limit = min(strtab + self.tags.get(DT_STRSZ, len(self.view) - strtab), len(self.view))
        self.view.need(start, 1, what)
        end = bytes(self.view.data[start:limit]).find(b"\0")
        if end < 0:
            raise self.view.fail(start, f"{what} is not NUL-terminated inside the string table")
        return bytes(self.view.data[start:start + end]).decode("utf-8", errors="replace"), start, end


def read_dynamic(view: BoundedBytes) -> ElfDynamic | None:
    """The dynamic table of ``view``, or None (not a little-endian ELF64 file, or no PT_DYNAMIC, or no string
    table). Raises InputError for tables that run outside the file."""
    data = view.data
    head = view.slice(0, 64, "ELF header") if len(data) >= 64 else b""
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        return None
    phoff, = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    if phentsize != _PHDR.size:
        return None
    view.need(phoff, phnum * phentsize, "program headers")
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = _PHDR.unpack_from(data, phoff + i * phentsize)
        if p_type == _PT_LOAD:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return None
    view.need(dynamic[0], dynamic[1], "dynamic section")
    tags: dict[int, int] = {}
    for at in range(dynamic[0], dynamic[0] + dynamic[1] - _DYN.size + 1, _DYN.size):
        tag, value = _DYN.unpack_from(data, at)
        if tag == _DT_NULL:
            break
        tags.setdefault(tag, value)
    if DT_STRTAB not in tags:
        return None
    return ElfDynamic(view, dynamic[0], tags, tuple(loads))
