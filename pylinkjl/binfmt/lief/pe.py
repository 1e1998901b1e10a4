"""PE images (DLLs): sections, export directory, COFF symbols, base relocations, MinGW pseudo-relocations."""

from __future__ import annotations

import struct
from typing import Any

from pylinkjl.binfmt.lief.base import BinaryView, SegmentMapping
from pylinkjl.binfmt.lief.lieflib import as_text, load_lief
from pylinkjl.binfmt.lief.records import PseudoRelocs, Section
from pylinkjl.binfmt.sniff import COFF_MACHINES
from pylinkjl.errors import InputError

IMAGE_SCN_MEM_EXECUTE, _IMAGE_SCN_MEM_WRITE, _IMAGE_FILE_DLL = 0x20000000, 0x80000000, 0x2000
# Julia's _DllMainCRTStartup stub: return 1 (x86_64 / i686 stdcall / aarch64)
_STUB_CODE = (bytes.fromhex("b801000000c3"), bytes.fromhex("b801000000c20c00"), bytes.fromhex("20008052c0035fd6"))


class PeView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        machine = int(b.header.machine.value) if hasattr(b.header.machine, "value") else int(b.header.machine)
        self.arch = COFF_MACHINES.get(machine, f"pe-machine-{machine:#x}")
        self.pointer_size = 8 if str(b.optional_header.magic).endswith("PLUS") else 4
        chars = int(b.header.characteristics)
        self.kind = "shared" if chars & _IMAGE_FILE_DLL else "executable"
        self.image_base = int(b.optional_header.imagebase)
        maps, secs = [], []
        self._pe_sections: list[tuple[str, int]] = []
        for s in b.sections:
            c = int(s.characteristics)
            vsize = s.virtual_size or s.sizeof_raw_data
            maps.append(SegmentMapping(s.virtual_address, vsize, s.pointerto_raw_data, min(s.sizeof_raw_data, vsize),
                                       bool(c & _IMAGE_SCN_MEM_WRITE), bool(c & IMAGE_SCN_MEM_EXECUTE)))
            self._pe_sections.append((as_text(s.name), s.virtual_address))
            if vsize:
                secs.append(Section(as_text(s.name), s.virtual_address, vsize, bool(c & IMAGE_SCN_MEM_EXECUTE),
                                    bool(c & _IMAGE_SCN_MEM_WRITE)))
        self._set_mappings(maps)
        self._set_sections(secs)
        self.needed_libraries = tuple(as_text(imp.name) for imp in b.imports)
        self.entry_point = int(b.optional_header.addressof_entrypoint) or None
        self.has_textrel = False

    def _regions(self) -> list[tuple[int, int, str]]:
        b = self._bin
        out = [(0, int(b.dos_header.addressof_new_exeheader), "DOS header"),
               (int(b.dos_header.addressof_new_exeheader), int(b.optional_header.sizeof_headers)
                - int(b.dos_header.addressof_new_exeheader), "PE headers")]
        for sec in b.sections:
            out.append((sec.pointerto_raw_data, sec.sizeof_raw_data, as_text(sec.name)))
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
                        out[as_text(e.name)] = int(e.address)
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
                name = as_text(s.name)
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

    def _iat(self) -> dict[int, tuple[str, str]]:
        """Import address table slot RVA -> (DLL, imported name)."""
        if "iat" not in self._cache:
            out: dict[int, tuple[str, str]] = {}
            for imp in self._bin.imports:
                for e in imp.entries:
                    if e.name:
                        out[int(e.iat_address)] = (as_text(imp.name), as_text(e.name))
            self._cache["iat"] = out
        return self._cache["iat"]

    def bound_symbol(self, vaddr: int) -> str | None:
        hit = self._iat().get(vaddr)
        return None if hit is None else hit[1]

    def bound_library(self, vaddr: int) -> str | None:
        """The DLL an import address table slot is bound into."""
        hit = self._iat().get(vaddr)
        return None if hit is None else hit[0]

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
    return getattr(load_lief().PE.DataDirectory.TYPES, name)
