"""Property-based fuzzing of the binfmt readers: random bytes, and valid files (real clang-19 /
llvm-ar-19 / ld64.lld-19 outputs) with bit flips, truncations and huge length fields. The only
exception allowed out is InputError naming the source (and, for the object and archive parsers, an
offset); ``sniff_bytes`` must never raise."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.ar import parse_archive
from pylinkjl.binfmt.machoversion import build_version_of, install_name_of
from pylinkjl.binfmt.sniff import BIGOBJ_CLASS_ID, sniff_bytes
from pylinkjl.binfmt.symbols import read_object_symbols
from pylinkjl.errors import InputError

from .toolnames import CLANG, LD64_LLD, LLVM_AR, LLVM_DLLTOOL, LLVM_NM, run_tool

TOOLS = (CLANG, LLVM_AR, LLVM_NM, LD64_LLD, LLVM_DLLTOOL)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs clang-19 and LLVM 19 tools")
DATA = Path(__file__).parent / "data" / "binfmt"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)
SOURCE = "fuzz-input"




def to_bigobj(obj: bytes) -> bytes:
    """Rewrite a regular COFF object (header, sections, symbols, strings in LLVM's order) in the
    ANON_OBJECT_HEADER_BIGOBJ layout: 56-byte header, 20-byte symbol and aux records."""
    machine, nsec, stamp, symptr, nsyms, optsize, _flags = struct.unpack_from("<HHIIIHH", obj)
    assert optsize == 0
    shift = 56 - 20
    out = bytearray(struct.pack("<HHHHI16sIIIIIII", 0, 0xFFFF, 2, machine, stamp, BIGOBJ_CLASS_ID,
                                0, 0, 0, 0, nsec, symptr + shift, nsyms))
    sections = bytearray(obj[20:20 + 40 * nsec])
    for i in range(nsec):
        for field in (20, 24, 28):  # PointerToRawData, PointerToRelocations, PointerToLinenumbers
            at = 40 * i + field
            value = struct.unpack_from("<I", sections, at)[0]
            if value:
                struct.pack_into("<I", sections, at, value + shift)
    out += sections + obj[20 + 40 * nsec:symptr]
    i = 0
    while i < nsyms:
        name, value, section, typ, sclass, naux = struct.unpack_from("<8sIhHBB", obj, symptr + 18 * i)
        out += struct.pack("<8sIiHBB", name, value, section, typ, sclass, naux)
        for j in range(naux):
            at = symptr + 18 * (i + 1 + j)
            out += obj[at:at + 18] + b"\0\0"
        i += 1 + naux
    return bytes(out + obj[symptr + 18 * nsyms:])


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small valid files of every kind the readers accept."""
    out = tmp_path_factory.mktemp("binfmt-fuzz")
    triples = {"elf64": "x86_64-linux-gnu", "elf32": "i686-linux-gnu", "macho": "arm64-apple-macos11",
               "coff64": "x86_64-w64-mingw32", "coff32": "i686-w64-mingw32"}
    result: dict[str, bytes] = {}
    for name, triple in triples.items():
        obj = out / f"{name}.o"
        run_tool([CLANG, f"--target={triple}", "-c", "-ffreestanding", "-fPIC", "-fcommon", "-O2",
              str(DATA / "pkg.c"), "-o", str(obj)])
        result[name] = obj.read_bytes()
    for name in ("coff64", "coff32"):
        result[f"{name}-bigobj"] = to_bigobj(result[name])
    dylib = out / "x.dylib"
    run_tool([LD64_LLD, "-arch", "arm64", "-platform_version", "macos", "11.0", "12.0", "-dylib",
          "-undefined", "dynamic_lookup", "-install_name", "@rpath/libx.dylib", str(out / "macho.o"),
          "-o", str(dylib)])
    result["dylib"] = dylib.read_bytes()
    (out / "a_member_name_longer_than_sixteen.o").write_bytes(result["elf64"])
    for fmt in ("gnu", "darwin"):
        run_tool([LLVM_AR, "rcs", f"--format={fmt}", str(out / f"{fmt}.a"), "a_member_name_longer_than_sixteen.o",
              "macho.o"], cwd=out)
        result[f"ar-{fmt}"] = (out / f"{fmt}.a").read_bytes()
    deffile = out / "x.def"
    deffile.write_text("LIBRARY x.dll\nEXPORTS\nf\nd DATA\n")
    run_tool([LLVM_DLLTOOL, "-m", "i386:x86-64", "-d", str(deffile), "-l", str(out / "x.lib")])
    implib = (out / "x.lib").read_bytes()
    short = [m for m in parse_archive(implib, "x.lib") if implib[m.offset:m.offset + 4] == b"\0\0\xff\xff"]
    result["short-import"] = implib[short[0].offset:short[0].offset + short[0].size]
    return result


OBJECT_SEEDS = ["elf64", "elf32", "macho", "coff64", "coff32", "coff64-bigobj", "coff32-bigobj", "dylib",
                "short-import"]


def test_seeds_are_read_like_llvm_nm(seeds: dict[str, bytes], tmp_path: Path) -> None:
    """The hand-converted bigobj seeds (and the 32-bit ELF one) are valid: llvm-nm agrees with us."""
    for name in ("elf32", "coff64-bigobj", "coff32-bigobj"):
        path = tmp_path / f"{name}.o"
        path.write_bytes(seeds[name])
        ours = read_object_symbols(seeds[name], name)
        nm_defined = set(run_tool([LLVM_NM, "-g", "--defined-only", "-j", str(path)]).split())
        nm_undefined = set(run_tool([LLVM_NM, "-u", "-j", str(path)]).split())
        assert ours.defined == nm_defined, name
        assert ours.undefined == {n.removeprefix("__imp_") for n in nm_undefined}, name
        assert ours == read_object_symbols(seeds[name.removesuffix("-bigobj")], name)
        assert "bigobj" in sniff_bytes(seeds[name]).description or name == "elf32"
    assert read_object_symbols(seeds["short-import"], "x.lib(x.dll)").defined == {"__imp_f", "f"}


def _check(fn: Callable[[bytes], object], data: bytes, need_offset: bool = True) -> object:
    result = None
    try:
        result = fn(data)
    except InputError as exc:
        assert exc.path is not None and SOURCE in str(exc)
        if need_offset:
            assert exc.offset is not None and 0 <= exc.offset
    # sniffing never fails, whatever the bytes
    assert sniff_bytes(data[:4096]).format in ("elf", "macho", "coff", "ar", "unknown")
    return result


def _all_readers(data: bytes) -> None:
    _check(lambda d: read_object_symbols(d, SOURCE), data)
    members = _check(lambda d: parse_archive(d, SOURCE), data)
    for m in members or []:  # type: ignore[attr-defined]
        assert 8 + 60 <= m.offset and m.offset + m.size <= len(data), m
    _check(lambda d: build_version_of(d, SOURCE), data, need_offset=False)
    _check(lambda d: install_name_of(d, SOURCE, "arm64"), data, need_offset=False)


MAGICS = [b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x01\x01", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe",
          b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf", b"!<arch>\n", b"!<thin>\n", b"d\x86", b"L\x01", b"d\xaa",
          b"\0\0\xff\xff\x02\0d\x86", b"\0\0\xff\xff\0\0d\x86", b"MZ"]


@FUZZ
@given(prefix=st.sampled_from(MAGICS + [b""]), body=st.binary(max_size=1024))
def test_random_bytes(prefix: bytes, body: bytes) -> None:
    _all_readers(prefix + body)


def _structural_ranges(blob: bytes) -> list[tuple[int, int]]:
    """Where the length and offset fields of a valid seed live: the first 512 bytes (file header,
    Mach-O load commands, COFF section table), the ELF section header table and the start of the COFF
    symbol table. Mutations aimed there reach the bounds checks far more often than uniform ones."""
    ranges = [(0, min(512, len(blob)))]
    if blob[:4] == b"\x7fELF":
        shoff = struct.unpack_from("<Q", blob, 40)[0] if blob[4] == 2 else struct.unpack_from("<I", blob, 32)[0]
        ranges.append((shoff, len(blob)))
    elif blob[:2] in (b"d\x86", b"L\x01"):
        symptr = struct.unpack_from("<I", blob, 8)[0]
        ranges.append((symptr, min(symptr + 360, len(blob))))
    elif blob[:4] == b"\0\0\xff\xff" and len(blob) >= 56:
        symptr = struct.unpack_from("<I", blob, 48)[0]
        ranges.append((symptr, min(symptr + 400, len(blob))))
    return [(lo, hi) for lo, hi in ranges if lo < hi]


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_mutated_valid_files(seeds: dict[str, bytes], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(OBJECT_SEEDS + ["ar-gnu", "ar-darwin"]))
    blob = bytearray(seeds[name])
    ranges = _structural_ranges(seeds[name])
    for _ in range(data.draw(st.integers(1, 4))):
        if data.draw(st.booleans()):
            lo, hi = data.draw(st.sampled_from(ranges))
            at = data.draw(st.integers(lo, hi - 1)) & ~3
        else:
            at = data.draw(st.integers(0, len(blob) - 1))
        action = data.draw(st.sampled_from(["flip", "huge32", "huge64", "random32", "zero32"]))
        if action == "flip":
            blob[at] ^= 1 << data.draw(st.integers(0, 7))
        elif action in ("huge32", "random32", "zero32"):
            value = {"huge32": 0xFFFFFFFF, "zero32": 0,
                     "random32": data.draw(st.integers(0, 0xFFFFFFFF))}[action]
            blob[at:at + 4] = struct.pack("<I", value)[:len(blob[at:at + 4])]
        else:
            blob[at:at + 8] = struct.pack("<Q", 0xFFFFFFFFFFFFFFF0)[:len(blob[at:at + 8])]
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(0, len(blob))):]
    _all_readers(bytes(blob))


