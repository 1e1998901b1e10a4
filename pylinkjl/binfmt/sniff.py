"""What is this file? ELF / Mach-O / COFF / ar, which kind, which architecture — from its first bytes.

Used by ``pylinkjl link`` to check its inputs before LLD silently produces an empty image (an archive
of the wrong architecture links with only a warning on Mach-O). Never raises for odd content: an
unrecognised or truncated header is ``FileKind("unknown", "other", None, ...)``; only an unreadable
file raises InputError.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from pylinkjl.binfmt import machoheaders as mh
from pylinkjl.binfmt.ar import THIN_MAGIC, is_archive, iter_members
from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.errors import InputError

ELF_MACHINES = {
    62: "x86_64", 183: "aarch64", 3: "i686", 40: "arm", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x",
    243: "riscv", 2: "sparc", 43: "sparcv9", 258: "loongarch",
}
COFF_MACHINES = {
    0x8664: "x86_64", 0x14C: "i686", 0xAA64: "aarch64", 0x1C4: "armnt", 0xA641: "arm64ec",
    0xA64E: "arm64x", 0x200: "ia64",
}
# ANON_OBJECT_HEADER_BIGOBJ.ClassID, as stored
BIGOBJ_CLASS_ID = bytes.fromhex("c7a1bad1eebaa94baf20faf66aa4dcb8")
COFF_MAX_SECTIONS = 65279  # beyond this LLVM writes bigobj
IMAGE_FILE_DLL = 0x2000

_MACHO_KINDS = {
    mh.MH_OBJECT: ("object", "object"), mh.MH_EXECUTE: ("executable", "executable"),
    mh.MH_DYLIB: ("shared", "dylib"), mh.MH_BUNDLE: ("shared", "bundle"),
    mh.MH_DYLIB_STUB: ("shared", "dylib stub"), mh.MH_DSYM: ("other", "dSYM companion"),
}
_ARCHIVE_MEMBERS_EXAMINED = 64  # enough to see the arch and an import member; bounded work
_MEMBER_HEAD = 4096


@dataclass(frozen=True)
class FileKind:
    """What a file is, told from its first bytes."""

    format: str  # "elf" | "macho" | "coff" | "ar" | "unknown"
    kind: str  # "object" | "shared" | "executable" | "archive" | "import-library" | "other"
    arch: str | None  # "x86_64" | "aarch64" | "i686" | another name | None
    description: str


def _unknown(description: str) -> FileKind:
    return FileKind("unknown", "other", None, description)


def _elf(head: Buffer) -> FileKind:
    if len(head) < 20 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return FileKind("elf", "other", None, "ELF file with a truncated or invalid header")
    is64, little = head[4] == 2, head[5] == 1
    end = "<" if little else ">"
    e_type, e_machine = struct.unpack_from(end + "HH", head, 16)
    arch = ELF_MACHINES.get(e_machine, f"e_machine {e_machine}")
    words = f"ELF {64 if is64 else 32}-bit {'LSB' if little else 'MSB'}"
    if e_type == 1:
        return FileKind("elf", "object", arch, f"{words} relocatable object, {arch}")
    if e_type == 2:
        return FileKind("elf", "executable", arch, f"{words} executable, {arch}")
    if e_type == 3:
        if _elf_is_pie(head, is64, end):
            return FileKind("elf", "executable", arch, f"{words} position-independent executable, {arch}")
        return FileKind("elf", "shared", arch, f"{words} shared object, {arch}")
    return FileKind("elf", "other", arch, f"{words} file of type {e_type}, {arch}")


def _elf_is_pie(head: Buffer, is64: bool, end: str) -> bool:
    """DF_1_PIE in the dynamic section: an ET_DYN executable rather than a library (what
    ``file`` checks; a PT_INTERP alone would also match libc.so.6, which can be run)."""
    try:
        if is64:
            phoff, = struct.unpack_from(end + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(end + "HH", head, 54)
            phdr, dyn = struct.Struct(end + "IIQQQQ"), struct.Struct(end + "qQ")
        else:
            phoff, = struct.unpack_from(end + "I", head, 28)
            phentsize, phnum = struct.unpack_from(end + "HH", head, 42)
            phdr, dyn = struct.Struct(end + "IIIIII"), struct.Struct(end + "iI")
        if phentsize < phdr.size:
            return False
        for i in range(min(phnum, 256)):
            fields = phdr.unpack_from(head, phoff + i * phentsize)
            if fields[0] != 2:  # PT_DYNAMIC
                continue
            offset, filesz = (fields[2], fields[5]) if is64 else (fields[1], fields[4])
            for j in range(min(filesz // dyn.size, 4096)):
                tag, value = dyn.unpack_from(head, offset + j * dyn.size)
                if tag == 0:  # DT_NULL
                    break
                if tag == 0x6FFFFFFB:  # DT_FLAGS_1
                    return bool(value & 0x08000000)  # DF_1_PIE
    except (struct.error, OverflowError):  # headers outside the bytes we have (or past any offset at all)
        return False
    return False


def _macho_thin(head: Buffer) -> FileKind:
    if len(head) < 28:
        return FileKind("macho", "other", None, "Mach-O file with a truncated header")
    magic = struct.unpack_from("<I", head)[0]
    end = ">" if magic in (mh.MH_CIGAM, mh.MH_CIGAM_64) else "<"
    is64 = magic in (mh.MH_MAGIC_64, mh.MH_CIGAM_64)
    cputype, _sub, filetype = struct.unpack_from(end + "iiI", head, 4)
    arch = mh.arch_name(cputype)
    kind, word = _MACHO_KINDS.get(filetype, ("other", f"file of type {filetype}"))
    return FileKind("macho", kind, arch, f"Mach-O {64 if is64 else 32}-bit {word}, {arch}")


def _macho_fat(head: Buffer) -> FileKind:
    view = BoundedBytes(head, "<head>")
    try:
        slices = mh.fat_slices(view)
    except InputError:
        return FileKind("macho", "other", None, "Mach-O universal binary with a truncated header")
    arches = [s.arch for s in slices]
    kind = "other"
    first = slices[0]
    if first.offset + 28 <= len(head):
        kind = _macho_thin(bytes(head[first.offset:first.offset + 32])).kind
    arch = arches[0] if len(set(arches)) == 1 else None
    what = {"shared": "dylib", "object": "object", "executable": "executable"}.get(kind, "binary")
    return FileKind("macho", kind, arch, f"Mach-O universal {what} ({', '.join(arches)})")


def _pe(head: Buffer) -> FileKind:
    if len(head) < 0x40:
        return _unknown("DOS executable (truncated)")
    lfanew = struct.unpack_from("<I", head, 0x3C)[0]
    if lfanew + 26 > len(head) or bytes(head[lfanew:lfanew + 4]) != b"PE\0\0":
        return _unknown("DOS executable without a PE header")
    machine = struct.unpack_from("<H", head, lfanew + 4)[0]
    characteristics = struct.unpack_from("<H", head, lfanew + 22)[0]
    arch = COFF_MACHINES.get(machine, f"machine {machine:#x}")
    opt_magic = struct.unpack_from("<H", head, lfanew + 24)[0] if lfanew + 26 <= len(head) else 0
    flavour = {0x10B: "PE32", 0x20B: "PE32+"}.get(opt_magic, "PE")
    if characteristics & IMAGE_FILE_DLL:
        return FileKind("coff", "shared", arch, f"{flavour} DLL, {arch}")
    return FileKind("coff", "executable", arch, f"{flavour} executable, {arch}")


def short_import_names(head: Buffer) -> tuple[str, str] | None:
    """``(symbol, dll)`` of a COFF short import member (an import library entry), else None."""
    if len(head) < 20 or bytes(head[:4]) != b"\0\0\xff\xff" or struct.unpack_from("<H", head, 4)[0] != 0:
        return None
    names = bytes(head[20:20 + 1024]).split(b"\0")
    if len(names) < 3:
        return None
    return names[0].decode("utf-8", "backslashreplace"), names[1].decode("utf-8", "backslashreplace")


def _coff_anon(head: Buffer) -> FileKind | None:
    """Objects that start with Sig1=0, Sig2=0xFFFF: short import members and bigobj objects."""
    if len(head) < 28:
        return None
    sig1, sig2, version, machine = struct.unpack_from("<HHHH", head)
    if sig1 != 0 or sig2 != 0xFFFF or machine not in COFF_MACHINES:
        return None
    arch = COFF_MACHINES[machine]
    names = short_import_names(head)
    if names is not None:
        return FileKind("coff", "object", arch, f"COFF short import object ({names[0]} from {names[1]}), {arch}")
    if version >= 2 and bytes(head[12:28]) == BIGOBJ_CLASS_ID:
        return FileKind("coff", "object", arch, f"COFF bigobj relocatable object, {arch}")
    return None


def _coff_object(head: Buffer) -> FileKind | None:
    """A plain COFF object has no magic: a known machine and a plausible header are all there is."""
    if len(head) < 20:
        return None
    machine, nsections, _time, _symptr, _nsyms, optsize, _flags = struct.unpack_from("<HHIIIHH", head)
    if machine not in COFF_MACHINES or optsize != 0 or nsections > COFF_MAX_SECTIONS:
        return None
    if nsections and len(head) >= 28:
        name = bytes(head[20:28]).rstrip(b"\0")
        if not name or not all(0x20 < c < 0x7F for c in name):
            return None
    arch = COFF_MACHINES[machine]
    return FileKind("coff", "object", arch, f"COFF relocatable object, {arch}")


def _archive(data: Buffer) -> FileKind:
    """Walk member headers (all of them if ``data`` is the whole file) and peek into the first few."""
    members = 0
    arch: str | None = None
    member_format = ""
    import_dll: str | None = None
    complete = True
    try:
        for member in iter_members(data, "<archive>"):
            members += 1
            if members > _ARCHIVE_MEMBERS_EXAMINED:
                continue
            member_head = bytes(data[member.offset:member.offset + min(member.size, _MEMBER_HEAD)])
            inner = _sniff(member_head)
            if inner.format in ("elf", "macho", "coff"):
                member_format = member_format or inner.format
                arch = arch or inner.arch
                names = short_import_names(member_head)
                if names is not None and import_dll is None:
                    import_dll = names[1]
    except InputError:
        if bytes(data[:8]) == THIN_MAGIC:
            return FileKind("ar", "other", None, "thin ar archive (members stored in other files)")
        complete = False
    count = f"{members}{'' if complete else '+'} member{'' if members == 1 else 's'}"
    if import_dll is not None:
        return FileKind("ar", "import-library", arch, f"import library for {import_dll} ({count}), {arch}")
    what = f" of {member_format.upper() if member_format != 'macho' else 'Mach-O'} {arch} objects" if arch else ""
    return FileKind("ar", "archive", arch, f"ar archive, {count}{what}")


def _sniff(head: Buffer) -> FileKind:
    start = bytes(head[:8])
    if is_archive(start):
        return _archive(head)
    if start.startswith(b"\x7fELF"):
        return _elf(head)
    if mh.is_thin_macho(start):
        return _macho_thin(head)
    if mh.is_fat(start):
        return _macho_fat(head)
    if start.startswith(b"MZ"):
        return _pe(head)
    anon = _coff_anon(head)
    if anon is not None:
        return anon
    coff = _coff_object(head)
    if coff is not None:
        return coff
    if start.startswith((b"BC\xc0\xde", b"\xde\xc0\x17\x0b")):
        return _unknown("LLVM bitcode")
    if start == b"\xfbjli\r\n\x1a\n":
        return _unknown("Julia cache file (.ji)")
    if start.startswith(b"--- !tap"):
        return _unknown("text-based dylib stub (.tbd)")
    return _unknown("unrecognised file" if head else "empty file")


def sniff_bytes(head: Buffer) -> FileKind:
    """Classify a file from its first bytes (4 KiB is plenty; an archive gets a fuller answer
    from :func:`sniff_file`, which can walk all member headers), or from a whole mapped file."""
    return _sniff(head)


def sniff_file(path: str | os.PathLike[str]) -> FileKind:
    """Classify the file at ``path``. The file is mapped, so only the pages holding the headers
    are read. Raises InputError if it cannot be read."""
    from pylinkjl.binfmt.files import mapped_file

    with mapped_file(path) as mapped:
        return _sniff(mapped)
