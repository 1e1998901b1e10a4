"""Reader of Julia's ``.ji`` cache files (format 12: Julia 1.9 - 1.13; format 15: master).

Layout (docs/julia-linking.md §4.4)::

    magic "\\373jli\\r\\n\\032\\n"; uint16 format; uint16 BOM 0xFEFF; uint8 sizeof(void*)
    NUL-terminated: build OS, arch, Julia version, [format 15: GC ABI; uint32 flags], git branch, commit
    format 12: uint8 pkgimage (0 in a .ji); uint64 checksum; uint64 datastartpos; uint64 dataendpos
    format 15: uint32 checksum; uint64 datastartpos; uint64 dataendpos
    uint8 cache flags
    worklist  {int32 len, name, uint64 uuid.hi, uuid.lo, uint64 build_id.lo}..., int32 0
    int64 totbytes; dependency records, preferences, uint64 prefs_hash, int64 srctextpos (totbytes bytes)
    required  {int32 len, name, uint64 uuid.hi, uuid.lo, uint64 build_id.hi, build_id.lo}..., int32 0
    int32 L (format 15: uint32); clone_targets[L]   (the image's serialized target list; empty: no image)
    ... source text ...
    uint32 crc_so = crc32c(image file); uint32 crc32c(every preceding byte of the .ji)

The file is memory-mapped: nothing is read because a length field says so, every length is
checked against the bytes that are really there, and a malformed file raises
:class:`~pylinkjl.errors.InputError` naming the file and the offset.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import crc32c

from pylinkjl.binfmt.extent import check_tail
from pylinkjl.binfmt.files import mapped_view
from pylinkjl.binfmt.targetlist import Layout, TargetRecord, decode_target_list
from pylinkjl.caches.flags import CacheFlags
from pylinkjl.caches.jicursor import MAX_NAME, Cursor
from pylinkjl.errors import InputError
from pylinkjl.target import FORMAT_OF_OS, os_of_kernel

JI_MAGIC = b"\xfbjli\r\n\x1a\n"
FORMAT_CLASSIC = 12  # Julia 1.9 - 1.13
FORMAT_SPLIT = 15  # Julia master (1.14-DEV)
JI_FLAG_PKGIMAGE = 1 << 0
JI_FLAG_SPLIT = 1 << 1
HEAP_CHECKSUM_TAG = 0xFAFBFCFD

# Plausibility caps (a header field beyond these is corruption, not data).
_MAX_MODULES = 1 << 16
_MAX_CLONE_TARGETS = 1 << 20

OS_DLEXT = {"Darwin": "dylib", "WINNT": "dll", "Windows": "dll"}  # everything else: "so"


@dataclass(frozen=True)
class ModuleRef:
    """A module named in the header: a worklist entry or a required module."""

    name: str
    uuid: str | None  # None for stdlib-less modules such as Core, Base, Main
    build_id: int  # worklist: build_id.lo; required modules: (hi << 64) | lo


@dataclass(frozen=True)
class Dependency:
    """One ``include``/``include_dependency`` record of the dependency list."""

    path: str
    mtime: float
    module: tuple[str, ...] = ()
    fsize: int | None = None  # 1.11+
    hash: int | None = None  # 1.11+ (crc32c of the file)


@dataclass
class JiFile:
    path: Path
    size: int
    format: int
    byte_order: str  # "little" or "big"
    pointer_size: int
    os: str  # JL_BUILD_UNAME: Linux, Darwin, WINNT, FreeBSD
    arch: str  # JL_BUILD_ARCH: x86_64, aarch64, i686, ...
    julia_version: str
    branch: str
    commit: str
    heap_checksum: int
    datastartpos: int
    dataendpos: int
    cache_flags_byte: int
    worklist: list[ModuleRef]
    dependencies: list[Dependency]
    requires: int  # number of `requires` records (package-to-package edges)
    preferences: list[str]
    prefs_hash: int
    srctextpos: int
    required_modules: list[ModuleRef]
    clone_targets_offset: int  # where the clone-targets bytes start
    clone_targets: bytes
    targets: list[TargetRecord]
    crc_so: int  # stored: crc32c of the image file
    crc_ji: int  # stored: crc32c of the .ji without its last 4 bytes
    crc_ji_actual: int | None  # computed (None when not verified)
    pkgimage_byte: int | None = None  # format 12
    gc_abi: str | None = None  # format 15
    header_flags: int | None = None  # format 15
    notes: list[str] = field(default_factory=list)

    @property
    def cache_flags(self) -> CacheFlags:
        return CacheFlags.from_byte(self.cache_flags_byte)

    @property
    def is_pkgimage(self) -> bool:
        """A cache with native code (an image file next to it); ``--pkgimages=no`` caches have none."""
        return len(self.clone_targets) > 0

    @property
    def package(self) -> str:
        return self.worklist[0].name if self.worklist else ""

    @property
    def crc_ji_ok(self) -> bool | None:
        return None if self.crc_ji_actual is None else self.crc_ji_actual == self.crc_ji

    @property
    def dlext(self) -> str:
        return OS_DLEXT.get(self.os, "so")

    @property
    def image_format(self) -> str:
        """The object format of the image beside this cache: "macho", "coff" or "elf" (other kernels too)."""
        return FORMAT_OF_OS[os_of_kernel(self.os) or "linux"]

    @property
    def image_arch(self) -> str:
        """The architecture of the image, spelled as pylinkjl's targets spell it (i686, x86_64, aarch64)."""
        return {"i386": "i686", "arm64": "aarch64", "amd64": "x86_64"}.get(self.arch, self.arch)

    @property
    def image_path(self) -> Path:
        """The image Julia would load with this cache (``ocachefile_from_cachefile``)."""
        return self.path.with_suffix("." + self.dlext)

    @property
    def target_layout(self) -> str:
        return "cpufeatures" if self.format >= FORMAT_SPLIT else "classic"


