"""The format-independent part of a parsed image: file map, segment mappings, sections,
bounds-checked reads and pointer reads. The per-format views override the symbol and relocation hooks."""

from __future__ import annotations

import bisect
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pylinkjl.binfmt.lief.records import BuildVersion, CodeSignature, FileKind, Format, PseudoRelocs, Section
from pylinkjl.errors import InputError

if TYPE_CHECKING:
    from typing_extensions import Self


@dataclass(frozen=True)
class SegmentMapping:
    vaddr: int
    vsize: int
    offset: int
    fsize: int
    writable: bool = False  # as the loader maps it (ELF PF_W, Mach-O VM_PROT_WRITE, PE IMAGE_SCN_MEM_WRITE)
    executable: bool = False


class BinaryView:
    """A parsed image. Use as a context manager (or call :meth:`close`) to release the file map."""

    format: Format
    arch: str
    kind: FileKind
    pointer_size: int
    sections: tuple[Section, ...]

    def __init__(self, path: Path, data: mmap.mmap | bytes, binary: Any, fmt: Format, base: int = 0) -> None:
        self.path = path
        self._data = data
        self._bin = binary  # keep the LIEF object alive as long as anything derived from it is used
        self.format = fmt
        self._base = base  # file offset of this slice (fat Mach-O)
        self._mappings: list[SegmentMapping] = []
        self._readonly_after_relocation: list[tuple[int, int]] = []  # ELF PT_GNU_RELRO, Mach-O __DATA_CONST
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

    def _set_mappings(self, maps: list[SegmentMapping]) -> None:
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

    def loader_ranges(self, *, writable: bool = False, executable: bool = False) -> list[tuple[int, int]]:
        """Address ranges the loader maps with the asked protection (ELF PT_LOAD flags, Mach-O segment
        protections, PE section characteristics); writable ranges leave out what is made read-only after
        relocation (PT_GNU_RELRO, __DATA_CONST). Section headers play no part: the loader never reads them."""
        spans = [(m.vaddr, m.vaddr + m.vsize) for m in self._mappings
                 if (not writable or m.writable) and (not executable or m.executable)]
        if writable:
            for lo, hi in self._readonly_after_relocation:
                cut: list[tuple[int, int]] = []
                for a, b in spans:
                    if hi <= a or lo >= b:
                        cut.append((a, b))
                        continue
                    if a < lo:
                        cut.append((a, lo))
                    if hi < b:
                        cut.append((hi, b))
                spans = cut
        return sorted(spans)

    def segment_at(self, vaddr: int) -> SegmentMapping | None:
        i = bisect.bisect_right(self._mapping_starts, vaddr) - 1
        if i >= 0 and vaddr < self._mappings[i].vaddr + self._mappings[i].vsize:
            return self._mappings[i]
        return None

    def bound_symbol(self, vaddr: int) -> str | None:
        """Name of the external symbol the loader binds the pointer slot at ``vaddr`` to (ELF GLOB_DAT /
        absolute relocations, Mach-O binds, PE import address table), plain C name; None if it is not bound."""
        return None

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
