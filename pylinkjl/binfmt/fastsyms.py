"""What the link planner needs from an object file, read without decoding every symbol name.

``symbols.read_object_symbols`` decodes every global name: 460,000 of them in a large Julia archive,
half a second. Planning only needs the few dozen names an object leaves undefined and, so that the
archive's symbol table can answer "is X defined" (``armap.py``), how many definitions that table
should list for the object. Symbol tables are read here column by column: a strided slice of the
mapped file (``data[at:end:entry_size]``) gives one byte of every entry at C speed, translated and
OR-ed columns mark the entries of interest, and only their names are decoded.

The rules are those of ``read_object_symbols`` (the tests compare both, on real and on fuzzed
objects): the same ``undefined`` and ``data_hints``, except that COFF ``__imp_X`` folds to ``X`` even
where the object itself defines ``X`` (the planner subtracts every defined name anyway). Malformed
tables raise InputError too, but only the names decoded here are checked.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.sniff import BIGOBJ_CLASS_ID, short_import_names, sniff_bytes
from pylinkjl.errors import InputError


@dataclass(frozen=True)
class ObjectRefs:
    """What one object references and defines, read from its symbol table alone (no section reading)."""

    format: str  # "elf" | "macho" | "coff"
    arch: str | None
    undefined: frozenset[str]  # as ObjectSymbols.undefined (see the module docstring for COFF)
    data_hints: frozenset[str]
    listed: tuple[int, int]  # how many entries an archive symbol table has for this object: (fewest, most)
    # definitions a symbol table may leave out (COFF weak externals; .refptr. slots ride along), or all
    # of them for an object read in full (COFF import members)
    also_defined: frozenset[str] = frozenset()


class _Object:
    """The object file at ``data[start:start + size]`` (an archive member or a whole file). Reads are
    bounds-checked against the object; offsets in errors are relative to its start."""

    __slots__ = ("data", "size", "source", "start")

    def __init__(self, data: Buffer, start: int, size: int, source: str) -> None:
        self.data, self.start, self.size, self.source = data, start, size, source

    def fail(self, offset: int, problem: str) -> InputError:
        return InputError(self.source, problem, offset=max(offset, 0))

    def need(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise self.fail(offset, f"{what} ({size} bytes) runs past the end of the data ({self.size} bytes)")

    def read(self, offset: int, size: int, what: str) -> bytes:
        self.need(offset, size, what)
        return bytes(self.data[self.start + offset:self.start + offset + size])

    def head(self, size: int) -> BoundedBytes:
        """The first ``size`` bytes (fewer if the object is shorter), for the header readers."""
        return BoundedBytes(self.read(0, min(size, self.size), "header"), self.source)

    def unpack(self, fmt: struct.Struct, offset: int, what: str) -> tuple[int, ...]:
        self.need(offset, fmt.size, what)
        return fmt.unpack_from(self.data, self.start + offset)

    def column(self, offset: int, count: int, stride: int) -> bytes:
        """Byte ``offset`` of each of ``count`` entries of ``stride`` bytes (checked by the caller)."""
        at = self.start + offset
        col = self.data[at:at + count * stride:stride]
        return col if isinstance(col, bytes) else bytes(col)

    def find(self, sub: bytes, offset: int, end: int) -> int:
        """``bytes.find`` inside the object (offsets relative to it); the range is checked by the caller."""
        at = self.data.find(sub, self.start + offset, self.start + end)  # type: ignore[union-attr]
        return at - self.start if at >= 0 else -1

    def strings(self, table_at: int, table_size: int, offsets: list[int], where: int) -> set[str]:
        """The NUL-terminated names at ``offsets`` of the string table at ``table_at`` (checked by the
        caller to lie in the object), decoded like ``bounded.c_strings``. An offset outside the table
        is an error at ``where``."""
        if offsets and max(offsets) >= max(table_size, 1):
            raise self.fail(where, f"a symbol name offset ({max(offsets)}) lies outside the string table "
                                   f"({table_size} bytes)")
        raw = set()
        for offset in offsets:
            at = table_at + offset
            end = self.find(b"\0", at, table_at + table_size)
            raw.add(self.read(at, (table_at + table_size if end < 0 else end) - at, "name"))
        try:
            return {r.decode() for r in raw}
        except UnicodeDecodeError:
            return {r.decode("utf-8", errors="backslashreplace") for r in raw}


def _zero_positions(column: bytes) -> list[int]:
    return _positions(column, 0)


def _or(*columns: bytes) -> bytes:
    """Byte-wise OR of equally long columns (through big integers: C speed)."""
    acc = 0
    for col in columns:
        acc |= int.from_bytes(col, "little")
    return acc.to_bytes(len(columns[0]), "little")


def _table(pick: Callable[[int], object]) -> bytes:
    """A 256-byte ``bytes.translate`` table: 0 where ``pick(byte)`` holds, 0xFF elsewhere."""
    return bytes(0 if pick(b) else 0xFF for b in range(256))


def _equals(value: int) -> bytes:
    """The translate table marking one byte value (cheap enough to make on each use)."""
    table = bytearray(b"\xff" * 256)
    table[value] = 0
    return bytes(table)


def _find_u32(obj: _Object, at: int, count: int, stride: int, value: int) -> int:
    """The first of ``count`` entries whose little-endian u32 at ``at`` equals ``value``, or -1."""
    columns = [obj.column(at + i, count, stride).translate(_equals(value >> 8 * i & 0xFF)) for i in range(4)]
    return _or(*columns).find(0)


# -- ELF ---------------------------------------------------------------------------------------
_ELF64_SHDR = struct.Struct("<IIQQQQIIQQ")
_ELF32_SHDR = struct.Struct("<IIIIIIIIII")
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11
_ELF_GLOBAL = _table(lambda info: info >> 4 in (1, 2, 10))  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE
# (entry size, offset of st_info, offset of st_shndx)
_ELF64_SYM, _ELF32_SYM = (24, 4, 6), (16, 12, 14)


def _elf_refs(obj: _Object) -> tuple[set[str], int]:
    """(undefined global names, defined global entries): the rules of ``symbols._elf_symbols``."""
    head = obj.head(64)
    head.need(0, 52, "ELF header")
    if head.data[5] != 1:
        raise obj.fail(5, "big-endian ELF files are not supported")
    is64 = head.data[4] == 2
    if is64:
        shoff = head.u64(40, "ELF header")
        shentsize, shnum = head.unpack(struct.Struct("<HH"), 58, "ELF header")
        shdr, (symsize, info_at, shndx_at) = _ELF64_SHDR, _ELF64_SYM
    else:
        shoff = head.u32(32, "ELF header")
        shentsize, shnum = head.unpack(struct.Struct("<HH"), 46, "ELF header")
        shdr, (symsize, info_at, shndx_at) = _ELF32_SHDR, _ELF32_SYM
    if shoff == 0:
        return set(), 0
    if shentsize < shdr.size:
        raise obj.fail(58 if is64 else 46, f"section header size {shentsize} is too small")
    if shnum == 0:  # more than 0xff00 sections: the count is in section 0's sh_size
        shnum = obj.unpack(shdr, shoff, "section header 0")[5]
    obj.need(shoff, shnum * shentsize, f"{shnum} section headers")
    index = _find_u32(obj, shoff + 4, shnum, shentsize, _SHT_SYMTAB)  # sh_type
    if index < 0:
        index = _find_u32(obj, shoff + 4, shnum, shentsize, _SHT_DYNSYM)
    if index < 0:
        return set(), 0
    table = obj.unpack(shdr, shoff + index * shentsize, "section header")
    offset, size, link, entsize = table[4], table[5], table[6], table[9] or symsize
    if entsize < symsize:
        raise obj.fail(offset, f"symbol entry size {entsize} is too small")
    if link >= shnum:
        raise obj.fail(shoff, f"symbol table links to section {link} of {shnum}")
    strtab_hdr = obj.unpack(shdr, shoff + link * shentsize, "section header")
    strtab_at, strtab_size = strtab_hdr[4], strtab_hdr[5]
    obj.need(strtab_at, strtab_size, "symbol string table")
    count = size // entsize
    obj.need(offset, count * entsize, "symbol table")
    if count < 2:
        return set(), 0
    first = offset + entsize  # entry 0 is the null symbol
    is_global = obj.column(first + info_at, count - 1, entsize).translate(_ELF_GLOBAL)
    # 0 exactly where the entry is global/weak and st_shndx == SHN_UNDEF
    undefined = _zero_positions(_or(is_global, obj.column(first + shndx_at, count - 1, entsize),
                                    obj.column(first + shndx_at + 1, count - 1, entsize)))
    names = [struct.unpack_from("<I", obj.data, obj.start + first + i * entsize)[0] for i in undefined]
    defined = is_global.count(0) - len(undefined)
    return obj.strings(strtab_at, strtab_size, [n for n in names if n], offset), defined


# -- Mach-O ------------------------------------------------------------------------------------
_LC_SYMTAB = 0x2
_N_STAB, _N_TYPE, _N_EXT = 0xE0, 0x0E, 0x01
_N_UNDF, _N_PBUD = 0x0, 0xC
_MACHO_DEFINED = _table(lambda t: not t & _N_STAB and t & _N_EXT and t & _N_TYPE not in (_N_UNDF, _N_PBUD))
_MACHO_UNDEFINED = _table(lambda t: not t & _N_STAB and t & _N_EXT and t & _N_TYPE in (_N_UNDF, _N_PBUD))


def _macho_refs(obj: _Object) -> tuple[set[str], int]:
    """(undefined external names, defined external entries): the rules of ``symbols._macho_symbols``
    (an ``N_UNDF`` entry with a value is a common symbol: defined)."""
    if mh.is_fat(obj.read(0, min(8, obj.size), "header")):
        raise obj.fail(0, "universal (fat) Mach-O files are not link inputs here; extract one "
                          "slice with `lipo -thin <arch>`")
    peek = mh.read_header(obj.head(32))
    view = obj.head(peek.commands_offset + peek.sizeofcmds)
    header = mh.read_header(view)
    undefined: set[str] = set()
    defined = 0
    for cmd, at, _size in mh.load_commands(view, header):
        if cmd != _LC_SYMTAB:
            continue
        symoff, nsyms, stroff, strsize = view.unpack(struct.Struct("<IIII"), at + 8, "LC_SYMTAB")
        entry, value = (16, struct.Struct("<Q")) if header.is64 else (12, struct.Struct("<I"))
        obj.need(symoff, nsyms * entry, f"symbol table of {nsyms} entries")
        obj.need(stroff, strsize, "string table")
        types = obj.column(symoff + 4, nsyms, entry)
        offsets = []
        for i in _zero_positions(types.translate(_MACHO_UNDEFINED)):
            at_i = obj.start + symoff + i * entry
            if types[i] & _N_TYPE == _N_UNDF and value.unpack_from(obj.data, at_i + 8)[0]:
                defined += 1  # common
            else:
                offsets.append(struct.unpack_from("<I", obj.data, at_i)[0])
        defined += types.translate(_MACHO_DEFINED).count(0)
        undefined |= obj.strings(stroff, strsize, offsets, symoff)
    return undefined, defined


# -- COFF --------------------------------------------------------------------------------------
_COFF_HEADER = struct.Struct("<HHIIIHH")
_BIGOBJ_HEADER = struct.Struct("<HHHHI16sIIIIIII")
_CLASS_EXTERNAL, _CLASS_WEAK_EXTERNAL = 2, 105
_NONZERO = _table(lambda b: b != 0)
_U32 = struct.Struct("<I")


def _coff_refs(obj: _Object) -> tuple[set[str], set[str], int, int]:
    """(defined names the folding needs: weak externals and ``.refptr.*``; undefined names; defined
    external entries; weak external entries), by the rules of ``symbols._coff_symbols``: externals
    in section 0 with value 0 are undefined, other externals (not IMAGE_SYM_DEBUG) and every weak
    external are defined."""
    head = obj.read(0, min(obj.size, 56), "header")
    if head[:4] == b"\0\0\xff\xff" and head[12:28] == BIGOBJ_CLASS_ID:
        fields = obj.unpack(_BIGOBJ_HEADER, 0, "bigobj header")
        symptr, nsyms, entry, section_bytes = fields[11], fields[12], 20, 4
    else:
        fields = obj.unpack(_COFF_HEADER, 0, "COFF header")
        symptr, nsyms, entry, section_bytes = fields[3], fields[4], 18, 2
    if nsyms == 0:
        return set(), set(), 0, 0
    obj.need(symptr, nsyms * entry, f"symbol table of {nsyms} records")
    strpos = symptr + nsyms * entry
    strtab_size = 0
    if strpos + 4 <= obj.size:
        strtab_size = max(obj.unpack(_U32, strpos, "string table size")[0], 4)
        obj.need(strpos, strtab_size, "string table")
    # Storage class of every record, auxiliary records (whose bytes mean something else) blanked:
    # a record with naux > 0 is followed by naux of them.
    classes = bytearray(obj.column(symptr + entry - 2, nsyms, entry))
    naux = obj.column(symptr + entry - 1, nsyms, entry)
    has_aux = naux.translate(_NONZERO)
    k = has_aux.find(0)
    while k >= 0:
        run = min(naux[k], nsyms - k - 1)
        classes[k + 1:k + 1 + run] = bytes(run)
        k = has_aux.find(0, k + 1 + run)
    external = bytes(classes).translate(_equals(_CLASS_EXTERNAL))
    section = [obj.column(symptr + 12 + b, nsyms, entry) for b in range(section_bytes)]
    # externals in section 0: undefined when their value is 0 too, common symbols otherwise
    undefined = [k for k in _zero_positions(_or(external, *section))
                 if _U32.unpack_from(obj.data, obj.start + symptr + k * entry + 8)[0] == 0]
    debug = [k for k in _positions(section[0], 0xFE) if classes[k] == _CLASS_EXTERNAL
             and all(col[k] == 0xFF for col in section[1:])]  # IMAGE_SYM_DEBUG (-2)
    weak = _positions(classes, _CLASS_WEAK_EXTERNAL)
    refptr = _refptr_records(obj, symptr, entry, strpos, strtab_size, classes)

    def names(records: list[int]) -> set[str]:
        raw = [bytes(obj.data[obj.start + symptr + k * entry:obj.start + symptr + k * entry + 8]) for k in records]
        long = [int.from_bytes(r[4:], "little") for r in raw if r[:4] == b"\0\0\0\0"]
        if long and (min(long) < 4 or max(long) >= strtab_size):
            raise obj.fail(symptr, f"a symbol name offset lies outside the string table ({strtab_size} bytes)")
        short = {r.rstrip(b"\0").decode("utf-8", errors="backslashreplace") for r in raw if r[:4] != b"\0\0\0\0"}
        return short | obj.strings(strpos, strtab_size, long, symptr)

    strong = external.count(0) - len(undefined) - len(debug)
    defined = (set(weak) | refptr) - set(undefined) - set(debug)
    return names(sorted(defined)), names(undefined), strong, len(weak)


def _positions(column: bytes | bytearray, value: int) -> list[int]:
    out = []
    pos = column.find(value)
    while pos >= 0:
        out.append(pos)
        pos = column.find(value, pos + 1)
    return out


def _refptr_records(obj: _Object, symptr: int, entry: int, strpos: int, strtab_size: int,
                    classes: bytearray) -> set[int]:
    """The external and weak records whose (long) name starts with ``.refptr.``. (A short name
    ``.refptr.`` would be the import slot of an empty name, which no planner question involves.)"""
    from pylinkjl.binfmt.symbols import REFPTR_PREFIX

    prefix = REFPTR_PREFIX.encode()
    out: set[int] = set()
    at = obj.find(prefix, strpos + 4, strpos + strtab_size) if strtab_size else -1
    while at >= 0:
        field = b"\0\0\0\0" + _U32.pack(at - strpos)
        record = obj.find(field, symptr, strpos)
        while record >= 0:
            k, misaligned = divmod(record - symptr, entry)
            if not misaligned and classes[k] in (_CLASS_EXTERNAL, _CLASS_WEAK_EXTERNAL):
                out.add(k)
            record = obj.find(field, record + 1, strpos)
        at = obj.find(prefix, at + 1, strpos + strtab_size)
    return out


# -- entry point -------------------------------------------------------------------------------
def _from_full(data: Buffer, start: int, size: int, source: str) -> ObjectRefs:
    from pylinkjl.binfmt.symbols import read_object_symbols

    syms = read_object_symbols(bytes(data[start:start + size]), source)
    return ObjectRefs(syms.format, syms.arch, syms.undefined, syms.data_hints, (len(syms.defined),) * 2,
                      syms.defined)


def scan_object(data: Buffer, source: str, start: int = 0, size: int | None = None) -> ObjectRefs:
    """The undefined names of the object at ``data[start:start + size]`` (default: all of ``data``),
    and what an archive symbol table should list for it. Raises InputError (naming ``source`` and
    an offset inside the object) for anything that is not a well-formed object."""
    size = len(data) - start if size is None else size
    if not hasattr(data, "find"):  # a memoryview: searched below, so copy the object out
        data, start = bytes(data[start:start + size]), 0
    obj = _Object(data, start, size, source)
    head = obj.read(0, min(size, 4096), "header")
    kind = sniff_bytes(head)
    if kind.format == "elf":
        undefined, defined = _elf_refs(obj)
        return ObjectRefs("elf", kind.arch, frozenset(undefined), frozenset(), (defined, defined))
    if kind.format == "macho":
        undefined, defined = _macho_refs(obj)
        return ObjectRefs("macho", kind.arch, frozenset(undefined), frozenset(), (defined, defined))
    if kind.format == "coff" and kind.kind == "object":
        if short_import_names(head) is not None:  # an import-library member: tiny, read it fully
            return _from_full(data, start, size, source)
        # The full reader's rules; ELF and Mach-O need neither.
        from pylinkjl.binfmt.symbols import fold_imports

        weak_or_refptr, undefined, strong, weak = _coff_refs(obj)
        folded, hints = fold_imports(weak_or_refptr, undefined)
        return ObjectRefs("coff", kind.arch, folded, hints, (strong, strong + weak), frozenset(weak_or_refptr))
    raise InputError(source, f"not an object file: {kind.description}", offset=0)
