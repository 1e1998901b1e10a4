"""The Julia version a Windows ``libjulia-internal.dll`` carries, read without running it.

A Windows runtime folder has no version anywhere in its file names (``bin/libjulia.dll``,
``bin/libjulia-internal.dll``) and no version resource (the real 1.13.1 DLLs have no ``.rsrc``). The
version is what ``jl_ver_string()`` returns: the DLL exports it as ``ijl_ver_string``, a function that
loads the address of ``JULIA_VERSION_STRING`` and returns, i.e. x86_64 ``lea rax, [rip+d]; ret``
(``48 8d 05 d32 c3``) or aarch64 ``adrp x0, P; add x0, x0, #o; ret``. We decode exactly those two
shapes, read the NUL-terminated string they point at and accept it only if it looks like a Julia version
(docs/julia-linking.md §1.8). Anything else gives None, never a guess.
"""

from __future__ import annotations

import re
import struct

from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.files import mapped_file

_GETTERS = ("ijl_ver_string", "jl_ver_string")
_VERSION = re.compile(rb"\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?")
_MAX_VERSION = 64


class _Pe:
    def __init__(self, data: Buffer, source: str) -> None:
        self.view = BoundedBytes(data, source)
        view = self.view
        if len(data) < 64 or view.slice(0, 2, "DOS header") != b"MZ":
            raise ValueError("not a PE file")
        pe = view.u32(0x3C, "e_lfanew")
        if view.slice(pe, 4, "PE signature") != b"PE\0\0":
            raise ValueError("not a PE file")
        self.machine, nsections = struct.unpack("<HH", view.slice(pe + 4, 4, "COFF header"))
        opt_size = view.u16(pe + 20, "SizeOfOptionalHeader")
        opt = pe + 24
        magic = view.u16(opt, "optional header magic")
        if magic == 0x20B:  # PE32+
            self.image_base = view.u64(opt + 24, "ImageBase")
            dirs = opt + 112
        elif magic == 0x10B:
            self.image_base = view.u32(opt + 28, "ImageBase")
            dirs = opt + 96
        else:
            raise ValueError("unknown optional header")
        self.export_rva, self.export_size = struct.unpack("<II", view.slice(dirs, 8, "export directory entry"))
        self.sections: list[tuple[int, int, int, int]] = []
        table = opt + opt_size
        for i in range(nsections):
            _, vsize, vaddr, rsize, roff = struct.unpack("<8sIIII", view.slice(table + 40 * i, 24, "section header"))
            self.sections.append((vaddr, max(vsize, rsize), roff, rsize))

    def offset(self, rva: int) -> int | None:
        for vaddr, size, roff, rsize in self.sections:
            if vaddr <= rva < vaddr + size and rva - vaddr < rsize:
                return int(roff + rva - vaddr)
        return None

    def bytes_at(self, rva: int, size: int, what: str) -> bytes | None:
        off = self.offset(rva)
        return None if off is None else self.view.slice(off, size, what)

    def export(self, wanted: tuple[str, ...]) -> int | None:
        """The RVA of the first of ``wanted`` the export table names."""
        head = self.bytes_at(self.export_rva, 40, "export directory") if self.export_rva else None
        if head is None:
            return None
        nfuncs, nnames, funcs, names, ordinals = struct.unpack_from("<IIIII", head, 20)
        found: dict[str, int] = {}
        for i in range(min(nnames, 1 << 20)):
            entry = self.bytes_at(names + 4 * i, 4, "export name pointer")
            if entry is None:
                return None
            name_at = self.offset(struct.unpack("<I", entry)[0])
            if name_at is None:
                continue
            name = bytes(self.view.data[name_at:name_at + 32]).split(b"\0", 1)[0].decode("ascii", "replace")
            if name in wanted:
                ordinal = self.bytes_at(ordinals + 2 * i, 2, "export ordinal")
                index = struct.unpack("<H", ordinal)[0] if ordinal else nfuncs
                rva = self.bytes_at(funcs + 4 * index, 4, "export address") if index < nfuncs else None
                if rva is not None:
                    found[name] = struct.unpack("<I", rva)[0]
        return next((found[n] for n in wanted if n in found), None)


def _target_of_getter(machine: int, rva: int, code: bytes) -> int | None:
    """The RVA a ``return &string;`` function at ``rva`` loads, for the two shapes we know."""
    if machine == 0x8664 and code[:3] == b"\x48\x8d\x05" and code[7:8] == b"\xc3":
        return rva + 7 + int(struct.unpack_from("<i", code, 3)[0])
    if machine == 0xAA64 and len(code) >= 12:
        adrp, add, ret = struct.unpack_from("<III", code)
        if adrp & 0x9F00001F == 0x90000000 and add & 0xFFC003FF == 0x91000000 and ret == 0xD65F03C0:
            imm = ((adrp >> 29) & 3) | (((adrp >> 5) & 0x7FFFF) << 2)
            imm -= (1 << 21) if imm & (1 << 20) else 0
            return int((rva & ~0xFFF) + (imm << 12) + ((add >> 10) & 0xFFF))
    return None


def version_from_pe(data: Buffer, source: str) -> str | None:
    """The version string ``ijl_ver_string`` returns in this DLL, or None (not a PE, no such export, code of
    another shape, or a string that is not a Julia version)."""
    try:
        pe = _Pe(data, source)
    except ValueError:
        return None
    rva = pe.export(_GETTERS)
    code = pe.bytes_at(rva, 12, "ijl_ver_string code") if rva is not None else None
    target = _target_of_getter(pe.machine, rva, code) if code is not None and rva is not None else None
    start = pe.offset(target) if target is not None else None
    if start is None:
        return None
    text = bytes(pe.view.data[start:start + _MAX_VERSION]).split(b"\0", 1)[0]
    return text.decode("ascii") if _VERSION.fullmatch(text) else None


def read_dll_version(path: str) -> str | None:
    """:func:`version_from_pe` of the file at ``path`` (mapped, not read whole)."""
    with mapped_file(path, "DLL") as data:
        return version_from_pe(data, path)
