"""ELF images: dynamic section, symbol tables read as columns, dynamic relocations (RELA/REL/RELR)."""

from __future__ import annotations

import array
import bisect
import struct
from collections.abc import Iterator

from pylinkjl.binfmt.lief.base import BinaryView, SegmentMapping
from pylinkjl.binfmt.lief.lieflib import as_text, load_lief
from pylinkjl.binfmt.lief.records import Section
from pylinkjl.binfmt.sniff import ELF_MACHINES

_SHF_WRITE, _SHF_ALLOC, _SHF_EXECINSTR = 1, 2, 4
_PF_X, _PF_W = 1, 2
_DT = {"NEEDED": 1, "STRTAB": 5, "SYMTAB": 6, "RELA": 7, "RELASZ": 8, "RELAENT": 9, "STRSZ": 10, "REL": 17,
       "RELSZ": 18, "RELENT": 19, "TEXTREL": 22, "FLAGS": 30, "RELRSZ": 35, "RELR": 36, "RELACOUNT": 0x6FFFFFF9,
       "RELCOUNT": 0x6FFFFFFA, "SONAME": 14}
_DF_TEXTREL = 0x4
# (RELATIVE, absolute word, GLOB_DAT) relocation types per e_machine
_ELF_RELOC_TYPES = {62: (8, 1, 6), 183: (1027, 257, 1025), 3: (8, 1, 6), 40: (23, 2, 21), 243: (3, 2, 0)}


class ElfView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        lief = load_lief()
        hdr = b.header
        self.is64 = hdr.identity_class == lief.ELF.Header.CLASS.ELF64
        if hdr.identity_data != lief.ELF.Header.ELF_DATA.LSB:
            raise self.fail("big-endian ELF is not a pkgimage format pylinkjl supports")
        self.pointer_size = 8 if self.is64 else 4
        self.machine = int(self._u16_at(18))
        self.arch = ELF_MACHINES.get(self.machine, f"elf-machine-{self.machine}")
        has_interp = bool(b.has_interpreter)
        ftype = str(hdr.file_type).rsplit(".", 1)[-1]
        self.kind = {"DYN": "executable" if has_interp else "shared", "EXEC": "executable",
                     "REL": "object"}.get(ftype, "other")
        maps, relro = [], []
        for seg in b.segments:
            t = str(seg.type).rsplit(".", 1)[-1]
            if t == "LOAD":
                pf = int(seg.flags)
                maps.append(SegmentMapping(seg.virtual_address, seg.virtual_size, seg.file_offset, seg.physical_size,
                                           bool(pf & _PF_W), bool(pf & _PF_X)))
            elif t == "GNU_RELRO":
                relro.append((seg.virtual_address, seg.virtual_address + seg.virtual_size))
        self._set_mappings(maps)
        self._readonly_after_relocation = relro
        secs: list[Section] = []
        self._raw_sections: list[tuple[str, int, int, int, int, int, int]] = []
        for s in b.sections:
            flags = int(s.flags)
            stype = int(s.type.value) if hasattr(s.type, "value") else int(s.type)
            self._raw_sections.append((as_text(s.name), stype, flags, s.link, s.file_offset, s.size, s.entry_size))
            if flags & _SHF_ALLOC and s.size:
                in_relro = any(lo <= s.virtual_address and s.virtual_address + s.size <= hi for lo, hi in relro)
                secs.append(Section(as_text(s.name), s.virtual_address, s.size, bool(flags & _SHF_EXECINSTR),
                                    bool(flags & _SHF_WRITE) and not in_relro))
        self._set_sections(secs)
        self._dyn: list[tuple[int, int]] = []
        needed: list[str] = []
        for e in b.dynamic_entries:
            tag = int(e.tag.value) if hasattr(e.tag, "value") else int(e.tag)
            self._dyn.append((tag, int(e.value)))
            if tag == _DT["NEEDED"]:
                needed.append(as_text(e.name))
            elif tag == _DT["SONAME"]:
                self.install_name = as_text(e.name)
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
        self._reloc_syms: dict[int, int] = {}  # slot -> .dynsym index of GLOB_DAT / absolute relocations
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
                self._reloc_syms[a] = si
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

    def bound_symbol(self, vaddr: int) -> str | None:
        rel = self._relocations()
        si = self._reloc_syms.get(vaddr)
        tab = self._symtab("dynsym")
        if si is None or tab is None or not 0 < si < len(tab[0]) or rel.get(vaddr, 0) is not None:
            return None
        return self._name_at(tab[4], tab[0][si])

    def relocation_problem(self, vaddr: int) -> str | None:
        rel = self._relocations()
        i = bisect.bisect_left(self._fast_offs, vaddr)
        if (i < len(self._fast_offs) and self._fast_offs[i] == vaddr) or vaddr in self._cache.get("fastdict", {}):
            return None
        if vaddr in rel:
            if rel[vaddr] is None:
                name = self.bound_symbol(vaddr)
                what = f"the undefined symbol {name}" if name else f"an undefined symbol (relocation type {self._reloc_types.get(vaddr)})"
                return f"the slot at {vaddr:#x} is bound to {what}"
            return None
        if self._inplace(vaddr):
            return f"the slot at {vaddr:#x} holds an address but has no dynamic relocation (it would not move with the image)"
        return None


_MISSING = object()