@FUZZ
@given(data=st.data())
def test_archive_size_fields(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Archive member headers with absurd sizes and name lengths (decimal ASCII fields)."""
    blob = bytearray(seeds[data.draw(st.sampled_from(["ar-gnu", "ar-darwin"]))])
    headers = [m.offset for m in parse_archive(bytes(blob), SOURCE)]
    header = data.draw(st.sampled_from(headers)) - 60
    if blob[header:header + 3] == b"#1/" and data.draw(st.booleans()):
        blob[header + 3:header + 16] = str(data.draw(st.integers(0, 10**12))).ljust(13).encode()[:13]
    else:
        text = data.draw(st.sampled_from(["9999999999", "-1", "1e9", "", "0", str(len(blob))]))
        blob[header + 48:header + 58] = text.ljust(10).encode()
    _all_readers(bytes(blob))


@pytest.mark.parametrize("name", OBJECT_SEEDS + ["ar-gnu", "ar-darwin"])
def test_every_structural_field_smashed(seeds: dict[str, bytes], name: str) -> None:
    """Deterministic sweep next to the random search: every aligned 32-bit word of the header and
    table regions set, in turn, to values that point past the end or overflow a size computation."""
    seed = seeds[name]
    values = [0xFFFFFFFF, 0x80000000, len(seed), len(seed) // 2 + 1]
    for lo, hi in _structural_ranges(seed):
        for at in range(lo & ~3, min(hi, len(seed) - 3), 4):
            for value in values:
                blob = bytearray(seed)
                struct.pack_into("<I", blob, at, value)
                _all_readers(bytes(blob))