def format_uuid(value: int) -> str | None:
    if value == 0:
        return None
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def read_ji(path: str | os.PathLike[str], *, verify: bool = True) -> JiFile:
    """Read a ``.ji`` file. ``verify`` also computes the CRC of the ``.ji`` itself (the image's CRC
    is compared by :mod:`pylinkjl.caches.inspection`). Raises InputError on anything malformed."""
    p = Path(path)
    with mapped_view(p) as data:
        ji = _parse(data, p)
        if verify:
            ji.crc_ji_actual = int(crc32c.crc32c(data[:ji.size - 4]))
        return ji


def parse_ji_bytes(data: bytes, path: str | os.PathLike[str] = "<bytes>", *, verify: bool = True) -> JiFile:
    """Like :func:`read_ji` for bytes already in memory (tests, fuzzing)."""
    view = memoryview(data)
    ji = _parse(view, Path(path))
    if verify:
        ji.crc_ji_actual = int(crc32c.crc32c(view[:ji.size - 4]))
    return ji


_MAX_SOURCE_FILES = 1 << 20


def _source_text_end(data: memoryview, srctextpos: int, endian: str) -> int | None:
    """Where the source-text section that starts at ``srctextpos`` ends: ``(int32 name length, name, int64 text
    length, text)*`` up to an int32 0. The 8-byte trailer follows it; in every real .ji we have (1.9 - 1.12)
    it ends the file. None when the section cannot be walked (the notes say so)."""
    pos, end = srctextpos, len(data)
    for _ in range(_MAX_SOURCE_FILES):
        if pos < 0 or pos + 4 > end:
            return None
        n = struct.unpack_from(endian + "i", data, pos)[0]
        pos += 4
        if n == 0:
            return pos
        if n < 0 or pos + n + 8 > end:
            return None
        pos += n
        length = struct.unpack_from(endian + "q", data, pos)[0]
        pos += 8 + length
        if length < 0:
            return None
    return None


def _parse(data: memoryview, path: Path) -> JiFile:
    c = Cursor(data, path)
    if len(data) < len(JI_MAGIC) or bytes(data[:8]) != JI_MAGIC:
        raise c.fail("not a Julia cache file (.ji): bad magic", 0)
    c.pos = 8
    fmt = c.unpack("H", "format version")
    bom = c.unpack("H", "byte-order mark")
    if bom == 0xFFFE:
        c.endian = ">"
        fmt = ((fmt & 0xFF) << 8) | (fmt >> 8)
    elif bom != 0xFEFF:
        raise c.fail(f"byte-order mark is {bom:#06x}, expected 0xfeff", 10)
    if fmt not in (FORMAT_CLASSIC, FORMAT_SPLIT):
        raise c.fail(f"unsupported .ji format {fmt} (pylinkjl reads format 12, Julia 1.9 - 1.13, and 15, "
                     "Julia master)", 8)
    ptr = c.u8("pointer size")
    if ptr not in (4, 8):
        raise c.fail(f"pointer size {ptr} is neither 4 nor 8", c.pos - 1)
    os_name = c.cstring("build OS")
    arch = c.cstring("build arch")
    version = c.cstring("Julia version")
    gc_abi = header_flags = pkgimage_byte = None
    branch = commit = ""
    if fmt == FORMAT_SPLIT:
        gc_abi = c.cstring("GC ABI")
        header_flags = c.u32("header flags")
        if header_flags & JI_FLAG_PKGIMAGE:
            branch, commit = c.cstring("git branch"), c.cstring("git commit")
        checksum = c.u32("heap checksum")
    else:
        branch, commit = c.cstring("git branch"), c.cstring("git commit")
        pkgimage_byte = c.u8("pkgimage byte")
        checksum = c.u64("heap checksum")
    datastart = c.u64("datastartpos")
    dataend = c.u64("dataendpos")
    flags = c.u8("cache flags")
    worklist = _modules(c, "worklist", required=False)
    deps, requires, prefs, prefs_hash, srctextpos, notes = _dependency_section(c, version)
    required = _modules(c, "required modules", required=True)
    clone_offset = c.pos + 4
    n = c.u32("clone-targets length") if fmt == FORMAT_SPLIT else c.i32("clone-targets length")
    if n < 0 or n > _MAX_CLONE_TARGETS:
        raise c.fail(f"clone-targets length {n} is implausible", c.pos - 4)
    if c.pos + n > c.end - 8:
        raise c.fail(f"clone-targets block of {n} bytes runs into the trailer (truncated .ji?)", c.pos - 4)
    blob = c.raw(n, "clone targets")
    layout: Layout = "cpufeatures" if fmt == FORMAT_SPLIT else "classic"
    targets = decode_target_list(blob, layout=layout, source=str(path), base_offset=clone_offset)[0] if blob else []
    if srctextpos and not (c.pos <= srctextpos <= c.end - 8):
        notes.append(f"srctextpos {srctextpos:#x} points outside the source-text area")
    size = len(data)
    if srctextpos:  # before the CRC reads the whole file: a .ji padded far beyond its end is refused at once
        text_end = _source_text_end(data, srctextpos, c.endian)
        if text_end is not None:
            check_tail(path, size, text_end + 8, "its source-text section and trailer end at")
    crc_so, crc_ji = struct.unpack_from(c.endian + "II", data, size - 8)
    return JiFile(path, size, fmt, "big" if c.endian == ">" else "little", ptr, os_name, arch, version, branch,
                  commit, checksum, datastart, dataend, flags, worklist, deps, requires, prefs, prefs_hash,
                  srctextpos, required, clone_offset, blob, targets, crc_so, crc_ji, None, pkgimage_byte,
                  gc_abi, header_flags, notes)


