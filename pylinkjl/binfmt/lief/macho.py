"""Mach-O images: segments, load commands, nlist symbols, export trie, classic binds and chained fixups."""

from __future__ import annotations

import struct

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.lief.base import BinaryView, SegmentMapping
from pylinkjl.binfmt.lief.codesign import parse_code_signature
from pylinkjl.binfmt.lief.exporttrie import uleb, walk_trie
from pylinkjl.binfmt.lief.lieflib import as_text
from pylinkjl.binfmt.lief.records import BuildVersion, CodeSignature, Section

_SG_READ_ONLY = 0x10
S_ATTR_PURE_INSTRUCTIONS, S_ATTR_SOME_INSTRUCTIONS = 0x80000000, 0x400
_PLATFORMS = {1: "macos", 2: "ios", 3: "tvos", 4: "watchos", 5: "bridgeos", 6: "maccatalyst", 7: "iossimulator",
              8: "tvossimulator", 9: "watchossimulator", 10: "driverkit", 11: "visionos", 12: "visionossimulator"}


class MachOView(BinaryView):
    def setup(self) -> None:
        b = self._bin
        magic = self.file_bytes(0, 4)
        if magic not in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
            raise self.fail("big-endian Mach-O is not a pkgimage format pylinkjl supports")
        self.is64 = magic == b"\xcf\xfa\xed\xfe"
        self.pointer_size = 8 if self.is64 else 4
        cputype, _sub, filetype = struct.unpack("<iiI", self.file_bytes(4, 12))
        self.arch = mh.arch_name(cputype)
        self.kind = {6: "shared", 8: "shared", 2: "executable", 1: "object"}.get(filetype, "other")  # type: ignore[assignment]
        maps, secs = [], []
        self._segments: dict[str, tuple[int, int]] = {}
        readonly: list[tuple[int, int]] = []
        for seg in b.segments:
            prot = int(seg.init_protection)
            maps.append(SegmentMapping(seg.virtual_address, seg.virtual_size, seg.file_offset, seg.file_size,
                                       bool(prot & 2), bool(prot & 4)))
            self._segments[as_text(seg.name)] = (seg.virtual_address, seg.virtual_size)
            ro = bool(int(seg.flags) & _SG_READ_ONLY) or as_text(seg.name) in ("__DATA_CONST", "__AUTH_CONST", "__TEXT")
            if ro:
                readonly.append((seg.virtual_address, seg.virtual_address + seg.virtual_size))
            for s in seg.sections:
                if not s.size:
                    continue
                sflags = int(s.flags)
                code = bool(sflags & (S_ATTR_PURE_INSTRUCTIONS | S_ATTR_SOME_INSTRUCTIONS))
                exe = code and (bool(prot & 4) or self.kind == "object")
                secs.append(Section(as_text(s.name), s.virtual_address, s.size, exe,
                                    bool(prot & 2) and not ro if self.kind != "object" else as_text(s.name) != "__text",
                                    as_text(seg.name)))
        self._set_mappings(maps)
        self._readonly_after_relocation = readonly
        self._set_sections(secs)
        self.image_base = self._segments.get("__TEXT", (0, 0))[0]
        needed: list[str] = []
        for cmd in b.commands:
            t = str(cmd.command).rsplit(".", 1)[-1]
            if t in ("LOAD_DYLIB", "LOAD_WEAK_DYLIB", "REEXPORT_DYLIB", "LAZY_LOAD_DYLIB", "LOAD_UPWARD_DYLIB"):
                needed.append(as_text(cmd.name))
            elif t == "ID_DYLIB":
                self.install_name = as_text(cmd.name)
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
            out.append((seg.file_offset, seg.file_size, as_text(seg.name)))
            for sec in seg.sections:
                if sec.offset:
                    out.append((sec.offset, sec.size, f"{as_text(seg.name)},{as_text(sec.name)}"))
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
                term, p = uleb(trie, pos)
                if matched == len(want):
                    if term == 0:
                        return None
                    flags, p = uleb(trie, p)
                    if flags & 0x8:  # re-export: not defined here
                        return None
                    addr, _ = uleb(trie, p)
                    return self.image_base + addr if flags & 0x3 != 2 else addr  # 2 = absolute
                p += term
                if p >= len(trie):
                    return None
                nchild = trie[p]
                p += 1
                for _c in range(nchild):
                    end = trie.index(b"\0", p)
                    edge = trie[p:end]
                    child, p = uleb(trie, end + 1)
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
                for name, flags in walk_trie(trie):
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
                    out[int(bi.address)] = as_text(bi.symbol.name) if bi.has_symbol else "?"
            self._cache["binds"] = out
        return self._cache["binds"]

    def _chained_binds(self) -> dict[int, str]:
        if "cbinds" not in self._cache:
            out: dict[int, str] = {}
            b = self._bin
            if self._chained:
                for bi in b.dyld_chained_fixups.bindings:
                    out[int(bi.address)] = as_text(bi.symbol.name) if bi.has_symbol else "?"
            self._cache["cbinds"] = out
        return self._cache["cbinds"]

    def bound_symbol(self, vaddr: int) -> str | None:
        name = (self._chained_binds() if self._chained else self._binds()).get(vaddr)
        if name is None or name == "?":
            return None
        return name.removeprefix("_")

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
            out = parse_code_signature(self, cs.data_offset, cs.data_size)
        self._cache["codesig"] = out
        return out
