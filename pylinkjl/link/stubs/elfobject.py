"""A minimal ELF64 relocatable object defining stub symbols, written byte by byte.

LLD turns it into a stub shared library (``ld.lld -shared -soname ...``) so that no assembler or
compiler is needed at run time. A linker script could define the names too, but only as untyped,
sizeless symbols in sections without write/execute flags; this object gives each function
``STT_FUNC`` in ``.text`` (16 bytes of trap instructions: calling a stub is a bug and should stop
the process) and each data symbol ``STT_OBJECT`` with a size in ``.bss``.

Only what the ELF targets need: ELF64, little-endian, x86_64 or aarch64.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

EM_X86_64 = 62
EM_AARCH64 = 183
_MACHINES = {"x86_64": EM_X86_64, "aarch64": EM_AARCH64}
# 16 bytes of "stop here" per function: ud2 + int3 padding / brk #1 x4.
_TRAP = {"x86_64": b"\x0f\x0b" + b"\xcc" * 14, "aarch64": struct.pack("<I", 0xD4200020) * 4}
FUNCTION_SIZE = 16

_SHT_PROGBITS, _SHT_SYMTAB, _SHT_STRTAB, _SHT_NOBITS = 1, 2, 3, 8
_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 0x1, 0x2, 0x4
_STB_GLOBAL, _STT_OBJECT, _STT_FUNC = 1, 1, 2
_EHDR_SIZE, _SHDR_SIZE, _SYM_SIZE = 64, 64, 24


class _StringTable:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self._seen: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self._seen:
            self._seen[text] = len(self.data)
            self.data += text.encode("utf-8") + b"\0"
        return self._seen[text]


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def stub_object(arch: str, functions: Sequence[str], data: Sequence[str],
                data_sizes: Mapping[str, int] | None = None, *, default_data_size: int = 8) -> bytes:
    """An ELF64 ``ET_REL`` object defining ``functions`` (in .text) and ``data`` (in .bss) as globals."""
    machine = _MACHINES[arch]
    sizes = data_sizes or {}
    text = _TRAP[arch] * len(functions)

    strtab = _StringTable()
    symbols = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0)]  # index 0: the null symbol
    for i, name in enumerate(functions):
        symbols.append(struct.pack("<IBBHQQ", strtab.add(name), (_STB_GLOBAL << 4) | _STT_FUNC, 0, 1,
                                   i * FUNCTION_SIZE, FUNCTION_SIZE))
    bss_size = 0
    for name in data:
        size = max(1, sizes.get(name, default_data_size))
        bss_size = _align(bss_size, 16 if size >= 16 else 8)
        symbols.append(struct.pack("<IBBHQQ", strtab.add(name), (_STB_GLOBAL << 4) | _STT_OBJECT, 0, 2,
                                   bss_size, size))
        bss_size += size
    symtab = b"".join(symbols)

    shstrtab = _StringTable()
    names = [shstrtab.add(n) for n in ("", ".text", ".bss", ".symtab", ".strtab", ".shstrtab",
                                       ".note.GNU-stack")]
    # File layout: header, .text, .symtab, .strtab, .shstrtab, section headers.
    text_off = _EHDR_SIZE
    symtab_off = _align(text_off + len(text), 8)
    strtab_off = symtab_off + len(symtab)
    shstrtab_off = strtab_off + len(strtab.data)
    shdr_off = _align(shstrtab_off + len(shstrtab.data), 8)

    def shdr(name: int, kind: int, flags: int, offset: int, size: int, link: int = 0, info: int = 0,
             align: int = 1, entsize: int = 0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, flags, 0, offset, size, link, info, align, entsize)

    headers = [
        shdr(0, 0, 0, 0, 0),
        shdr(names[1], _SHT_PROGBITS, _SHF_ALLOC | _SHF_EXECINSTR, text_off, len(text), align=16),
        shdr(names[2], _SHT_NOBITS, _SHF_ALLOC | _SHF_WRITE, text_off + len(text), bss_size, align=16),
        shdr(names[3], _SHT_SYMTAB, 0, symtab_off, len(symtab), link=4, info=1, align=8, entsize=_SYM_SIZE),
        shdr(names[4], _SHT_STRTAB, 0, strtab_off, len(strtab.data)),
        shdr(names[5], _SHT_STRTAB, 0, shstrtab_off, len(shstrtab.data)),
        shdr(names[6], _SHT_PROGBITS, 0, shdr_off, 0),  # non-executable stack
    ]
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # ELFCLASS64, little-endian, version 1, SysV
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 1, machine, 1, 0, 0, shdr_off, 0, _EHDR_SIZE, 0, 0,
                               _SHDR_SIZE, len(headers), 5)
    out = bytearray(ehdr)
    out += text
    out += bytes(symtab_off - len(out))
    out += symtab + strtab.data + shstrtab.data
    out += bytes(shdr_off - len(out))
    out += b"".join(headers)
    return bytes(out)