def _modules(c: Cursor, what: str, *, required: bool) -> list[ModuleRef]:
    out: list[ModuleRef] = []
    while True:
        n = c.i32(f"{what}: name length")
        if n == 0:
            return out
        if len(out) >= _MAX_MODULES:
            raise c.fail(f"{what}: more than {_MAX_MODULES} entries")
        name = c.name(n, f"{what}: module name")
        hi, lo = c.u64(f"{what}: uuid"), c.u64(f"{what}: uuid")
        if required:
            bhi, blo = c.u64(f"{what}: build id"), c.u64(f"{what}: build id")
            build = bhi << 64 | blo
        else:
            build = c.u64(f"{what}: build id")
        out.append(ModuleRef(name, format_uuid(hi << 64 | lo), build))


def _dependency_section(c: Cursor, version: str) -> tuple[list[Dependency], int, list[str], int, int, list[str]]:
    totbytes = c.i64("dependency list size")
    start = c.pos
    if totbytes < 16 or start + totbytes > c.end - 8:
        raise c.fail(f"dependency list size {totbytes} does not fit in the file", start - 8)
    end = start + totbytes
    notes: list[str] = []
    sub = Cursor(c.data, c.path, c.endian)
    sub.pos, sub.end = start, end
    try:
        deps, requires, prefs = _dependencies(sub, _has_file_hashes(version))
        prefs_hash = sub.u64("preferences hash")
        srctextpos = sub.i64("srctextpos")
        if sub.pos != end:
            raise sub.fail(f"dependency list ends {end - sub.pos} bytes before its declared size")
    except InputError as e:
        # Unknown record layout (a newer Julia): the two trailing fields are still at fixed places.
        notes.append(f"dependency list not decoded ({e.problem} at {e.offset:#x})")
        deps, requires, prefs = [], 0, []
        sub.pos = end - 16
        prefs_hash, srctextpos = sub.u64("preferences hash"), sub.i64("srctextpos")
    c.pos = end
    return deps, requires, prefs, prefs_hash, srctextpos, notes


def _has_file_hashes(version: str) -> bool:
    """1.11 added size and hash to each include record (without bumping the format)."""
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= (1, 11)


def _dependencies(c: Cursor, hashes: bool) -> tuple[list[Dependency], int, list[str]]:
    deps: list[Dependency] = []
    requires = 0
    while True:
        n = c.i32("dependency: path length")
        if n == 0:
            break
        name = c.raw(n, "dependency: path") if 0 < n <= MAX_NAME else None
        if name is None:
            raise c.fail(f"dependency: path length {n} is implausible", c.pos - 4)
        fsize = fhash = None
        if hashes:
            fsize, fhash = c.u64("dependency: file size"), c.u32("dependency: file hash")
        mtime = c.f64("dependency: mtime")
        modpath: list[str] = []
        if c.i32("dependency: module index") != 0:
            while (m := c.i32("dependency: module path")) != 0:
                modpath.append(c.name(m, "dependency: module path"))
        if name[:1] == b"\0":
            requires += 1
        else:
            deps.append(Dependency(name.decode("utf-8", errors="replace"), mtime, tuple(modpath), fsize, fhash))
    prefs: list[str] = []
    while (n := c.i32("preference name length")) != 0:
        prefs.append(c.name(n, "preference name"))
    return deps, requires, prefs
