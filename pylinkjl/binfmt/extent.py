"""Is a linked image complete? The bytes its own headers say it has, against the bytes that are there.

An image cut short (an interrupted copy, a full disk, a linker wrapper that lies) still starts with a
valid header, so the magic alone does not tell. Every format records where its parts lie in the file:

- ELF: the program and section header tables (``e_phoff``, ``e_shoff``), every segment's
  ``p_offset + p_filesz`` and every section's ``sh_offset + sh_size`` (``SHT_NOBITS`` take no bytes).
  LLD writes the section header table last, so any truncation of its output cuts that table.
- Mach-O: every segment's ``fileoff + filesize`` (``__LINKEDIT`` is last and holds the symbol table,
  the export trie and the code signature), plus ``LC_SYMTAB`` and ``LC_CODE_SIGNATURE`` themselves;
  a universal file: every slice, each checked in turn.
- PE: every section's ``PointerToRawData + SizeOfRawData``, the COFF symbol and string tables (LLD's
  MinGW driver writes them after the last section) and the certificate table (a file offset).

Pure Python over the mapped file (only the header pages are read), so ``pylinkjl link`` can check its
staged output without LIEF. :func:`claimed_size` never reads past the buffer: a header table that lies
beyond the end is itself a sign of truncation and is reported as such.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.files import mapped_file
from pylinkjl.errors import InputError

_SHT_NOBITS = 8
_MAX_TABLE = 1 << 16  # entries in a header table: beyond this it is corruption, not data
_LC_SEGMENT, _LC_SEGMENT_64, _LC_SYMTAB, _LC_CODE_SIGNATURE = 0x1, 0x19, 0x2, 0x1D


@dataclass(frozen=True)
class Extent:
    """``needed`` bytes according to the headers, ``what`` needs the last of them."""

    needed: int
    what: str


def _widest(parts: list[Extent]) -> Extent:
    return max(parts, key=lambda e: e.needed) if parts else Extent(0, "the header")


def _table(size: int, offset: int, count: int, entsize: int, what: str, parts: list[Extent]) -> bool:
    """Record a header table; True when it lies inside the file (so its entries can be read)."""
    if count > _MAX_TABLE:
        raise InputError(None, f"{what} claims {count} entries")
    end = offset + count * entsize
    parts.append(Extent(end, what))
    return end <= size


def _elf(view: BoundedBytes) -> Extent:
    data, size = view.data, len(view.data)
    is64, end = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        phoff, shoff = struct.unpack_from(end + "QQ", data, 32)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 54)
        phdr, shdr = struct.Struct(end + "IIQQQQQQ"), struct.Struct(end + "IIQQQQIIQQ")  # Elf64_Phdr, Elf64_Shdr
    else:
        phoff, shoff = struct.unpack_from(end + "II", data, 28)
        phentsize, phnum, shentsize, shnum = struct.unpack_from(end + "HHHH", data, 42)
        phdr, shdr = struct.Struct(end + "IIIIIIII"), struct.Struct(end + "IIIIIIIIII")  # Elf32_Phdr, Elf32_Shdr
    parts: list[Extent] = []
    if phnum and phentsize >= phdr.size and _table(size, phoff, phnum, phentsize, "the program header table", parts):
        o, n = (2, 5) if is64 else (1, 4)
        ends = [(f[o] + f[n], i) for i, f in enumerate(_entries(data, phdr, phoff, phnum, phentsize)) if f[n]]
        if ends:
            last, i = max(ends)
            parts.append(Extent(last, f"segment {i}"))
    if shoff and shnum and shentsize >= shdr.size and _table(size, shoff, shnum, shentsize,
                                                             "the section header table", parts):
        ends = [(f[4] + f[5], i) for i, f in enumerate(_entries(data, shdr, shoff, shnum, shentsize))
                if f[1] != _SHT_NOBITS and f[5]]
        if ends:
            last, i = max(ends)
            parts.append(Extent(last, f"section {i}"))
    return _widest(parts)


def _entries(data: Buffer, entry: struct.Struct, offset: int, count: int, entsize: int) -> Iterator[tuple[int, ...]]:
    """The ``count`` entries of a header table (inside the buffer: the caller checked)."""
    if entsize == entry.size:
        return entry.iter_unpack(data[offset:offset + count * entsize])
    return (entry.unpack_from(data, offset + i * entsize) for i in range(count))


def _macho_thin(view: BoundedBytes, base: int) -> Extent:
    header = mh.read_header(view, base)
    parts = [Extent(header.commands_offset + header.sizeofcmds, "the load commands")]
    if parts[0].needed > len(view.data):
        return parts[0]
    for cmd, at, _size in mh.load_commands(view, header):
        if cmd == _LC_SEGMENT_64:
            fileoff, filesize = struct.unpack_from("<QQ", view.data, at + 40)
            name = bytes(view.data[at + 8:at + 24]).rstrip(b"\0").decode("ascii", "replace")
            if filesize:
                parts.append(Extent(base + fileoff + filesize, f"segment {name}"))
        elif cmd == _LC_SEGMENT:
            fileoff, filesize = struct.unpack_from("<II", view.data, at + 32)
            name = bytes(view.data[at + 8:at + 24]).rstrip(b"\0").decode("ascii", "replace")
            if filesize:
                parts.append(Extent(base + fileoff + filesize, f"segment {name}"))
        elif cmd == _LC_SYMTAB:
            symoff, nsyms, stroff, strsize = struct.unpack_from("<IIII", view.data, at + 8)
            parts.append(Extent(base + symoff + nsyms * (16 if header.is64 else 12), "the symbol table"))
            parts.append(Extent(base + stroff + strsize, "the string table"))
        elif cmd == _LC_CODE_SIGNATURE:
            dataoff, datasize = struct.unpack_from("<II", view.data, at + 8)
            parts.append(Extent(base + dataoff + datasize, "the code signature"))
    return _widest(parts)


def _macho(view: BoundedBytes) -> Extent:
    head = bytes(view.data[:8])
    if not mh.is_fat(head):
        return _macho_thin(view, 0)
    slices = mh.fat_slices(view)
    parts = [Extent(s.offset + s.size, f"universal slice {i} ({s.arch})") for i, s in enumerate(slices)]
    widest = _widest(parts)
    if widest.needed > len(view.data):
        return widest
    return _widest([widest, *(_macho_thin(view, s.offset) for s in slices)])


def _pe(view: BoundedBytes) -> Extent:
    lfanew = view.u32(0x3C, "e_lfanew")
    nsections = view.u16(lfanew + 6, "NumberOfSections")
    optsize = view.u16(lfanew + 20, "SizeOfOptionalHeader")
    sections = lfanew + 24 + optsize
    parts: list[Extent] = []
    if _table(len(view.data), sections, nsections, 40, "the section table", parts):
        for i in range(nsections):
            name = bytes(view.data[sections + 40 * i:sections + 40 * i + 8]).rstrip(b"\0").decode("ascii", "replace")
            raw_size, raw_ptr = struct.unpack_from("<II", view.data, sections + 40 * i + 16)
            if raw_size:
                parts.append(Extent(raw_ptr + raw_size, f"section {name or i}"))
    symptr, nsyms = view.u32(lfanew + 12, "PointerToSymbolTable"), view.u32(lfanew + 16, "NumberOfSymbols")
    if symptr:  # the COFF symbol table (MinGW links keep one), then the string table, its size first
        strings = symptr + 18 * nsyms
        parts.append(Extent(strings + 4, "the COFF symbol table"))
        if strings + 4 <= len(view.data):
            parts.append(Extent(strings + view.u32(strings, "string table size"), "the COFF string table"))
    magic = view.u16(lfanew + 24, "optional header magic") if optsize >= 2 else 0
    directories = lfanew + 24 + (112 if magic == 0x20B else 96)
    security = directories + 4 * 8  # IMAGE_DIRECTORY_ENTRY_SECURITY: a file offset, not an RVA
    if optsize and security + 8 <= lfanew + 24 + optsize:
        offset, size = struct.unpack_from("<II", view.data, security)
        if offset and size:
            parts.append(Extent(offset + size, "the certificate table"))
    return _widest(parts)


def claimed_size(data: Buffer, source: str, fmt: str) -> Extent:
    """The bytes the headers of an ``fmt`` ("elf", "macho", "coff") image say the file has, and which
    part needs the last of them. Raises InputError for headers too malformed to read."""
    view = BoundedBytes(data, source)
    try:
        if fmt == "elf":
            view.need(0, 64 if len(data) > 4 and data[4] == 2 else 52, "the ELF header")
            return _elf(view)
        if fmt == "macho":
            return _macho(view)
        if fmt == "coff":
            return _pe(view)
    except InputError as err:
        if err.path is None:
            raise InputError(source, err.problem) from None
        raise
    except struct.error as err:  # a field read at the end of a too-short table
        raise InputError(source, f"malformed {fmt} headers: {err}") from None
    raise ValueError(f"unknown image format {fmt!r}")


def truncation(data: Buffer, source: str, fmt: str) -> str | None:
    """Why the image is incomplete (its headers need more bytes than it has), or None when complete."""
    extent = claimed_size(data, source, fmt)
    if extent.needed > len(data):
        return (f"is truncated: {extent.what} needs bytes up to {extent.needed:#x}, but the file has "
                f"{len(data):#x} ({len(data)} of {extent.needed} bytes)")
    return None


# The other direction: a file far larger than its headers describe (a sparse or padded copy, data appended by
# mistake). LIEF reads a whole file into memory before parsing it, so such a file is refused before LIEF (and
# before a .ji's CRC) sees it. A tail up to this size is tolerated and left to the checks; every real image
# and cache in shared/fixtures/real ends exactly where its headers say.
MAX_TRAILING_BYTES = 64 << 20


def check_tail(path: str | os.PathLike[str], size: int, described: int,
               what: str = "its headers describe") -> None:
    """Refuse a file of ``size`` bytes whose structure accounts for only ``described`` of them, when the
    unexplained tail is larger than :data:`MAX_TRAILING_BYTES` and than the described part."""
    tail = size - described
    if tail > MAX_TRAILING_BYTES and tail > described:
        raise InputError(os.fspath(path), f"is {size} bytes, but {what} only {described}: {tail} bytes after its end",
                         offset=described, hint="a truncated file padded out, a sparse copy, or data appended "
                                                "by mistake")


def check_tail_of_image(path: str | os.PathLike[str], data: Buffer, fmt: str) -> None:
    """:func:`check_tail` for an ``fmt`` image; headers too malformed to read are left to the full parser."""
    try:
        extent = claimed_size(data, str(path), fmt)
    except (InputError, struct.error, OverflowError, ValueError):
        return
    check_tail(path, len(data), extent.needed)


_FORMAT_NAMES = {"elf": "ELF", "macho": "Mach-O", "coff": "PE/COFF"}


def image_problem(path: str | os.PathLike[str], fmt: str, arch: str | None = None) -> str | None:
    """Why the file at ``path`` is not a complete shared library (package image) of format ``fmt``
    ("elf", "macho", "coff") and architecture ``arch`` (None: any), or None when it is one. Reads the
    headers only. Raises InputError when the file cannot be read."""
    from pylinkjl.binfmt.sniff import sniff_bytes

    with mapped_file(path, "the image") as data:
        kind = sniff_bytes(data)
        want = f"{_FORMAT_NAMES[fmt]} shared library" + (f" for {arch}" if arch else "")
        if kind.format != fmt or kind.kind != "shared" or (arch is not None and kind.arch != arch):
            return f"is not {_article(want)}: it is {_article(kind.description)}"
        return truncation(data, str(path), fmt)


def _article(description: str) -> str:
    return ("an " if description[:1] in tuple("AEIOUaeiou") else "a ") + description
