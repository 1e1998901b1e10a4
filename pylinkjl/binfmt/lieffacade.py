"""One small facade over LIEF for linked images (ELF ``.so``, Mach-O ``.dylib``, PE ``.dll``).

This is the only module that imports LIEF. LIEF parses the headers, sections, segments, load commands
and directories; the large tables (ELF ``.rela.dyn``/``.dynsym``/``.symtab``, Mach-O ``nlist`` and export
trie, PE base relocations) are read here in bulk from a memory map of the file, because walking 150k
LIEF objects from Python costs seconds where one ``memoryview.cast`` costs milliseconds.

Addresses are the image's own virtual addresses (ELF ``p_vaddr``, Mach-O ``vmaddr``, PE RVAs); symbol
names are plain C names (Mach-O's and i686 COFF's leading ``_`` removed). Every read is bounds-checked:
malformed files raise :class:`~pylinkjl.errors.InputError` naming the file and the offset.
"""

from __future__ import annotations

import array
import bisect
import hashlib
import logging
import mmap
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("pylinkjl.binfmt.lieffacade")

Format = Literal["elf", "macho", "coff"]
Kind = Literal["shared", "executable", "object", "other"]


@dataclass(frozen=True)
class Section:
    name: str
    vaddr: int
    size: int
    executable: bool
    writable: bool  # writable at run time (ELF RELRO and Mach-O __DATA_CONST count as read-only)
    segment: str = ""

    @property
    def end(self) -> int:
        return self.vaddr + self.size


@dataclass(frozen=True)
class BuildVersion:
    platform: str  # "macos", "ios", ...
    minos: str  # "11.0"
    sdk: str


@dataclass(frozen=True)
class CodeSignature:
    offset: int  # file offset of the signature blob
    size: int
    code_limit: int | None  # bytes of the file the CodeDirectory covers
    page_size: int | None
    hashes_ok: bool | None  # every page hash matches the file (None: not checked / unknown hash type)
    problem: str | None = None


@dataclass(frozen=True)
class PseudoRelocs:
    count: int  # runtime pseudo-relocations in the image
    has_relocator: bool  # the image defines _pei386_runtime_relocator
    targets: tuple[int, ...] = ()  # addresses patched at run time (when the list was found by scanning)


@dataclass(frozen=True)
class _Mapping:
    vaddr: int
    vsize: int
    offset: int
    fsize: int


_MAX_FILE = 1 << 34  # 16 GiB: anything bigger is not a package image


def _lief() -> Any:
    import lief  # heavy import, deliberately local: pylinkjl link must never pay for it

    lief.logging.disable()
    return lief


