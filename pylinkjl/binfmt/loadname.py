"""The name a shared library is loaded by: the DT_SONAME of an ELF library (little-endian ELF64, what every
Julia runtime for x86_64 and aarch64 Linux is) or the LC_ID_DYLIB install name of a thin Mach-O dylib; and
a copy with another name written over it.

LLD writes that name into the DT_NEEDED / LC_LOAD_DYLIB of what links against the library. A tree whose
file names differ from it (a juliac bundle packed into a wheel keeps ``ICl90UHn_libjulia-internal.so.1.13``
with the soname ``ICl90UHn_libjulia-internal.so.1.13.1``, and ``JXacdAlp_libjulia-internal.1.13.dylib`` with
the install name ``@rpath/JXacdAlp_libjulia-internal.1.13.1.dylib``: docs/julia-linking.md §1.8) gets a
link-time copy named as the file is, so the image names what the tree has.
"""

from __future__ import annotations

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.elfdynamic import DT_SONAME, read_dynamic

_LC_ID_DYLIB = 0xD


def soname_slot(data: Buffer, source: str) -> tuple[str, int, int] | None:
    """``(soname, file offset of its bytes, their length)``, or None (no DT_SONAME, or not a little-endian
    ELF64 shared library). Raises InputError for tables that run outside the file."""
    dynamic = read_dynamic(BoundedBytes(data, source))
    if dynamic is None or DT_SONAME not in dynamic.tags:
        return None
    return dynamic.string(dynamic.tags[DT_SONAME], "DT_SONAME string")


def install_name_slot(data: Buffer, source: str) -> tuple[str, int, int] | None:
    """``(install name, file offset of its bytes, room for a name there)`` of a thin Mach-O dylib, or None
    (not a thin Mach-O file, no LC_ID_DYLIB). Raises InputError for commands that run outside the file."""
    if len(data) < 32 or not mh.is_thin_macho(bytes(data[:4])):
        return None
    view = BoundedBytes(data, source)
    for cmd, at, size in mh.load_commands(view, mh.read_header(view)):
        if cmd == _LC_ID_DYLIB and size >= 12:
            name_at = view.u32(at + 8, "LC_ID_DYLIB name offset")
            if name_at < 12 or name_at >= size:
                raise view.fail(at, f"LC_ID_DYLIB name offset {name_at} lies outside the command")
            raw = bytes(data[at + name_at:at + size]).split(b"\0", 1)[0]
            return raw.decode("utf-8", errors="replace"), at + name_at, size - name_at - 1
    return None


def load_name_slot(data: Buffer, source: str) -> tuple[str, int, int] | None:
    """:func:`soname_slot` of an ELF library, :func:`install_name_slot` of a Mach-O dylib."""
    return soname_slot(data, source) if bytes(data[:4]) == b"\x7fELF" else install_name_slot(data, source)


def with_load_name(data: Buffer, source: str, new: str) -> bytes | None:
    """A copy of ``data`` whose soname / install name reads ``new``, written over the old one; None when
    there is none or ``new`` does not fit where the old one is (the file cannot grow in place)."""
    slot = load_name_slot(data, source)
    encoded = new.encode("utf-8")
    if slot is None or len(encoded) > slot[2]:
        return None
    _, start, _ = slot
    out = bytearray(data)
    # Only the bytes the new name needs: a string table may share the old name's tail with other strings.
    out[start:start + len(encoded) + 1] = encoded + b"\0"
    return bytes(out)
