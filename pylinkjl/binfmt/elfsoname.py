"""The DT_SONAME of an ELF shared library, read from its dynamic section (little-endian ELF64, what
every Julia runtime for x86_64 and aarch64 Linux is), and a copy with another name written into it.

LLD writes a library's DT_SONAME into the DT_NEEDED of what links against it. A tree whose file names
differ from its sonames (a juliac bundle packed into a wheel keeps ``ICl90UHn_libjulia-internal.so.1.13``
with the soname ``ICl90UHn_libjulia-internal.so.1.13.1``: docs/julia-linking.md §1.8) gets a link-time
copy whose soname is the file name, so the image names what the tree has.
"""

from __future__ import annotations

import struct

from pylinkjl.binfmt.bounded import BoundedBytes, Buffer

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_STRTAB, _DT_STRSZ, _DT_SONAME = 0, 5, 10, 14
_PHDR = struct.Struct("<IIQQQQQQ")  # p_type p_flags p_offset p_vaddr p_paddr p_filesz p_memsz p_align
_DYN = struct.Struct("<qQ")


def soname_slot(data: Buffer, source: str) -> tuple[str, int, int] | None:
    """``(soname, file offset of its bytes, their length)``, or None (no DT_SONAME, or not a little-endian
    ELF64 shared library). Raises InputError for tables that run outside the file."""
    view = BoundedBytes(data, source)
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
    if _DT_SONAME not in tags or _DT_STRTAB not in tags:
        return None
    strtab = next((off + tags[_DT_STRTAB] - vaddr for vaddr, off, size in loads
                   if vaddr <= tags[_DT_STRTAB] < vaddr + size), None)
    if strtab is None:
        raise view.fail(dynamic[0], "DT_STRTAB lies in no PT_LOAD segment")
    start = strtab + tags[_DT_SONAME]
    end_limit = strtab + tags.get(_DT_STRSZ, len(data) - strtab)
    view.need(start, 1, "DT_SONAME string")
    end = bytes(data[start:min(end_limit, len(data))]).find(b"\0")
    if end < 0:
        raise view.fail(start, "DT_SONAME string is not NUL-terminated inside the string table")
    return bytes(data[start:start + end]).decode("utf-8", errors="replace"), start, end


def with_soname(data: Buffer, source: str, new: str) -> bytes | None:
    """A copy of ``data`` whose DT_SONAME reads ``new``, written over the old one; None when there is no
    soname or ``new`` is longer than it (the string table cannot grow in place)."""
    slot = soname_slot(data, source)
    encoded = new.encode("utf-8")
    if slot is None or len(encoded) > slot[2]:
        return None
    _, start, _ = slot
    out = bytearray(data)
    # Only the bytes the new name needs: a string table may share the old name's tail with other strings.
    out[start:start + len(encoded) + 1] = encoded + b"\0"
    return bytes(out)
