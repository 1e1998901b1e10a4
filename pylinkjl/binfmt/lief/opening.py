"""Opening an image: sniff it, pick the universal-binary slice, parse with LIEF, wrap in a view."""

from __future__ import annotations

import mmap
import struct
import warnings
from pathlib import Path
from typing import Any

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.bounded import BoundedBytes
from pylinkjl.binfmt.extent import check_tail_of_image
from pylinkjl.binfmt.files import open_regular
from pylinkjl.binfmt.lief.base import BinaryView
from pylinkjl.binfmt.lief.elf import ElfView
from pylinkjl.binfmt.lief.lieflib import load_lief
from pylinkjl.binfmt.lief.macho import MachOView
from pylinkjl.binfmt.lief.pe import PeView
from pylinkjl.binfmt.lief.records import Format
from pylinkjl.binfmt.sniff import sniff_bytes
from pylinkjl.errors import InputError

_SNIFF_BYTES = 4096  # the headers the sniffer needs (a PE header sits behind the DOS stub)


def _fat_slice(path: Path, data: bytes | mmap.mmap, want_arch: str | None) -> tuple[int, int]:
    """(offset, size) of the slice of a universal binary to read: the one for ``want_arch``, else the first."""
    slices = mh.fat_slices(BoundedBytes(data, str(path)))
    for i, sl in enumerate(slices):
        if sl.offset + sl.size > len(data):
            raise InputError(path, f"universal slice {i} ({sl.size} bytes at {sl.offset:#x}) runs past the end of "
                                   "the file", offset=8 + 20 * i)
    chosen = next((sl for sl in slices if want_arch is None or sl.arch == want_arch), slices[0])
    return chosen.offset, chosen.size


_PARSER_OF_FORMAT = {"elf": "elf", "macho": "macho", "coff": "pe"}


def _parser_for(path: Path, head: bytes) -> str:
    """Which LIEF parser reads this image (the one sniffer, :mod:`pylinkjl.binfmt.sniff`, decides)."""
    found = sniff_bytes(head)
    if found.format == "ar":
        raise InputError(path, "is an ar archive (the link input), not a linked image",
                         hint="verify the linked .so/.dylib/.dll; pass the archive with --object")
    if found.format == "coff" and found.kind == "object":
        raise InputError(path, "is a COFF object file, not a linked DLL", hint="link it first")
    if found.format not in _PARSER_OF_FORMAT:
        raise InputError(path, f"is not an ELF, Mach-O or PE file ({found.description}; magic {head[:4].hex()})",
                         offset=0)
    return _PARSER_OF_FORMAT[found.format]


def open_binary(path: str | Path, *, arch: str | None = None) -> BinaryView:
    """Parse the image at ``path``. Raises InputError for anything that is not a readable ELF, Mach-O
    or PE file (archives and objects are named as such, with a hint)."""
    p = Path(path)
    with open_regular(p, "an image") as fh:  # regular files only, at most files.MAX_FILE_BYTES
        size = fh.seek(0, 2)
        if size < 64:
            raise InputError(p, f"only {size} bytes: too short to be a shared library",
                             hint="the file is truncated or not a linked image")
        try:
            data: mmap.mmap | bytes = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as err:
            raise InputError(p, f"cannot map the image: {err}") from None
    base = 0
    if mh.is_fat(bytes(data[:8])):
        base, slice_size = _fat_slice(p, data, arch)
        if not mh.is_thin_macho(bytes(data[base:base + 4])):
            raise InputError(p, "universal binary slice is not a Mach-O file", offset=base)
    kind = _parser_for(p, bytes(data[base:base + _SNIFF_BYTES]))
    check_tail_of_image(p, data, {"pe": "coff"}.get(kind, kind))  # before LIEF, which reads the whole file
    lief = load_lief()
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
    cls = {"elf": ElfView, "macho": MachOView, "coff": PeView}[fmt]
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
