"""Defined and undefined global symbols of the link inputs (ELF, Mach-O, COFF objects and archives).

Names are the raw object-file names: Mach-O and i686 COFF keep their leading ``_``. What a MinGW
``.def`` needs is folded in for COFF: a reference to ``__imp_X`` is reported as ``X``, and ``X`` is a
*data hint* when the object reaches it only through ``__imp_X`` or a ``.refptr.X`` slot, i.e. when an
import library must export it as DATA (no code thunk).

Classification follows ``llvm-nm``: ``defined`` is what ``llvm-nm -g --defined-only`` lists (hidden
globals, weak and common symbols included; COFF weak externals count as defined, as they always
resolve), ``undefined`` what ``llvm-nm -u`` lists (weak references included).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.ar import iter_member_data
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer, c_strings
from pylinkjl.binfmt.sniff import BIGOBJ_CLASS_ID, FileKind, short_import_names, sniff_bytes, sniff_file
from pylinkjl.errors import InputError

log = logging.getLogger("pylinkjl.binfmt.symbols")

IMP_PREFIX = "__imp_"
REFPTR_PREFIX = ".refptr."


@dataclass(frozen=True)
class ObjectSymbols:
    format: str  # "elf" | "macho" | "coff"
    arch: str | None
    defined: frozenset[str]
    undefined: frozenset[str]
    data_hints: frozenset[str] = frozenset()


@dataclass(frozen=True)
class InputSummary:
    defined: frozenset[str]  # by any input
    undefined: frozenset[str]  # referenced by some input, defined by none: must come from libraries
    data_hints: frozenset[str]  # the undefined names that are only reached as data (MinGW .def DATA)
    kinds: Mapping[str, FileKind] = field(default_factory=dict, hash=False)  # per input path


# -- ELF ---------------------------------------------------------------------------------------
_ELF64_SHDR = struct.Struct("<IIQQQQIIQQ")  # name type flags addr offset size link info align entsize
_ELF32_SHDR = struct.Struct("<IIIIIIIIII")
_ELF64_SYM = struct.Struct("<IBBHQQ")  # name info other shndx value size
_ELF32_SYM = struct.Struct("<IIIBBH")  # name value size info other shndx
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_GLOBAL_BINDS = (1, 2, 10)  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE


def _elf_symbols(view: BoundedBytes) -> tuple[set[str], set[str]]:
    data = view.data
    view.need(0, 52, "ELF header")
    if data[5] != 1:
        raise view.fail(5, "big-endian ELF files are not supported")
    is64 = data[4] == 2
    if is64:
        shoff = view.u64(40, "ELF header")
        shentsize, shnum, _shstrndx = view.unpack(struct.Struct("<HHH"), 58, "ELF header")
        shdr, sym = _ELF64_SHDR, _ELF64_SYM
    else:
        shoff = view.u32(32, "ELF header")
        shentsize, shnum, _shstrndx = view.unpack(struct.Struct("<HHH"), 46, "ELF header")
        shdr, sym = _ELF32_SHDR, _ELF32_SYM
    if shoff == 0:
        return set(), set()
    if shentsize < shdr.size:
        raise view.fail(58 if is64 else 46, f"section header size {shentsize} is too small")
    if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
        shnum = view.unpack(shdr, shoff, "section header 0")[5]
    view.need(shoff, shnum * shentsize, f"{shnum} section headers")
    sections = [shdr.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    # fields: 1 type, 4 offset, 5 size, 6 link, 9 entsize (same positions for 32 and 64 bits)
    tables = [s for s in sections if s[1] == _SHT_SYMTAB] or [s for s in sections if s[1] == _SHT_DYNSYM]
    if not tables:
        return set(), set()
    table = tables[0]
    offset, size, link, entsize = table[4], table[5], table[6], table[9] or sym.size
    if entsize < sym.size:
        raise view.fail(offset, f"symbol entry size {entsize} is too small")
    if link >= shnum:
        raise view.fail(shoff, f"symbol table links to section {link} of {shnum}")
    strtab_hdr = sections[link]
    strtab = view.slice(strtab_hdr[4], strtab_hdr[5], "symbol string table")
    count = size // entsize
    view.need(offset, count * entsize, "symbol table")
    if entsize == sym.size:
        entries = sym.iter_unpack(data[offset + entsize:offset + count * entsize])
    else:
        entries = (sym.unpack_from(data, offset + i * entsize) for i in range(1, count))
    # (name offset, section index) of the global/weak symbols; index 0 is the null symbol
    if is64:
        chosen = [(e[0], e[3]) for e in entries if e[1] >> 4 in _GLOBAL_BINDS and e[0]]
    else:
        chosen = [(e[0], e[5]) for e in entries if e[3] >> 4 in _GLOBAL_BINDS and e[0]]
    _check_names(view, offset, strtab, (n for n, _ in chosen))
    defined = c_strings(strtab, [n for n, shndx in chosen if shndx != 0])
    undefined = c_strings(strtab, [n for n, shndx in chosen if shndx == 0])
    return defined, undefined


def _check_names(view: BoundedBytes, table_at: int, strtab: bytes, offsets: Iterable[int]) -> None:
    largest = max(offsets, default=0)
    if largest >= max(len(strtab), 1):
        raise view.fail(table_at, f"a symbol name offset ({largest}) lies outside the string table "
                                  f"({len(strtab)} bytes)")


# -- Mach-O ------------------------------------------------------------------------------------
_LC_SYMTAB = 0x2
_NLIST64 = struct.Struct("<IBBHQ")  # strx type sect desc value
_NLIST32 = struct.Struct("<IBBhI")
_N_STAB, _N_TYPE, _N_EXT = 0xE0, 0x0E, 0x01
_N_UNDF, _N_PBUD = 0x0, 0xC


def _macho_symbols(view: BoundedBytes) -> tuple[set[str], set[str]]:
    if mh.is_fat(bytes(view.data[:8])):
        raise view.fail(0, "universal (fat) Mach-O files are not link inputs here; extract one "
                           "slice with `lipo -thin <arch>`")
    header = mh.read_header(view)
    defined: set[str] = set()
    undefined: set[str] = set()
    for cmd, at, _size in mh.load_commands(view, header):
        if cmd != _LC_SYMTAB:
            continue
        symoff, nsyms, stroff, strsize = view.unpack(struct.Struct("<IIII"), at + 8, "LC_SYMTAB")
        nlist = _NLIST64 if header.is64 else _NLIST32
        view.need(symoff, nsyms * nlist.size, f"symbol table of {nsyms} entries")
        strtab = view.slice(stroff, strsize, "string table")
        undefined_offsets: list[int] = []
        defined_offsets: list[int] = []
        for strx, ntype, _sect, _desc, value in nlist.iter_unpack(view.data[symoff:symoff + nsyms * nlist.size]):
            if ntype & _N_STAB or not ntype & _N_EXT:
                continue
            kind = ntype & _N_TYPE
            # N_UNDF with a value is a common symbol: defined, as far as the link is concerned
            if (kind == _N_UNDF and value == 0) or kind == _N_PBUD:
                undefined_offsets.append(strx)
            else:
                defined_offsets.append(strx)
        _check_names(view, symoff, strtab, defined_offsets + undefined_offsets)
        defined |= c_strings(strtab, defined_offsets)
        undefined |= c_strings(strtab, undefined_offsets)
    return defined, undefined


# -- COFF --------------------------------------------------------------------------------------
_COFF_HEADER = struct.Struct("<HHIIIHH")  # machine nsections time symptr nsyms optsize flags
_BIGOBJ_HEADER = struct.Struct("<HHHHI16sIIIIIII")  # ... classid sizeofdata flags mdsize mdoff nsect symptr nsyms
_COFF_SYM = struct.Struct("<8sIhHBB")  # name value section type class naux
_BIGOBJ_SYM = struct.Struct("<8sIiHBB")
_CLASS_EXTERNAL, _CLASS_WEAK_EXTERNAL = 2, 105
_SYM_DEBUG = -2


def _coff_symbols(view: BoundedBytes) -> tuple[set[str], set[str]]:
    data = view.data
    imported = short_import_names(data)
    if imported is not None:  # an import-library member: defines __imp_X, and X too for code
        symbol = imported[0]
        import_type = view.u16(18, "import header") & 0x3  # 0 code, 1 data, 2 const
        return ({IMP_PREFIX + symbol} | ({symbol} if import_type == 0 else set())), set()
    if bytes(data[:4]) == b"\0\0\xff\xff" and bytes(data[12:28]) == BIGOBJ_CLASS_ID:
        header = view.unpack(_BIGOBJ_HEADER, 0, "bigobj header")
        symptr, nsyms, entry = header[11], header[12], _BIGOBJ_SYM
    else:
        header = view.unpack(_COFF_HEADER, 0, "COFF header")
        symptr, nsyms, entry = header[3], header[4], _COFF_SYM
    if nsyms == 0:
        return set(), set()
    view.need(symptr, nsyms * entry.size, f"symbol table of {nsyms} records")
    strpos = symptr + nsyms * entry.size
    strtab = b""
    if strpos + 4 <= len(data):
        strsize = view.u32(strpos, "string table size")
        strtab = view.slice(strpos, max(strsize, 4), "string table")
    # per class: short names inline, long ones as string-table offsets (decoded in one pass)
    short: tuple[set[bytes], set[bytes]] = (set(), set())  # (defined, undefined)
    long: tuple[list[int], list[int]] = ([], [])
    i = 0
    unpack = entry.unpack_from
    while i < nsyms:
        raw, value, section, _type, sclass, naux = unpack(data, symptr + i * entry.size)
        i += 1 + naux
        if sclass == _CLASS_EXTERNAL:
            if section == _SYM_DEBUG:
                continue
            undefined = section == 0 and value == 0
        elif sclass == _CLASS_WEAK_EXTERNAL:
            undefined = False
        else:
            continue
        if raw[:4] == b"\0\0\0\0":
            long[undefined].append(int.from_bytes(raw[4:], "little"))
        else:
            short[undefined].add(raw.rstrip(b"\0"))
    offsets = long[0] + long[1]
    if offsets and (min(offsets) < 4 or max(offsets) >= len(strtab)):
        raise view.fail(symptr, f"a symbol name offset lies outside the string table ({len(strtab)} bytes)")

    def decoded(k: int) -> set[str]:
        return {r.decode("utf-8", errors="backslashreplace") for r in short[k]} | c_strings(strtab, long[k])

    return decoded(0), decoded(1)


def fold_imports(defined: set[str], undefined: set[str]) -> tuple[frozenset[str], frozenset[str]]:
    """``__imp_X`` -> ``X``; which of them a .def must mark DATA. Returns (undefined, data_hints)."""
    imported = {n[len(IMP_PREFIX):] for n in undefined if n.startswith(IMP_PREFIX)}
    direct = {n for n in undefined if not n.startswith(IMP_PREFIX)}
    refptr = {n[len(REFPTR_PREFIX):] for n in defined | undefined if n.startswith(REFPTR_PREFIX)}
    folded = direct | (imported - defined)
    hints = ((imported - direct) | refptr) & folded
    return frozenset(folded), frozenset(hints)


# -- entry points ------------------------------------------------------------------------------
def read_object_symbols(data: Buffer, source: str) -> ObjectSymbols:
    """Global symbols of one object file held in ``data``. Raises InputError (naming ``source``
    and an offset inside ``data``) for anything that is not a well-formed object."""
    kind = sniff_bytes(bytes(data[:4096]))
    view = BoundedBytes(data, source)
    if kind.format == "elf":
        defined, undefined = _elf_symbols(view)
        return ObjectSymbols("elf", kind.arch, frozenset(defined), frozenset(undefined))
    if kind.format == "macho":
        defined, undefined = _macho_symbols(view)
        return ObjectSymbols("macho", kind.arch, frozenset(defined), frozenset(undefined))
    if kind.format == "coff" and kind.kind == "object":
        defined, undefined = _coff_symbols(view)
        folded, hints = fold_imports(defined, undefined)
        return ObjectSymbols("coff", kind.arch, frozenset(defined), folded, hints)
    raise InputError(source, f"not an object file: {kind.description}", offset=0)


def input_symbols(path: str | os.PathLike[str]) -> list[tuple[str, ObjectSymbols]]:
    """``[(name, symbols)]`` for an object (its path) or for each member of an archive
    (``archive(member)``, as LLD names them). Raises InputError."""
    p = Path(path)
    kind = sniff_file(p)
    if kind.format == "ar":
        return [(f"{p}({m.name})", read_object_symbols(blob, f"{p}({m.name})"))
                for m, blob in iter_member_data(p)]
    if kind.format not in ("elf", "macho", "coff") or kind.kind not in ("object", "shared"):
        raise InputError(p, f"not an object file or archive: {kind.description}")
    from pylinkjl.binfmt.files import read_file

    return [(str(p), read_object_symbols(read_file(p, "object file"), str(p)))]


def summarize(paths: Iterable[str | os.PathLike[str]]) -> InputSummary:
    """What the inputs define, what they still need from libraries, and which of those are data."""
    kinds: dict[str, FileKind] = {}
    defined: set[str] = set()
    needed: set[str] = set()
    hinted: set[str] = set()
    direct: set[str] = set()
    for path in paths:
        kinds[str(path)] = sniff_file(path)
        for _name, syms in input_symbols(path):
            defined |= syms.defined
            needed |= syms.undefined
            hinted |= syms.data_hints
            direct |= syms.undefined - syms.data_hints
    # an import library's __imp_X satisfies a reference to X (MinGW auto-import)
    unresolved = {n for n in needed if n not in defined and IMP_PREFIX + n not in defined}
    log.debug("%d inputs: %d defined, %d unresolved", len(kinds), len(defined), len(unresolved))
    return InputSummary(frozenset(defined), frozenset(unresolved), frozenset((hinted - direct) & unresolved),
                        kinds)

