"""ELF symbol versions: the version definitions a library gives (DT_VERDEF) and the version needs an image has
(DT_VERNEED), and a copy of an image whose need of one version is renamed in place.

glibc checks every need when it loads an image: the library the need names must define that version (name
and ``elf_hash``), or ``dlopen`` fails with "version `X' not found". Julia's libraries define one node from
1.10 on, ``JL_LIBJULIA_1.10`` (1.9: none); JuliaC's privatisation renames it to ``JL_<salt>_1.13`` in the
runtime and in its own product, a same-length byte patch (docs/julia-linking.md §1.8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.elfdynamic import (
    DT_VERDEF,
    DT_VERDEFNUM,
    DT_VERNEED,
    DT_VERNEEDNUM,
    ElfDynamic,
    read_dynamic,
)

_VERDEF = struct.Struct("<HHHHIII")  # vd_version vd_flags vd_ndx vd_cnt vd_hash vd_aux vd_next
_VERDAUX = struct.Struct("<II")  # vda_name vda_next
_VERNEED = struct.Struct("<HHIII")  # vn_version vn_cnt vn_file vn_aux vn_next
_VERNAUX = struct.Struct("<IHHII")  # vna_hash vna_flags vna_other vna_name vna_next
_MAX_ENTRIES = 1 << 16  # a walk longer than this is a loop in a malformed file


@dataclass(frozen=True)
class SymbolVersions:
    defined: tuple[str, ...]  # DT_VERDEF names in table order; the first (BASE) is the soname it was linked with
    needed: tuple[tuple[str, tuple[str, ...]], ...]  # DT_VERNEED: (library file name, version names)

    def needed_from(self, library: str) -> tuple[str, ...]:
        return next((names for file, names in self.needed if file == library), ())


def elf_hash(name: str) -> int:
    """The System V ELF hash, which version tables store beside each version name (glibc compares both)."""
    h = 0
    for byte in name.encode("utf-8"):
        h = ((h << 4) + byte) & 0xFFFFFFFF
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
        h &= ~g & 0xFFFFFFFF
    return h


def _chain(view: BoundedBytes, start: int, count: int, entry: struct.Struct, next_field: int, what: str
           ) -> list[tuple[int, tuple[int, ...]]]:
    """``(offset, fields)`` of the ``count`` entries of a linked table (each ``next`` relative to its entry)."""
    out = []
    at = start
    for _ in range(min(count, _MAX_ENTRIES)):
        fields = view.unpack(entry, at, what)
        out.append((at, fields))
        if fields[next_field] == 0:
            break
        at += fields[next_field]
    return out


def _needs(dynamic: ElfDynamic) -> list[tuple[str, list[tuple[int, str, int]]]]:
    """(file, [(offset of the vernaux entry, version name, offset of the name's bytes)])."""
    if DT_VERNEED not in dynamic.tags:
        return []
    view = dynamic.view
    start = dynamic.offset(dynamic.tags[DT_VERNEED], "DT_VERNEED")
    out = []
    for at, (_, cnt, file, aux, _) in _chain(view, start, dynamic.tags.get(DT_VERNEEDNUM, 1), _VERNEED, 4,
                                             "version need"):
        names = []
        for aux_at, (_, _, _, name, _) in _chain(view, at + aux, cnt, _VERNAUX, 4, "version need entry"):
            text, name_at, _ = dynamic.string(name, "version name")
            names.append((aux_at, text, name_at))
        out.append((dynamic.string(file, "version need file name")[0], names))
    return out


def read_symbol_versions(data: Buffer, source: str) -> SymbolVersions | None:
    """The version tables of an ELF file, or None (not a little-endian ELF64 file with a dynamic table).
    Raises InputError for tables that run outside the file."""
    view = BoundedBytes(data, source)
    dynamic = read_dynamic(view)
    if dynamic is None:
        return None
    defined: list[str] = []
    if DT_VERDEF in dynamic.tags:
        start = dynamic.offset(dynamic.tags[DT_VERDEF], "DT_VERDEF")
        for at, fields in _chain(view, start, dynamic.tags.get(DT_VERDEFNUM, 1), _VERDEF, 6, "version definition"):
            if fields[3]:  # vd_cnt: the first verdaux names the version
                defined.append(dynamic.string(view.unpack(_VERDAUX, at + fields[5], "version definition name")[0],
                                              "version name")[0])
    needed = tuple((file, tuple(name for _, name, _ in names)) for file, names in _needs(dynamic))
    return SymbolVersions(tuple(defined), needed)


def with_needed_version(data: Buffer, source: str, old: str, new: str) -> bytes | None:
    """A copy of ``data`` in which every need of version ``old`` reads ``new`` (name and hash), written over
    the old name; None when nothing needs ``old`` or ``new`` is not the same length (the string table cannot
    grow in place)."""
    if len(new.encode("utf-8")) != len(old.encode("utf-8")):
        return None
    dynamic = read_dynamic(BoundedBytes(data, source))
    if dynamic is None:
        return None
    hits = [(aux_at, name_at) for _, names in _needs(dynamic) for aux_at, name, name_at in names if name == old]
    if not hits:
        return None
    out = bytearray(data)
    encoded = new.encode("utf-8")
    for aux_at, name_at in hits:
        struct.pack_into("<I", out, aux_at, elf_hash(new))
        out[name_at:name_at + len(encoded)] = encoded
    return bytes(out)
