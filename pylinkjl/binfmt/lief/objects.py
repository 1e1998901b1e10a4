"""Objects: defined function names (local ones included: Julia's clones are internal)."""

from __future__ import annotations

import struct
from typing import Any

from pylinkjl.binfmt.lief.lieflib import as_text, load_lief
from pylinkjl.binfmt.lief.macho import S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS
from pylinkjl.binfmt.lief.pe import IMAGE_SCN_MEM_EXECUTE
from pylinkjl.binfmt.sniff import sniff_bytes
from pylinkjl.errors import InputError


def object_functions(data: bytes, source: str) -> tuple[str, frozenset[str]]:
    """(format, plain names of every function the object defines, local ones included). Columns are
    read in bulk for ELF and Mach-O; Julia's clones (``f.N``, ``f.clone_N``) are local symbols."""
    found = sniff_bytes(bytes(data[:4096]))
    lief = load_lief()
    try:
        if found.format == "elf":
            return "elf", _elf_object_functions(lief, data, source)
        if found.format == "macho":
            return "macho", _macho_object_functions(lief, data, source)
        if found.format == "coff" and found.kind == "object":
            return "coff", _coff_object_functions(lief, data, source)
    except (RuntimeError, ValueError, TypeError, MemoryError, IndexError, struct.error) as err:
        raise InputError(source, f"cannot read the object's symbols: {err}") from None
    raise InputError(source, "is not an ELF, Mach-O or COFF object")


def _elf_object_functions(lief: Any, data: bytes, source: str) -> frozenset[str]:
    cfg = lief.ELF.ParserConfig()
    cfg.parse_relocations = False
    cfg.parse_symtab_symbols = False
    cfg.parse_dyn_symbols = False
    b = lief.ELF.parse(data, cfg)
    if b is None:
        raise InputError(source, "LIEF could not parse this ELF object")
    is64 = data[4] == 2
    secs = list(b.sections)
    for s in secs:
        if int(s.type.value if hasattr(s.type, "value") else s.type) != 2:  # SHT_SYMTAB
            continue
        if not 0 <= s.link < len(secs):
            raise InputError(source, f"symbol table links to section {s.link}, which does not exist")
        st = secs[s.link]
        esz = 24 if is64 else 16
        end = s.file_offset + s.size - s.size % esz
        strtab = bytes(data[st.file_offset:st.file_offset + st.size])
        if end > len(data) or st.file_offset + st.size > len(data):
            raise InputError(source, "symbol table runs past the end of the object")
        raw = bytes(data[s.file_offset:end])
        w = memoryview(raw).cast("I")
        names, packed = (w[0::6].tolist(), w[1::6].tolist()) if is64 else (w[0::4].tolist(), w[3::4].tolist())
        out = set()
        for n, p in zip(names, packed):
            if (p & 0xF) == 2 and 0 < (p >> 16) < 0xFF00:  # STT_FUNC, defined in a real section
                end_n = strtab.find(b"\0", n)
                out.add(strtab[n:end_n if end_n >= 0 else len(strtab)].decode("utf-8", errors="replace"))
        return frozenset(out)
    return frozenset()


def _macho_object_functions(lief: Any, data: bytes, source: str) -> frozenset[str]:
    fat = lief.MachO.parse(data)
    if fat is None or fat.size == 0:
        raise InputError(source, "LIEF could not parse this Mach-O object")
    b = fat.at(0)
    code = [bool(int(s.flags) & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS)) for s in b.sections]
    if not b.has_symbol_command:
        return frozenset()
    sc = b.symbol_command
    is64 = data[:4] == b"\xcf\xfa\xed\xfe"
    esz = 16 if is64 else 12
    if sc.symbol_offset + sc.numberof_symbols * esz > len(data) or sc.strings_offset + sc.strings_size > len(data):
        raise InputError(source, "symbol table runs past the end of the object")
    raw = bytes(data[sc.symbol_offset:sc.symbol_offset + sc.numberof_symbols * esz])
    strtab = bytes(data[sc.strings_offset:sc.strings_offset + sc.strings_size])
    w = memoryview(raw).cast("I")
    step = 4 if is64 else 3
    out = set()
    for n, p in zip(w[0::step].tolist(), w[1::step].tolist()):
        ntype, sect = p & 0xFF, (p >> 8) & 0xFF
        if ntype & 0xE0 == 0 and ntype & 0x0E == 0x0E and 0 < sect <= len(code) and code[sect - 1]:
            end_n = strtab.find(b"\0", n)
            out.add(strtab[n:end_n if end_n >= 0 else len(strtab)].decode("utf-8", errors="replace")
                    .removeprefix("_"))
    return frozenset(out)


def _coff_object_functions(lief: Any, data: bytes, source: str) -> frozenset[str]:
    b = lief.COFF.parse(data)
    if b is None:
        raise InputError(source, "LIEF could not parse this COFF object")
    machine = struct.unpack("<H", bytes(data[:2]))[0]
    strip = "_" if machine == 0x14C else ""
    execs = [bool(int(s.characteristics) & (IMAGE_SCN_MEM_EXECUTE | 0x20)) for s in b.sections]
    out = set()
    for s in b.symbols:
        idx = s.section_idx
        if 0 < idx <= len(execs) and execs[idx - 1] and not s.is_file_record and s.storage_class in (
                lief.COFF.Symbol.STORAGE_CLASS.EXTERNAL, lief.COFF.Symbol.STORAGE_CLASS.STATIC) \
                and (s.is_function or s.storage_class == lief.COFF.Symbol.STORAGE_CLASS.EXTERNAL
                     or "." in as_text(s.name)):
            name = as_text(s.name)
            out.add(name[1:] if strip and name.startswith(strip) else name)
    return frozenset(out)