def _text(value: Any) -> str:
    """LIEF hands back bytes for names that are not valid UTF-8 (corrupt files): always give a str."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _sniff(head: bytes) -> str | None:
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce"):
        return "macho"
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca"):
        return "fat"
    if head[:2] == b"MZ":
        return "pe"
    if head[:8] == b"!<arch>\n" or head[:8] == b"!<thin>\n":
        return "archive"
    if len(head) >= 2 and struct.unpack("<H", head[:2])[0] in (0x8664, 0x14C, 0xAA64, 0x1C4):
        return "coff-object"
    return None


class BinaryView:
    """A parsed image. Use as a context manager (or call :meth:`close`) to release the file map."""

    format: Format
    arch: str
    kind: Kind
    pointer_size: int
    sections: tuple[Section, ...]

    def __init__(self, path: Path, data: mmap.mmap | bytes, binary: Any, fmt: Format, base: int = 0) -> None:
        self.path = path
        self._data = data
        self._bin = binary  # keep the LIEF object alive as long as anything derived from it is used
        self.format = fmt
        self._base = base  # file offset of this slice (fat Mach-O)
        self._mappings: list[_Mapping] = []
        self._mapping_starts: list[int] = []
        self._section_starts: list[int] = []
        self.sections = ()
        self.image_base = 0
        self._relocs: dict[int, int | None] | None = None
        self._cache: dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            try:
                self._data.close()
            except BufferError:  # a memoryview still points into it; the GC will close it
                pass
        self._bin = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def file_size(self) -> int:
        return len(self._data) - self._base if self._base else len(self._data)

    def fail(self, problem: str, offset: int | None = None, hint: str | None = None) -> InputError:
        return InputError(self.path, problem, offset=offset, hint=hint)

    # -- raw access ------------------------------------------------------------------------------
    def file_bytes(self, offset: int, n: int) -> bytes:
        """``n`` bytes at file ``offset`` (of this slice); raises InputError past the end."""
        start = self._base + offset
        if offset < 0 or n < 0 or start + n > len(self._data):
            raise self.fail(f"needs {n} bytes at file offset {offset:#x}, beyond the end of the file", offset)
        return bytes(self._data[start:start + n])

    def file_view(self, offset: int, n: int) -> memoryview:
        """A zero-copy view of ``n`` file bytes at ``offset`` (release it before :meth:`close`)."""
        start = self._base + offset
        if offset < 0 or n < 0 or start + n > len(self._data):
            raise self.fail(f"needs {n} bytes at file offset {offset:#x}, beyond the end of the file", offset)
        return memoryview(self._data)[start:start + n]

    def vaddr_view(self, vaddr: int, n: int) -> memoryview:
        """Zero-copy view of ``n`` bytes at ``vaddr`` when they are all file-backed, else a copy."""
        off = self.file_offset(vaddr)
        end = self.file_offset(vaddr + n - 1) if n else off
        if off is not None and end is not None and end == off + n - 1:
            return self.file_view(off - self._base, n)
        return memoryview(self.read_bytes(vaddr, n))

    def _set_mappings(self, maps: list[_Mapping]) -> None:
        maps = sorted((m for m in maps if m.vsize > 0), key=lambda m: m.vaddr)
        self._mappings = maps
        self._mapping_starts = [m.vaddr for m in maps]

    def _set_sections(self, secs: list[Section]) -> None:
        secs.sort(key=lambda s: (s.vaddr, s.size))
        self.sections = tuple(secs)
        self._section_starts = [s.vaddr for s in secs]

    def check_extents(self) -> None:
        """A segment whose file data lies past the end means a truncated (or corrupt) file."""
        size = self.file_size
        for m in self._mappings:
            if m.fsize and m.offset + m.fsize > size:
                raise self.fail(f"is truncated: the segment at {m.vaddr:#x} needs file bytes up to "
                                f"{m.offset + m.fsize:#x}, but the file has {size:#x}", m.offset,
                                hint="the file was cut short (interrupted copy or download?)")

    def mapped(self, vaddr: int, n: int = 1) -> bool:
        i = bisect.bisect_right(self._mapping_starts, vaddr) - 1
        return i >= 0 and vaddr + n <= self._mappings[i].vaddr + self._mappings[i].vsize

    def read_bytes(self, vaddr: int, n: int) -> bytes:
        """``n`` bytes of the image at ``vaddr`` as the loader maps them (zero-fill past file data)."""
        if n < 0:
            raise self.fail(f"negative read of {n} bytes at {vaddr:#x}")
        i = bisect.bisect_right(self._mapping_starts, vaddr) - 1
        if i < 0:
            raise self.fail(f"address {vaddr:#x} is not mapped by any segment")
        m = self._mappings[i]
        if vaddr + n > m.vaddr + m.vsize:
            raise self.fail(f"{n} bytes at {vaddr:#x} run past the end of the segment at {m.vaddr:#x}")
        rel = vaddr - m.vaddr
        in_file = max(0, min(n, m.fsize - rel))
        out = self.file_bytes(m.offset + rel, in_file) if in_file else b""
        return out + bytes(n - in_file) if in_file < n else out

    def file_offset(self, vaddr: int) -> int | None:
        """File offset (within the whole file) holding the byte at ``vaddr``; None for zero-fill."""
        i = bisect.bisect_right(self._mapping_starts, vaddr) - 1
        if i < 0:
            return None
        m = self._mappings[i]
        rel = vaddr - m.vaddr
        return self._base + m.offset + rel if rel < m.fsize else None

    def read_u32(self, vaddr: int) -> int:
        return int(struct.unpack("<I", self.read_bytes(vaddr, 4))[0])

    def read_cstring(self, vaddr: int, limit: int = 4096) -> str:
        i = bisect.bisect_right(self._mapping_starts, vaddr) - 1
        if i < 0:
            raise self.fail(f"string address {vaddr:#x} is not mapped")
        m = self._mappings[i]
        raw = self.read_bytes(vaddr, max(0, min(limit, m.vaddr + m.vsize - vaddr)))
        end = raw.find(b"\0")
        if end < 0:
            raise self.fail(f"string at {vaddr:#x} is not NUL-terminated within {len(raw)} bytes")
        return raw[:end].decode("utf-8", errors="replace")

    def section_at(self, vaddr: int) -> Section | None:
        i = bisect.bisect_right(self._section_starts, vaddr) - 1
        # look back a little: sections of different segments may start at the same address
        for j in range(i, max(-1, i - 4), -1):
            s = self.sections[j]
            if s.vaddr <= vaddr < s.end:
                return s
        return None

    # -- pointers --------------------------------------------------------------------------------
    def read_pointers(self, vaddr: int, count: int) -> list[int | None]:
        """``count`` pointers at ``vaddr`` as the dynamic loader leaves them, as link-time addresses.
        ``None`` marks a slot bound to an external symbol (or otherwise not pointing into this image)."""
        if count < 0 or count > (1 << 28):
            raise self.fail(f"implausible pointer count {count} at {vaddr:#x}")
        size = self.pointer_size
        raw = self.read_bytes(vaddr, count * size)
        vals = memoryview(raw).cast("Q" if size == 8 else "I").tolist()
        return self._resolve(vaddr, vals)

    def read_pointer(self, vaddr: int) -> int | None:
        return self.read_pointers(vaddr, 1)[0]

    def _resolve(self, vaddr: int, raw: list[int]) -> list[int | None]:  # overridden per format
        return list(raw)

    def relocation_problem(self, vaddr: int) -> str | None:
        """Why the pointer slot at ``vaddr`` does not hold a usable in-image address (for reports)."""
        return None

    # -- symbols (overridden) --------------------------------------------------------------------
    def exported_symbols(self) -> frozenset[str]:
        raise NotImplementedError

    def export_address(self, name: str) -> int | None:
        """Address of ``name`` if the dynamic loader can look it up in this image, else None."""
        raise NotImplementedError

    def symbol_address(self, name: str) -> int | None:
        """Address of any defined symbol called ``name`` (static table first, then exports)."""
        return self.export_address(name)

    def symbol_extent(self, vaddr: int) -> int | None:
        """Bytes from ``vaddr`` to the next symbol or section end (a bound for the table at vaddr)."""
        sec = self.section_at(vaddr)
        if sec is None:
            return None
        addrs = self._symbol_addresses()
        i = bisect.bisect_right(addrs, vaddr)
        nxt = addrs[i] if i < len(addrs) else sec.end
        return min(nxt, sec.end) - vaddr

    def _symbol_addresses(self) -> list[int]:
        return []

    @property
    def export_count(self) -> int:
        return len(self.exported_symbols())

    def undefined_imports(self) -> dict[str, bool]:
        """Imports name -> is data (ELF only; other formats answer {})."""
        return {}

    # -- file layout (for reporting which bytes differ) --------------------------------------------
    def file_regions(self) -> list[tuple[int, int, str]]:
        """(file offset, size, name) of the named parts of the file, sorted by offset."""
        if "regions" not in self._cache:
            self._cache["regions"] = sorted((o, n, name) for o, n, name in self._regions() if n > 0)
        return self._cache["regions"]

    def _regions(self) -> list[tuple[int, int, str]]:
        return []

    def region_at(self, offset: int) -> str:
        """Name of the smallest named part of the file that holds byte ``offset``."""
        best: tuple[int, str] | None = None
        for o, n, name in self.file_regions():
            if o > offset:
                break
            if offset < o + n and (best is None or n <= best[0]):
                best = (n, name)
        return best[1] if best else "(between sections)"

    # -- properties every format answers (defaults) ---------------------------------------------
    needed_libraries: tuple[str, ...] = ()
    entry_point: int | None = None
    install_name: str | None = None
    build_version: BuildVersion | None = None
    has_textrel: bool = False

    @property
    def entry_symbol(self) -> str | None:
        return None

    @property
    def code_signature(self) -> CodeSignature | None:
        return None

    @property
    def pseudo_relocs(self) -> PseudoRelocs | None:
        return None


# =================================================================================================
# ELF
# =================================================================================================

_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 1, 2, 4
_DT = {"NEEDED": 1, "STRTAB": 5, "SYMTAB": 6, "RELA": 7, "RELASZ": 8, "RELAENT": 9, "STRSZ": 10, "REL": 17,
       "RELSZ": 18, "RELENT": 19, "TEXTREL": 22, "FLAGS": 30, "RELRSZ": 35, "RELR": 36, "RELACOUNT": 0x6FFFFFF9,
       "RELCOUNT": 0x6FFFFFFA, "SONAME": 14}
_DF_TEXTREL = 0x4
# (RELATIVE, absolute word, GLOB_DAT) relocation types per e_machine
_ELF_RELOC_TYPES = {62: (8, 1, 6), 183: (1027, 257, 1025), 3: (8, 1, 6), 40: (23, 2, 21), 243: (3, 2, 0)}
_ELF_ARCH = {62: "x86_64", 183: "aarch64", 3: "i686", 40: "arm", 21: "ppc64", 243: "riscv64", 20: "ppc"}


class _ElfView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        lief = _lief()
        hdr = b.header
        self.is64 = hdr.identity_class == lief.ELF.Header.CLASS.ELF64
        if hdr.identity_data != lief.ELF.Header.ELF_DATA.LSB:
            raise self.fail("big-endian ELF is not a pkgimage format pylinkjl supports")
        self.pointer_size = 8 if self.is64 else 4
        self.machine = int(self._u16_at(18))
        self.arch = _ELF_ARCH.get(self.machine, f"elf-machine-{self.machine}")
        has_interp = bool(b.has_interpreter)
        ftype = str(hdr.file_type).rsplit(".", 1)[-1]
        self.kind = {"DYN": "executable" if has_interp else "shared", "EXEC": "executable",
                     "REL": "object"}.get(ftype, "other")
        maps, relro = [], []
        for seg in b.segments:
            t = str(seg.type).rsplit(".", 1)[-1]
            if t == "LOAD":
                maps.append(_Mapping(seg.virtual_address, seg.virtual_size, seg.file_offset, seg.physical_size))
            elif t == "GNU_RELRO":
                relro.append((seg.virtual_address, seg.virtual_address + seg.virtual_size))
        self._set_mappings(maps)
        secs: list[Section] = []
        self._raw_sections: list[tuple[str, int, int, int, int, int, int]] = []
        for s in b.sections:
            flags = int(s.flags)
            stype = int(s.type.value) if hasattr(s.type, "value") else int(s.type)
            self._raw_sections.append((_text(s.name), stype, flags, s.link, s.file_offset, s.size, s.entry_size))
            if flags & _SHF_ALLOC and s.size:
                in_relro = any(lo <= s.virtual_address and s.virtual_address + s.size <= hi for lo, hi in relro)
                secs.append(Section(_text(s.name), s.virtual_address, s.size, bool(flags & _SHF_EXECINSTR),
                                    bool(flags & _SHF_WRITE) and not in_relro))
        self._set_sections(secs)
        self._dyn: list[tuple[int, int]] = []
        needed: list[str] = []
        for e in b.dynamic_entries:
            tag = int(e.tag.value) if hasattr(e.tag, "value") else int(e.tag)
            self._dyn.append((tag, int(e.value)))
            if tag == _DT["NEEDED"]:
                needed.append(_text(e.name))
            elif tag == _DT["SONAME"]:
                self.install_name = _text(e.name)
        self.needed_libraries = tuple(needed)
        self.has_textrel = any(t == _DT["TEXTREL"] for t, _ in self._dyn) or any(
            t == _DT["FLAGS"] and v & _DF_TEXTREL for t, v in self._dyn)
        self.entry_point = int(b.entrypoint) or None
        self._header_tables = (int(hdr.program_header_offset), int(hdr.numberof_segments),
                               int(hdr.section_header_offset), int(hdr.numberof_sections))
        # everything later reads the file map: let LIEF's copy of the file go (it is as big as the file)
        self._bin = None

    def _regions(self) -> list[tuple[int, int, str]]:
        ehsize = 64 if self.is64 else 52
        out = [(0, ehsize, "ELF header")]
        for name, stype, _flags, _link, off, size, _ent in self._raw_sections:
            if stype != 8 and name:  # not NOBITS
                out.append((off, size, name))
        phoff, nph, shoff, nsh = self._header_tables
        out.append((phoff, nph * (56 if self.is64 else 32), "program headers"))
        out.append((shoff, nsh * (64 if self.is64 else 40), "section headers"))
        return out

    def _u16_at(self, off: int) -> int:
        return int(struct.unpack("<H", self.file_bytes(off, 2))[0])

    def _dyn_value(self, tag: int) -> int | None:
        for t, v in self._dyn:
            if t == tag:
                return v
        return None

    # symbol tables: columns read in bulk -----------------------------------------------------------
    def _symtab_loc(self, which: str) -> tuple[int, int, int, int] | None:
        """(offset, size, string table offset, string table size) of ``.dynsym`` or ``.symtab``."""
        key = f"loc:{which}"
        if key not in self._cache:
            want = 11 if which == "dynsym" else 2
            out = None
            for name, stype, _flags, link, off, size, _ent in self._raw_sections:
                if stype != want:
                    continue
                if not 0 <= link < len(self._raw_sections):
                    raise self.fail(f"{name} links to section {link}, which does not exist")
                _, _, _, _, str_off, str_size, _ = self._raw_sections[link]
                esz = 24 if self.is64 else 16
                size -= size % esz
                for o, n, what in ((off, size, name), (str_off, str_size, "its string table")):
                    if o < 0 or n < 0 or o + n > self.file_size:
                        raise self.fail(f"{what} ({n} bytes at {o:#x}) runs past the end of the file", o)
                out = (off, size, str_off, str_size)
                break
            self._cache[key] = out
        return self._cache[key]

    def _symtab_raw(self, which: str) -> tuple[bytes, bytes] | None:
        loc = self._symtab_loc(which)
        if loc is None:
            return None
        off, size, str_off, str_size = loc
        return self.file_bytes(off, size), self.file_bytes(str_off, str_size)

    def _symtab(self, which: str) -> tuple[list[int], list[int], list[int], list[int], bytes] | None:
        """Columns (st_name, st_value, st_size, info|other<<8|shndx<<16, strtab) of a symbol table."""
        key = f"symtab:{which}"
        if key in self._cache:
            return self._cache[key]
        tab = self._symtab_raw(which)
        out = None
        if tab is not None:
            raw, strtab = tab
            w = memoryview(raw).cast("I")
            if self.is64:
                q = memoryview(raw).cast("Q")
                out = (w[0::6].tolist(), q[1::3].tolist(), q[2::3].tolist(), w[1::6].tolist(), strtab)
            else:
                out = (w[0::4].tolist(), w[1::4].tolist(), w[2::4].tolist(), w[3::4].tolist(), strtab)
        self._cache[key] = out
        return out

    @staticmethod
    def _name_at(strtab: bytes, off: int) -> str:
        end = strtab.find(b"\0", off)
        return strtab[off:end if end >= 0 else len(strtab)].decode("utf-8", errors="replace")

    def _find(self, which: str, name: str, *, exported_only: bool) -> tuple[int, int] | None:
        """(value, size) of the first fitting entry called ``name``: the name is found in the string
        table, then its offset among the entries' st_name fields, both searched in the file map
        (no copies, no columns: this is what keeps a 450k-symbol table cheap)."""
        loc = self._symtab_loc(which)
        if loc is None:
            return None
        off, size, str_off, str_size = (x + self._base if i in (0, 2) else x for i, x in enumerate(loc))
        data = self._data
        esz = 24 if self.is64 else 16
        entry = struct.Struct("<IBBHQQ" if self.is64 else "<IIIBBH")
        needle = name.encode() + b"\0"
        pos = data.find(needle, str_off, str_off + str_size)
        while pos >= 0:
            key = struct.pack("<I", pos - str_off)
            at = data.find(key, off, off + size)
            while at >= 0:
                if (at - off) % esz == 0:
                    if self.is64:
                        _n, info, other, shndx, value, sz = entry.unpack_from(data, at)
                    else:
                        _n, value, sz, info, other, shndx = entry.unpack_from(data, at)
                    bind, vis = info >> 4, other & 3
                    if shndx != 0 and (not exported_only or (bind in (1, 2, 10) and vis in (0, 3))):
                        return value, sz
                at = data.find(key, at + 1, off + size)
            pos = data.find(needle, pos + 1, str_off + str_size)
        return None

    def export_address(self, name: str) -> int | None:
        hit = self._find("dynsym", name, exported_only=True)
        return None if hit is None else hit[0]

    def symbol_address(self, name: str) -> int | None:
        hit = self._find("symtab", name, exported_only=False) or self._find("dynsym", name, exported_only=False)
        return None if hit is None else hit[0]

    def symbol_size(self, name: str) -> int | None:
        hit = self._find("symtab", name, exported_only=False) or self._find("dynsym", name, exported_only=False)
        return None if hit is None or not hit[1] else hit[1]

    def exported_symbols(self) -> frozenset[str]:
        if "exports" not in self._cache:
            tab = self._symtab("dynsym")
            out: set[str] = set()
            if tab is not None:
                names, _values, _sizes, packed, strtab = tab
                for nm, p in zip(names, packed):
                    if p >> 16 and ((p & 0xFF) >> 4) in (1, 2, 10) and ((p >> 8) & 3) in (0, 3):
                        out.add(self._name_at(strtab, nm))
            self._cache["exports"] = frozenset(out)
        return self._cache["exports"]

    def undefined_imports(self) -> dict[str, bool]:
        """Undefined dynamic symbols the image needs from other libraries (weak ones left out),
        name -> is data (reached through a data relocation rather than a PLT slot)."""
        tab = self._symtab("dynsym")
        if tab is None:
            return {}
        names, _values, _sizes, packed, strtab = tab
        wanted = {i: self._name_at(strtab, names[i]) for i, p in enumerate(packed)
                  if i and not p >> 16 and (p & 0xFF) >> 4 == 1 and names[i]}
        data: set[int] = set()
        for tab_tag, sz_tag, has_addend in ((_DT["RELA"], _DT["RELASZ"], True), (_DT["REL"], _DT["RELSZ"], False)):
            addr, size = self._dyn_value(tab_tag), self._dyn_value(sz_tag)
            if addr is None or not size:
                continue
            esz = (24 if has_addend else 16) if self.is64 else (12 if has_addend else 8)
            raw = self.read_bytes(addr, size - size % esz)
            mv = memoryview(raw).cast("Q" if self.is64 else "I")
            step = 3 if has_addend else 2
            shift = 32 if self.is64 else 8
            data.update(i >> shift for i in mv[1::step].tolist())
        return {name: i in data for i, name in wanted.items()}

    @property
    def export_count(self) -> int:
        tab = self._symtab("dynsym")
        if tab is None:
            return 0
        return sum(1 for p in tab[3] if p >> 16 and ((p & 0xFF) >> 4) in (1, 2, 10) and ((p >> 8) & 3) in (0, 3))

    def _symbol_addresses(self) -> list[int]:
        if "addrs" not in self._cache:
            vals: set[int] = set()
            for which in ("symtab", "dynsym"):
                tab = self._symtab(which)
                if tab is not None:
                    vals.update(v for v, p in zip(tab[1], tab[3]) if p >> 16 and (p & 0xF) != 4)  # not STT_FILE
            self._cache["addrs"] = sorted(vals)
        return self._cache["addrs"]

    # dynamic relocations -------------------------------------------------------------------------
    def _relocations(self) -> dict[int, int | None]:
        """Slot address -> link-time address it will hold (None: bound to an undefined symbol)."""
        if self._relocs is not None:
            return self._relocs
        rel: dict[int, int | None] = {}
        self._fast_offs: array.array[int] = array.array("Q")
        self._fast_vals: array.array[int] = array.array("q")
        kinds = _ELF_RELOC_TYPES.get(self.machine)
        self._reloc_types: dict[int, int] = {}
        for tab, sz, count_tag, has_addend in ((_DT["RELA"], _DT["RELASZ"], _DT["RELACOUNT"], True),
                                               (_DT["REL"], _DT["RELSZ"], _DT["RELCOUNT"], False)):
            addr, size = self._dyn_value(tab), self._dyn_value(sz)
            if addr is None or not size:
                continue
            esz = (24 if has_addend else 16) if self.is64 else (12 if has_addend else 8)
            if size > (1 << 31):
                raise self.fail(f"dynamic relocation table size {size} is implausible")
            raw = self.vaddr_view(addr, size - size % esz)
            try:
                self._collect_relocs(raw, has_addend, kinds, self._dyn_value(count_tag) or 0, rel)
            finally:
                raw.release()
        relr, relrsz = self._dyn_value(_DT["RELR"]), self._dyn_value(_DT["RELRSZ"])
        if relr is not None and relrsz:
            for a in self._relr_addresses(self.read_bytes(relr, relrsz - relrsz % self.pointer_size)):
                rel.setdefault(a, self._inplace(a))
        self._relocs = rel
        return rel

    def _collect_relocs(self, raw: memoryview, has_addend: bool, kinds: tuple[int, int, int] | None, nrel: int,
                        rel: dict[int, int | None]) -> None:
        relative, absolute, globdat = kinds or (-1, -1, -1)
        mv = memoryview(raw)
        if self.is64:
            w, sw = mv.cast("Q"), mv.cast("q")
            step = 3 if has_addend else 2
            offs, infos = w[0::step], w[1::step]
            adds = sw[2::step] if has_addend else None
            info_list = infos[nrel if 0 < nrel <= len(infos) else 0:].tolist()
            skip = len(infos) - len(info_list)
            types = [relative] * skip + [i & 0xFFFFFFFF for i in info_list]
            syms = [0] * skip + [i >> 32 for i in info_list]
        else:
            w, sw = mv.cast("I"), mv.cast("i")
            step = 3 if has_addend else 2
            offs, infos = w[0::step], w[1::step]
            adds = sw[2::step] if has_addend else None
            info_list = infos[nrel if 0 < nrel <= len(infos) else 0:].tolist()
            skip = len(infos) - len(info_list)
            types = [relative] * skip + [i & 0xFF for i in info_list]
            syms = [0] * skip + [i >> 8 for i in info_list]
        count = len(offs)
        # fast path: the leading DT_RELACOUNT entries are RELATIVE, sorted by address (LLD, -z combreloc);
        # keep them as two compact arrays that read_pointers slices, rather than a dict of 40-byte ints
        mask, shift = (0xFFFFFFFF, 32) if self.is64 else (0xFF, 8)
        n_fast = nrel if 0 < nrel <= count and infos[0] & mask == relative and infos[nrel - 1] & mask == relative \
            else 0
        if n_fast != skip:  # DT_RELACOUNT does not describe the table: classify every entry
            info_all = infos.tolist()
            types, syms = [i & mask for i in info_all], [i >> shift for i in info_all]
        word = "Q" if self.is64 else "I"
        if n_fast and has_addend and adds is not None:
            self._fast_offs = array.array(word, offs[:n_fast].tobytes())
            self._fast_vals = array.array(word.lower(), adds[:n_fast].tobytes())
        elif n_fast:
            for a in offs[:n_fast].tolist():
                rel[a] = self._inplace(a)
        off_list = [0] * n_fast + offs[n_fast:].tolist()
        add_list = [0] * n_fast + adds[n_fast:].tolist() if adds is not None else None
        dsym = None
        for i in range(n_fast, len(off_list)):
            t, a = types[i], off_list[i]
            self._reloc_types[a] = t
            addend = add_list[i] if add_list is not None else None
            if t == relative:
                rel[a] = addend if addend is not None else self._inplace(a)
            elif t in (absolute, globdat):
                if dsym is None:
                    dsym = self._symtab("dynsym")
                target = None
                si = syms[i]
                if dsym is not None and 0 < si < len(dsym[0]) and dsym[3][si] >> 16:
                    base = addend if addend is not None else (self._inplace(a) if t == absolute else 0)
                    target = dsym[1][si] + (base or 0)
                rel[a] = target
            else:
                rel[a] = None

    def read_pointers(self, vaddr: int, count: int) -> list[int | None]:
        if self.kind != "object" and 0 < count <= (1 << 28):
            self._relocations()
            offs, size = self._fast_offs, self.pointer_size
            i = bisect.bisect_left(offs, vaddr)
            last = vaddr + (count - 1) * size
            if i + count <= len(offs) and offs[i] == vaddr and offs[i + count - 1] == last and \
                    offs[i:i + count] == array.array(offs.typecode, range(vaddr, last + 1, size)):
                return self._fast_vals[i:i + count].tolist()  # type: ignore[return-value]
        return super().read_pointers(vaddr, count)

    def _inplace(self, a: int) -> int:
        raw = self.read_bytes(a, self.pointer_size)
        return int.from_bytes(raw, "little")

    def _relr_addresses(self, raw: bytes) -> Iterator[int]:
        size = self.pointer_size
        words = memoryview(raw).cast("Q" if size == 8 else "I").tolist()
        nbits = size * 8 - 1
        where = 0
        for w in words:
            if w & 1 == 0:
                yield w
                where = w + size
            else:
                for bit in range(nbits):
                    if (w >> (bit + 1)) & 1:
                        yield where + bit * size
                where += nbits * size

    def _resolve(self, vaddr: int, raw: list[int]) -> list[int | None]:
        rel = self._relocations()
        size = self.pointer_size
        if self.kind == "object":
            return list(raw)
        offs, n = self._fast_offs, len(raw)
        if offs and n:
            i = bisect.bisect_left(offs, vaddr)
            last = vaddr + (n - 1) * size
            if i + n <= len(offs) and offs[i] == vaddr and offs[i + n - 1] == last and \
                    offs[i:i + n] == array.array(offs.typecode, range(vaddr, last + 1, size)):
                # exactly one RELATIVE relocation per slot of this table, in order
                return self._fast_vals[i:i + n].tolist()  # type: ignore[return-value]
            if "fastdict" not in self._cache:  # unsorted or partial: look slots up one by one
                self._cache["fastdict"] = dict(zip(offs, self._fast_vals))
                rel.update((k, v) for k, v in self._cache["fastdict"].items() if k not in rel)
        # a non-zero word without a dynamic relocation is never right in a position-independent image
        missing = _MISSING
        out = [rel.get(vaddr + i * size, missing) for i in range(len(raw))]
        return [v if v is not missing else (0 if raw[i] == 0 else None) for i, v in enumerate(out)]  # type: ignore[misc]

    def relocation_problem(self, vaddr: int) -> str | None:
        rel = self._relocations()
        i = bisect.bisect_left(self._fast_offs, vaddr)
        if (i < len(self._fast_offs) and self._fast_offs[i] == vaddr) or vaddr in self._cache.get("fastdict", {}):
            return None
        if vaddr in rel:
            if rel[vaddr] is None:
                return f"the slot at {vaddr:#x} is bound to an undefined symbol (relocation type {self._reloc_types.get(vaddr)})"
            return None
        if self._inplace(vaddr):
            return f"the slot at {vaddr:#x} holds an address but has no dynamic relocation (it would not move with the image)"
        return None


_MISSING = object()


# =================================================================================================
# Mach-O
# =================================================================================================

_MACHO_CPU = {0x01000007: "x86_64", 0x0100000C: "aarch64", 7: "i686", 12: "arm"}
_SG_READ_ONLY = 0x10
_S_ATTR_PURE_INSTRUCTIONS, _S_ATTR_SOME_INSTRUCTIONS = 0x80000000, 0x400
_PLATFORMS = {1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 5: "bridgeos", 6: "maccatalyst", 7: "iossimulator",
              8: "tvossimulator", 9: "watchossimulator", 10: "driverkit", 11: "visionos", 12: "visionossimulator"}


def _version(v: int) -> str:
    major, minor, patch = v >> 16, (v >> 8) & 0xFF, v & 0xFF
    return f"{major}.{minor}" + (f".{patch}" if patch else "")


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong ULEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


class _MachOView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        magic = self.file_bytes(0, 4)
        if magic not in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
            raise self.fail("big-endian Mach-O is not a pkgimage format pylinkjl supports")
        self.is64 = magic == b"\xcf\xfa\xed\xfe"
        self.pointer_size = 8 if self.is64 else 4
        cputype, _sub, filetype = struct.unpack("<iiI", self.file_bytes(4, 12))
        self.arch = _MACHO_CPU.get(cputype & 0xFFFFFFFF, f"macho-cpu-{cputype:#x}")
        self.kind = {6: "shared", 8: "shared", 2: "executable", 1: "object"}.get(filetype, "other")  # type: ignore[assignment]
        maps, secs = [], []
        self._segments: dict[str, tuple[int, int]] = {}
        for seg in b.segments:
            maps.append(_Mapping(seg.virtual_address, seg.virtual_size, seg.file_offset, seg.file_size))
            self._segments[_text(seg.name)] = (seg.virtual_address, seg.virtual_size)
            prot = int(seg.init_protection)
            ro = bool(int(seg.flags) & _SG_READ_ONLY) or _text(seg.name) in ("__DATA_CONST", "__AUTH_CONST", "__TEXT")
            for s in seg.sections:
                if not s.size:
                    continue
                sflags = int(s.flags)
                code = bool(sflags & (_S_ATTR_PURE_INSTRUCTIONS | _S_ATTR_SOME_INSTRUCTIONS))
                exe = code and (bool(prot & 4) or self.kind == "object")
                secs.append(Section(_text(s.name), s.virtual_address, s.size, exe,
                                    bool(prot & 2) and not ro if self.kind != "object" else _text(s.name) != "__text",
                                    _text(seg.name)))
        self._set_mappings(maps)
        self._set_sections(secs)
        self.image_base = self._segments.get("__TEXT", (0, 0))[0]
        needed: list[str] = []
        for cmd in b.commands:
            t = str(cmd.command).rsplit(".", 1)[-1]
            if t in ("LOAD_DYLIB", "LOAD_WEAK_DYLIB", "REEXPORT_DYLIB", "LAZY_LOAD_DYLIB", "LOAD_UPWARD_DYLIB"):
                needed.append(_text(cmd.name))
            elif t == "ID_DYLIB":
                self.install_name = _text(cmd.name)
        self.needed_libraries = tuple(needed)
        if b.has_build_version:
            bv = b.build_version
            plat = int(bv.platform.value) if hasattr(bv.platform, "value") else int(bv.platform)
            self.build_version = BuildVersion(_PLATFORMS.get(plat, f"platform-{plat}"),
                                              ".".join(str(x) for x in bv.minos[:2]),
                                              ".".join(str(x) for x in bv.sdk[:2]))
        elif b.has_version_min:
            vm = b.version_min
            self.build_version = BuildVersion("macos", ".".join(str(x) for x in vm.version[:2]),
                                              ".".join(str(x) for x in vm.sdk[:2]))
        self.has_textrel = False
        self.entry_point = None
        self._chained = bool(b.has_dyld_chained_fixups)
        self._ptr_formats: list[tuple[int, int, int]] = []
        if self._chained:
            for st in b.dyld_chained_fixups.chained_starts_in_segments:
                seg = st.segment
                if seg is None:
                    continue
                fmt = int(st.pointer_format.value) if hasattr(st.pointer_format, "value") else int(st.pointer_format)
                self._ptr_formats.append((seg.virtual_address, seg.virtual_address + seg.virtual_size, fmt))

    def _regions(self) -> list[tuple[int, int, str]]:
        b = self._bin
        out = [(0, 32 if self.is64 else 28, "Mach-O header"),
               (32 if self.is64 else 28, int(b.header.sizeof_cmds), "load commands")]
        for seg in b.segments:
            out.append((seg.file_offset, seg.file_size, _text(seg.name)))
            for sec in seg.sections:
                if sec.offset:
                    out.append((sec.offset, sec.size, f"{_text(seg.name)},{_text(sec.name)}"))
        if b.has_symbol_command:
            sc = b.symbol_command
            out.append((sc.symbol_offset, sc.numberof_symbols * (16 if self.is64 else 12), "symbol table"))
            out.append((sc.strings_offset, sc.strings_size, "string table"))
        if b.has_code_signature:
            out.append((b.code_signature.data_offset, b.code_signature.data_size, "code signature"))
        if b.has_dyld_info:
            for what in ("rebase", "bind", "weak_bind", "lazy_bind", "export_info"):
                off, size = getattr(b.dyld_info, what)
                out.append((off, size, f"dyld {what.replace('_info', '')} info"))
        if b.has_dyld_chained_fixups:
            out.append((b.dyld_chained_fixups.data_offset, b.dyld_chained_fixups.data_size, "chained fixups"))
        if b.has_dyld_exports_trie:
            out.append((b.dyld_exports_trie.data_offset, b.dyld_exports_trie.data_size, "export trie"))
        return out

    # symbols: nlist in bulk, exports through the trie ----------------------------------------------
    def _nlist(self) -> tuple[list[int], list[int], list[int], bytes] | None:
        if "nlist" in self._cache:
            return self._cache["nlist"]
        out = None
        b = self._bin
        if b.has_symbol_command:
            sc = b.symbol_command
            n = sc.numberof_symbols
            esz = 16 if self.is64 else 12
            if n * esz > self.file_size:
                raise self.fail(f"symbol table claims {n} entries, more than the file holds", sc.symbol_offset)
            raw = self.file_bytes(sc.symbol_offset, n * esz)
            strtab = self.file_bytes(sc.strings_offset, sc.strings_size)
            w = memoryview(raw).cast("I")
            if self.is64:
                q = memoryview(raw).cast("Q")
                out = (w[0::4].tolist(), w[1::4].tolist(), q[1::2].tolist(), strtab)
            else:
                out = (w[0::3].tolist(), w[1::3].tolist(), w[2::3].tolist(), strtab)
        self._cache["nlist"] = out
        return out

    def _export_trie(self) -> bytes:
        if "trie" not in self._cache:
            b = self._bin
            data = b""
            if b.has_dyld_exports_trie:
                t = b.dyld_exports_trie
                data = self.file_bytes(t.data_offset, t.data_size)
            elif b.has_dyld_info:
                off, size = b.dyld_info.export_info
                data = self.file_bytes(off, size) if size else b""
            self._cache["trie"] = data
        return self._cache["trie"]

    def export_address(self, name: str) -> int | None:
        trie = self._export_trie()
        if not trie:
            return None
        want = ("_" + name).encode()
        pos, matched = 0, 0
        try:
            for _ in range(4096):
                term, p = _uleb(trie, pos)
                if matched == len(want):
                    if term == 0:
                        return None
                    flags, p = _uleb(trie, p)
                    if flags & 0x8:  # re-export: not defined here
                        return None
                    addr, _ = _uleb(trie, p)
                    return self.image_base + addr if flags & 0x3 != 2 else addr  # 2 = absolute
                p += term
                if p >= len(trie):
                    return None
                nchild = trie[p]
                p += 1
                for _c in range(nchild):
                    end = trie.index(b"\0", p)
                    edge = trie[p:end]
                    child, p = _uleb(trie, end + 1)
                    if edge and want.startswith(edge, matched):
                        matched += len(edge)
                        pos = child
                        break
                else:
                    return None
        except ValueError as err:
            raise self.fail(f"malformed export trie: {err}") from None
        raise self.fail("export trie walk does not terminate")

    def exported_symbols(self) -> frozenset[str]:
        if "exports" in self._cache:
            return self._cache["exports"]
        trie = self._export_trie()
        out: set[str] = set()
        if trie:
            try:
                for name, flags in _walk_trie(trie):
                    if not flags & 0x8:  # re-exports are defined elsewhere
                        out.add(name.decode("utf-8", errors="replace").removeprefix("_"))
            except (ValueError, IndexError) as err:
                raise self.fail(f"malformed export trie: {err}") from None
        self._cache["exports"] = frozenset(out)
        return self._cache["exports"]

    def symbol_address(self, name: str) -> int | None:
        tab = self._nlist()
        if tab is not None:
            strx, packed, values, strtab = tab
            needle = ("_" + name).encode() + b"\0"
            pos = strtab.find(needle)
            while pos >= 0:
                start = 0
                while True:
                    try:
                        i = strx.index(pos, start)
                    except ValueError:
                        break
                    ntype = packed[i] & 0xFF
                    if ntype & 0xE0 == 0 and ntype & 0x0E == 0x0E:  # N_SECT, not a debug entry
                        return values[i]
                    start = i + 1
                pos = strtab.find(needle, pos + 1)
        return self.export_address(name)

    def _symbol_addresses(self) -> list[int]:
        if "addrs" not in self._cache:
            tab = self._nlist()
            vals: set[int] = set()
            if tab is not None:
                vals.update(v for v, p in zip(tab[2], tab[1]) if (p & 0xFF) & 0xE0 == 0 and (p & 0x0E) == 0x0E)
            self._cache["addrs"] = sorted(vals)
        return self._cache["addrs"]

    # pointers: rebased in place (classic) or chained fixups ------------------------------------------
    def _binds(self) -> dict[int, str]:
        if "binds" not in self._cache:
            out: dict[int, str] = {}
            b = self._bin
            if not self._chained and b.has_dyld_info:
                for bi in b.dyld_info.bindings:
                    out[int(bi.address)] = _text(bi.symbol.name) if bi.has_symbol else "?"
            self._cache["binds"] = out
        return self._cache["binds"]

    def _format_at(self, vaddr: int) -> int | None:
        for lo, hi, fmt in self._ptr_formats:
            if lo <= vaddr < hi:
                return fmt
        return None

    def _resolve(self, vaddr: int, raw: list[int]) -> list[int | None]:
        size = self.pointer_size
        if not self._chained:
            binds = self._binds()
            if binds:
                return [None if vaddr + i * size in binds else v for i, v in enumerate(raw)]
            return list(raw)
        fmt = self._format_at(vaddr)
        base = self.image_base
        if fmt in (2, 6):  # DYLD_CHAINED_PTR_64 / _64_OFFSET
            add = base if fmt == 6 else 0
            return [None if v >> 63 else (((v >> 36) & 0xFF) << 56 | (v & 0xFFFFFFFFF)) + add if v else 0
                    for v in raw]
        if fmt in (1, 9, 12):  # arm64e variants: auth rebases are offsets from the image base
            out: list[int | None] = []
            for v in raw:
                if not v:
                    out.append(0)
                elif v >> 62 & 1:  # bind
                    out.append(None)
                elif v >> 63:
                    out.append(base + (v & 0xFFFFFFFF))
                else:
                    out.append((((v >> 43) & 0xFF) << 56) | (v & 0x7FFFFFFFFFF))
            return out
        if fmt in (3, 4, 5, 7, 11):  # 32-bit formats: 26-bit target, bind bit 31
            return [None if v >> 31 else (v & 0x3FFFFFF) + (base if fmt != 3 else 0) if v else 0 for v in raw]
        return list(raw)

    def relocation_problem(self, vaddr: int) -> str | None:
        if not self._chained and vaddr in self._binds():
            return f"the slot at {vaddr:#x} is bound to {self._binds()[vaddr]}"
        return None

    @property
    def code_signature(self) -> CodeSignature | None:
        if "codesig" in self._cache:
            return self._cache["codesig"]
        b = self._bin
        out = None
        if b.has_code_signature:
            cs = b.code_signature
            out = _parse_code_signature(self, cs.data_offset, cs.data_size)
        self._cache["codesig"] = out
        return out


def _walk_trie(trie: bytes) -> Iterator[tuple[bytes, int]]:
    """(name, flags) of every terminal node of a Mach-O export trie."""
    stack = [(0, b"")]
    visits = 0
    while stack:
        pos, prefix = stack.pop()
        visits += 1
        if visits > len(trie) + 1:
            raise ValueError("the trie has a cycle")
        term, p = _uleb(trie, pos)
        if term:
            flags, _ = _uleb(trie, p)
            yield prefix, flags
        p += term
        if p >= len(trie):
            raise ValueError(f"node at {pos} runs past the end")
        nchild = trie[p]
        p += 1
        for _c in range(nchild):
            end = trie.index(b"\0", p)
            edge = trie[p:end]
            child, p = _uleb(trie, end + 1)
            if child >= len(trie) or child == 0:
                raise ValueError(f"child offset {child} is out of range")
            stack.append((child, prefix + edge))


def _parse_code_signature(view: BinaryView, offset: int, size: int) -> CodeSignature:
    """Check the ad-hoc signature's CodeDirectory: it must cover the file up to the signature and
    every page hash must match (dyld kills an arm64 process whose pages do not)."""
    def bad(problem: str) -> CodeSignature:
        return CodeSignature(offset, size, None, None, False, problem)

    if offset + size > view.file_size or size < 12:
        return bad(f"signature ({size} bytes at {offset:#x}) lies outside the file ({view.file_size} bytes)")
    blob = view.file_bytes(offset, size)
    magic, _length, count = struct.unpack(">III", blob[:12])
    if magic != 0xFADE0CC0:
        return bad(f"signature magic is {magic:#x}, not an embedded-signature SuperBlob")
    cd_off = None
    for i in range(min(count, (size - 12) // 8)):
        btype, boff = struct.unpack(">II", blob[12 + 8 * i:20 + 8 * i])
        if btype == 0 and boff + 40 <= size:
            cd_off = boff
            break
    if cd_off is None:
        return bad("signature has no CodeDirectory")
    cd = blob[cd_off:]
    if len(cd) < 40:
        return bad("the CodeDirectory is truncated")
    (cmagic, _clen, _ver, _flags, hash_off, _ident, _nspecial, ncode, code_limit, hash_size, hash_type,
     _plat, page_log) = struct.unpack_from(">IIIIIIIIIBBBB", cd, 0)
    if cmagic != 0xFADE0C02:
        return bad(f"CodeDirectory magic is {cmagic:#x}")
    page = 1 << page_log if page_log else 0
    if code_limit != offset:
        return CodeSignature(offset, size, code_limit, page, False,
                             f"the signature covers {code_limit} bytes but sits at offset {offset}")
    algo = {1: "sha1", 2: "sha256", 3: "sha256"}.get(hash_type)
    if algo is None or not page:
        return CodeSignature(offset, size, code_limit, page, None, f"unknown hash type {hash_type}")
    want_pages = -(-code_limit // page)
    if ncode != want_pages or hash_off + ncode * hash_size > len(cd):
        return CodeSignature(offset, size, code_limit, page, False,
                             f"{ncode} page hashes for {want_pages} pages")
    for i in range(ncode):
        chunk = view.file_bytes(i * page, min(page, code_limit - i * page))
        digest = hashlib.new(algo, chunk).digest()[:hash_size]
        if digest != cd[hash_off + i * hash_size:hash_off + (i + 1) * hash_size]:
            return CodeSignature(offset, size, code_limit, page, False,
                                 f"page {i} (file offset {i * page:#x}) does not match its hash")
    return CodeSignature(offset, size, code_limit, page, True)


# =================================================================================================
# PE
# =================================================================================================

_PE_ARCH = {0x8664: "x86_64", 0x14C: "i686", 0xAA64: "aarch64", 0x1C4: "arm"}
_IMAGE_SCN_MEM_EXECUTE, _IMAGE_SCN_MEM_WRITE, _IMAGE_FILE_DLL = 0x20000000, 0x80000000, 0x2000
# Julia's _DllMainCRTStartup stub: return 1 (x86_64 / i686 stdcall / aarch64)
_STUB_CODE = (bytes.fromhex("b801000000c3"), bytes.fromhex("b801000000c20c00"), bytes.fromhex("20008052c0035fd6"))


class _PeView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        machine = int(b.header.machine.value) if hasattr(b.header.machine, "value") else int(b.header.machine)
        self.arch = _PE_ARCH.get(machine, f"pe-machine-{machine:#x}")
        self.pointer_size = 8 if str(b.optional_header.magic).endswith("PLUS") else 4
        chars = int(b.header.characteristics)
        self.kind = "shared" if chars & _IMAGE_FILE_DLL else "executable"
        self.image_base = int(b.optional_header.imagebase)
        maps, secs = [], []
        self._pe_sections: list[tuple[str, int]] = []
        for s in b.sections:
            c = int(s.characteristics)
            vsize = s.virtual_size or s.sizeof_raw_data
            maps.append(_Mapping(s.virtual_address, vsize, s.pointerto_raw_data, min(s.sizeof_raw_data, vsize)))
            self._pe_sections.append((_text(s.name), s.virtual_address))
            if vsize:
                secs.append(Section(_text(s.name), s.virtual_address, vsize, bool(c & _IMAGE_SCN_MEM_EXECUTE),
                                    bool(c & _IMAGE_SCN_MEM_WRITE)))
        self._set_mappings(maps)
        self._set_sections(secs)
        self.needed_libraries = tuple(_text(imp.name) for imp in b.imports)
        self.entry_point = int(b.optional_header.addressof_entrypoint) or None
        self.has_textrel = False

    def _regions(self) -> list[tuple[int, int, str]]:
        b = self._bin
        out = [(0, int(b.dos_header.addressof_new_exeheader), "DOS header"),
               (int(b.dos_header.addressof_new_exeheader), int(b.optional_header.sizeof_headers)
                - int(b.dos_header.addressof_new_exeheader), "PE headers")]
        for sec in b.sections:
            out.append((sec.pointerto_raw_data, sec.sizeof_raw_data, _text(sec.name)))
        ptr = int(b.header.pointerto_symbol_table)
        if ptr:
            out.append((ptr, self.file_size - ptr, "COFF symbol table"))
        return out

    def _exports(self) -> dict[str, int]:
        if "exports" not in self._cache:
            out: dict[str, int] = {}
            b = self._bin
            if b.has_exports:
                for e in b.get_export().entries:
                    if e.name and not e.is_extern:
                        out[_text(e.name)] = int(e.address)
            self._cache["exports"] = out
            self._cache["nexports"] = len(b.get_export().entries) if b.has_exports else 0
        return self._cache["exports"]

    def exported_symbols(self) -> frozenset[str]:
        return frozenset(self._exports())

    def export_address(self, name: str) -> int | None:
        return self._exports().get(name)

    @property
    def export_count(self) -> int:
        self._exports()
        return int(self._cache["nexports"])

    def _coff_symbols(self) -> dict[str, int]:
        """Plain name -> RVA of the COFF symbol table LLD keeps in MinGW images (empty if stripped)."""
        if "coff" not in self._cache:
            out: dict[str, int] = {}
            strip = "_" if self.arch == "i686" else ""
            for s in self._bin.symbols:
                idx = s.section_idx
                if idx <= 0 or idx > len(self._pe_sections):
                    continue
                name = _text(s.name)
                if strip and name.startswith(strip):
                    name = name[1:]
                out.setdefault(name, self._pe_sections[idx - 1][1] + int(s.value))
            self._cache["coff"] = out
        return self._cache["coff"]

    def symbol_address(self, name: str) -> int | None:
        hit = self._coff_symbols().get(name)
        return hit if hit is not None else self.export_address(name)

    def _symbol_addresses(self) -> list[int]:
        return sorted(set(self._coff_symbols().values()) | set(self._exports().values()))

    def _resolve(self, vaddr: int, raw: list[int]) -> list[int | None]:
        base = self.image_base
        return [v - base if v >= base else (0 if v == 0 else None) for v in raw]

    def base_relocations(self) -> frozenset[int]:
        """RVAs that the loader fixes up when the DLL does not load at its preferred base."""
        if "baserel" not in self._cache:
            out: set[int] = set()
            b = self._bin
            d = b.data_directory(lief_dir("BASE_RELOCATION_TABLE"))
            rva, size = int(d.rva), int(d.size)
            if rva and size:
                raw = self.read_bytes(rva, size)
                pos = 0
                while pos + 8 <= len(raw):
                    page, bsize = struct.unpack_from("<II", raw, pos)
                    if bsize < 8:
                        break
                    entries = memoryview(raw[pos + 8:pos + bsize]).cast("H").tolist() if bsize % 2 == 0 else []
                    out.update(page + (e & 0xFFF) for e in entries if e >> 12)
                    pos += bsize
            self._cache["baserel"] = frozenset(out)
        return self._cache["baserel"]

    def relocation_problem(self, vaddr: int) -> str | None:
        raw = int.from_bytes(self.read_bytes(vaddr, self.pointer_size), "little")
        if raw and vaddr not in self.base_relocations():
            return f"the slot at RVA {vaddr:#x} has no base relocation (breaks when the DLL is rebased)"
        return None

    @property
    def entry_symbol(self) -> str | None:
        if self.entry_point is None:
            return None
        names = [n for n, a in self._coff_symbols().items() if a == self.entry_point]
        for preferred in ("_DllMainCRTStartup", "DllMainCRTStartup", "_DllMainCRTStartup@12",
                          "DllMainCRTStartup@12"):
            if preferred in names:
                return preferred
        if names:
            return min(names)
        try:
            code = self.read_bytes(self.entry_point, 8)
        except InputError:
            return None
        if any(code.startswith(stub) for stub in _STUB_CODE):
            return "_DllMainCRTStartup"  # no symbol table, but the bytes are Julia's stub
        return None

    @property
    def pseudo_relocs(self) -> PseudoRelocs | None:
        """Runtime pseudo-relocations (MinGW auto-import of data without dllimport). From the COFF
        symbols when LLD kept them, else by finding the list's version-2 header (0, 0, 1) followed by
        entries (import-table RVA, target RVA, bit width) in read-only data."""
        syms = self._coff_symbols()
        start = syms.get("__RUNTIME_PSEUDO_RELOC_LIST__")
        end = syms.get("__RUNTIME_PSEUDO_RELOC_LIST_END__")
        if start is not None and end is not None:
            span = end - start
            count = 0 if span <= 0 else max(0, (span - 12) // 12)
            return PseudoRelocs(count, "_pei386_runtime_relocator" in syms)
        targets = self._scan_pseudo_relocs()
        # without symbols, only the MinGW CRT's entry point runs the relocator (Julia's stub does not)
        return PseudoRelocs(len(targets), self.entry_symbol in ("DllMainCRTStartup", "DllMainCRTStartup@12"),
                            tuple(targets))

    def _scan_pseudo_relocs(self) -> list[int]:
        header = struct.pack("<III", 0, 0, 1)
        best: list[int] = []
        for sec in self.sections:
            if sec.executable or sec.writable or sec.size > (1 << 28):
                continue
            raw = self.read_bytes(sec.vaddr, sec.size)
            pos = raw.find(header)
            while pos >= 0:
                if pos % 4:
                    pos = raw.find(header, pos + 1)
                    continue
                found: list[int] = []
                p = pos + 12
                while p + 12 <= len(raw):
                    sym, target, flags = struct.unpack_from("<III", raw, p)
                    tsec = self.section_at(target)
                    if flags & 0xFF not in (8, 16, 32, 64) or self.section_at(sym) is None or tsec is None:
                        break
                    found.append(target)
                    p += 12
                if len(found) > len(best):
                    best = found
                pos = raw.find(header, pos + 4)
        return best


def lief_dir(name: str) -> Any:
    return getattr(_lief().PE.DataDirectory.TYPES, name)


# =================================================================================================
# opening
# =================================================================================================

def _fat_slice(path: Path, data: bytes | mmap.mmap, want_arch: str | None) -> tuple[int, int]:
    """(offset, size) of the slice of a universal binary to read."""
    magic = bytes(data[:4])
    fmt = ">" if magic == b"\xca\xfe\xba\xbe" else "<"
    n = struct.unpack(fmt + "I", data[4:8])[0]
    if n == 0 or n > 64 or 8 + 20 * n > len(data):
        raise InputError(path, f"universal binary claims {n} architectures", offset=4)
    slices = []
    for i in range(n):
        cpu, _sub, off, size, _align = struct.unpack(fmt + "iiIII", data[8 + 20 * i:28 + 20 * i])
        if off + size > len(data):
            raise InputError(path, f"universal slice {i} ({size} bytes at {off:#x}) runs past the end of the file",
                             offset=8 + 20 * i)
        slices.append((_MACHO_CPU.get(cpu & 0xFFFFFFFF, "?"), off, size))
    for arch, off, size in slices:
        if want_arch is None or arch == want_arch:
            return off, size
    return slices[0][1], slices[0][2]


def open_binary(path: str | Path, *, arch: str | None = None) -> BinaryView:
    """Parse the image at ``path``. Raises InputError for anything that is not a readable ELF, Mach-O
    or PE file (archives and objects are named as such, with a hint)."""
    p = Path(path)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed below; the map outlives it
    except OSError as err:
        raise InputError(p, f"cannot open: {err.strerror or err}") from None
    with fh:
        size = fh.seek(0, 2)
        if size < 64:
            raise InputError(p, f"only {size} bytes: too short to be a shared library",
                             hint="the file is truncated or not a linked image")
        if size > _MAX_FILE:
            raise InputError(p, f"{size} bytes is too large for a package image")
        data: mmap.mmap | bytes = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    kind = _sniff(bytes(data[:8]))
    base = 0
    if kind == "fat":
        base, slice_size = _fat_slice(p, data, arch)
        kind = _sniff(bytes(data[base:base + 8]))
        if kind != "macho":
            raise InputError(p, "universal binary slice is not a Mach-O file", offset=base)
    if kind == "archive":
        raise InputError(p, "is an ar archive (the link input), not a linked image",
                         hint="verify the linked .so/.dylib/.dll; pass the archive with --object")
    if kind == "coff-object":
        raise InputError(p, "is a COFF object file, not a linked DLL", hint="link it first")
    if kind is None:
        raise InputError(p, "is not an ELF, Mach-O or PE file (unknown magic "
                            f"{bytes(data[:4]).hex()})", offset=0)
    lief = _lief()
    blob = data if base == 0 else data[base:base + slice_size]
    try:
        if kind == "elf":
            cfg = lief.ELF.ParserConfig()
            cfg.parse_relocations = False
            cfg.parse_symtab_symbols = False
            cfg.parse_dyn_symbols = False
            cfg.parse_symbol_versions = False
            cfg.parse_notes = False
            cfg.parse_overlay = False
            binary = lief.ELF.parse(str(p), cfg)
        elif kind == "macho":
            cfg = lief.MachO.ParserConfig()
            cfg.parse_dyld_exports = False
            cfg.parse_dyld_rebases = False
            cfg.parse_dyld_bindings = True
            if base:
                fat = lief.MachO.parse(list(bytes(blob)), cfg)
            else:
                fat = lief.MachO.parse(str(p), cfg)
            binary = None if fat is None or fat.size == 0 else fat.at(0)
            if binary is not None:
                binary = _KeepAlive(binary, fat)
        else:
            cfg = lief.PE.ParserConfig()
            cfg.parse_rsrc = False
            cfg.parse_signature = False
            cfg.parse_exceptions = False
            binary = lief.PE.parse(str(p), cfg)
    except (RuntimeError, ValueError, TypeError, MemoryError, OSError) as err:  # LIEF's errors on bad input
        raise InputError(p, f"LIEF could not parse it: {err}") from None
    if binary is None:
        what = {"elf": "ELF", "macho": "Mach-O", "pe": "PE"}[kind]
        raise InputError(p, f"looks like {what} but LIEF could not parse it (truncated or corrupt)")
    fmt: Format = {"elf": "elf", "macho": "macho", "pe": "coff"}[kind]  # type: ignore[assignment]
    cls = {"elf": _ElfView, "macho": _MachOView, "coff": _PeView}[fmt]
    view = cls(p, data, binary, fmt, base)
    try:
        with warnings.catch_warnings():  # LIEF warns about unknown enum values in corrupt headers
            warnings.simplefilter("ignore", RuntimeWarning)
            view.setup()  # type: ignore[attr-defined]
        view.check_extents()
    except InputError:
        view.close()
        raise
    except (ValueError, TypeError, AttributeError, IndexError, struct.error, OverflowError) as err:
        view.close()
        raise InputError(p, f"malformed {fmt} image: {err}") from None
    return view


class _KeepAlive:
    """Holds a FatBinary while its member Binary is in use (LIEF frees members with the parent)."""

    def __init__(self, binary: Any, parent: Any) -> None:
        self._binary = binary
        self._parent = parent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._binary, name)


# =================================================================================================
# objects: defined function names (local ones included: Julia's clones are internal)
# =================================================================================================

def object_functions(data: bytes, source: str) -> tuple[str, frozenset[str]]:
    """(format, plain names of every function the object defines, local ones included). Columns are
    read in bulk for ELF and Mach-O; Julia's clones (``f.N``, ``f.clone_N``) are local symbols."""
    kind = _sniff(bytes(data[:8]))
    lief = _lief()
    try:
        if kind == "elf":
            return "elf", _elf_object_functions(lief, data, source)
        if kind == "macho":
            return "macho", _macho_object_functions(lief, data, source)
        if kind == "coff-object":
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
    code = [bool(int(s.flags) & (_S_ATTR_PURE_INSTRUCTIONS | _S_ATTR_SOME_INSTRUCTIONS)) for s in b.sections]
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
    execs = [bool(int(s.characteristics) & (_IMAGE_SCN_MEM_EXECUTE | 0x20)) for s in b.sections]
    out = set()
    for s in b.symbols:
        idx = s.section_idx
        if 0 < idx <= len(execs) and execs[idx - 1] and not s.is_file_record and s.storage_class in (
                lief.COFF.Symbol.STORAGE_CLASS.EXTERNAL, lief.COFF.Symbol.STORAGE_CLASS.STATIC) \
                and (s.is_function or s.storage_class == lief.COFF.Symbol.STORAGE_CLASS.EXTERNAL
                     or "." in _text(s.name)):
            name = _text(s.name)
            out.add(name[1:] if strip and name.startswith(strip) else name)
    return frozenset(out)
