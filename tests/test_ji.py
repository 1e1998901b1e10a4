"""The .ji reader: every real cache decodes, with pinned contents; format 15; fuzzing."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import crc32c
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.targetlist import TargetRecord, encode_target_list
from pylinkjl.caches.crc import crc32c_file
from pylinkjl.caches.embedded import find_embedded_header
from pylinkjl.caches.flags import CacheFlags
from pylinkjl.caches.ji import JI_MAGIC, parse_ji_bytes, read_ji
from pylinkjl.errors import InputError

from . import realdata

REAL = realdata.require_real()
LINUX19 = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9"
MAC19 = REAL / "alexwjung__dot_julia" / "darwin-x86_64" / "compiled" / "v1.9"
MAC111 = REAL / "subhk__FeastKit.jl" / "darwin-x86_64" / "compiled" / "v1.11"
LINUX112 = REAL / "cicero-violate__MMSB" / "linux-x86_64" / "compiled" / "v1.12"
ALL_JI = sorted(REAL.rglob("*.ji"))


def test_every_real_cache_decodes_and_both_crcs_hold() -> None:
    # Not a pinned count: shared/ grows. Every fixture collection contributes, and an independent walk agrees.
    walked = sorted(Path(d, f) for d, _, fs in os.walk(REAL) for f in fs if f.endswith(".ji"))
    assert ALL_JI == walked and len(ALL_JI) >= 45
    assert {p.relative_to(REAL).parts[0] for p in ALL_JI} == {d.name for d in REAL.iterdir() if d.is_dir()}
    for path in ALL_JI:
        ji = read_ji(path)
        assert ji.crc_ji_ok, path
        assert ji.is_pkgimage and len(ji.targets) == 1
        assert ji.notes == [], path  # the dependency list decoded exactly to its declared size
        if ji.image_path.exists():
            assert crc32c_file(ji.image_path) == ji.crc_so, path


@pytest.mark.parametrize("path, version, branch, os_, flags, target, nwords, pkg, uuid", [
    (LINUX19 / "Adapt" / "rUIgN_LJMjr.ji", "1.9.0", "v1.9.0", "Linux", 0xA3, "broadwell", 11, "Adapt",
     "79e6a3ab-5dfb-504d-930d-738a2a938a0e"),
    (LINUX19 / "Preferences" / "pWSk8_0kJBY.ji", "1.9.0", "v1.9.0", "Linux", 0x23, "broadwell", 11, "Preferences",
     "21216c6a-2e73-6563-6e65-726566657250"),
    (MAC19 / "Reexport" / "bTpYr_ucCNj.ji", "1.9.0", "v1.9.0", "Darwin", 0xA3, "skylake", 11, "Reexport",
     "189a3867-3050-52da-a836-e630ba90ab69"),
    (MAC111 / "Logging" / "PWFjL_vz7N9.ji", "1.11.6", "v1.11.6", "Darwin", 0xAB, "icelake-client", 11, "Logging",
     "56ddb016-857b-54e1-b83d-db4d58db5568"),
    (LINUX112 / "Logging" / "PWFjL_xCOJd.ji", "1.12.1", "HEAD", "Linux", 0xA3, "skylake", 12, "Logging",
     "56ddb016-857b-54e1-b83d-db4d58db5568"),
])
def test_pinned_headers(path: Path, version: str, branch: str, os_: str, flags: int, target: str, nwords: int,
                        pkg: str, uuid: str) -> None:
    ji = read_ji(path)
    assert (ji.format, ji.byte_order, ji.pointer_size, ji.arch) == (12, "little", 8, "x86_64")
    assert (ji.julia_version, ji.branch, ji.os, ji.cache_flags_byte) == (version, branch, os_, flags)
    assert (ji.package, ji.worklist[0].uuid) == (pkg, uuid)
    assert ji.targets[0].name == target and ji.targets[0].nwords == nwords
    assert ji.heap_checksum >> 32 == 0xFAFBFCFD
    assert ji.pkgimage_byte == 0 and ji.datastartpos == 0 and ji.dataendpos == 0


def test_pinned_details_of_one_cache() -> None:
    ji = read_ji(LINUX19 / "DataStructures" / "xKiwJ_LJMjr.ji")
    assert ji.commit == "8e630552924eac54c809aa7bc30871c7df1582d3"
    assert ji.clone_targets_offset == 5629 and len(ji.clone_targets) == 117  # as in the tables README
    t = ji.targets[0]
    assert t.en.to_bytes(44, "little")[:12] == struct.pack("<3I", 0x36D83203, 0, 0x00080129)
    assert [m.name for m in ji.required_modules][:3] == ["Core", "Base", "Main"]
    assert ji.required_modules[0].uuid is None and ji.required_modules[0].build_id >> 64 == 0xFDFCFBFA6CEF2AC7
    assert len(ji.dependencies) == 39 and ji.requires == 3
    assert all(d.path.startswith("/root/.julia/packages/DataStructures/") for d in ji.dependencies)
    assert (ji.crc_so, ji.crc_ji) == (crc32c_file(ji.image_path), ji.crc_ji_actual)
    assert ji.cache_flags == CacheFlags(1, 1, 0, 1, 2)
    assert read_ji(LINUX19 / "Parsers" / "833b9_LJMjr.ji").preferences == ["precompile_workload"]


def test_1_11_records_carry_size_and_hash() -> None:
    ji = read_ji(MAC111 / "TOML" / "mjrwE_GDH18.ji")
    assert ji.dependencies and all(d.fsize and d.hash is not None for d in ji.dependencies)
    assert ji.image_path.suffix == ".dylib"


def test_embedded_header_ties_image_to_cache() -> None:
    ji = read_ji(LINUX19 / "Adapt" / "rUIgN_LJMjr.ji")
    header = find_embedded_header(ji.image_path.read_bytes())
    assert header is not None and header.pkgimage_byte == 1 and header.julia_version == "1.9.0"
    assert header.heap_checksum == ji.heap_checksum
    other = find_embedded_header((LINUX19 / "Compat" / "GSFWK_LJMjr.so").read_bytes())
    assert other is not None and other.heap_checksum != ji.heap_checksum
    assert find_embedded_header(b"\0" * 100 + JI_MAGIC + b"\x0c\x00") is None


# -- a synthetic writer (format 12 and 15), to test what no real file shows ----------------------

def _str(s: str) -> bytes:
    return s.encode() + b"\0"


def _mod(name: str, hi: int, lo: int, build: list[int]) -> bytes:
    return struct.pack("<i", len(name)) + name.encode() + struct.pack("<QQ", hi, lo) + \
        b"".join(struct.pack("<Q", b) for b in build)


def build_ji(*, fmt: int = 12, version: str = "1.10.4", targets: bytes | None = None, image_crc: int = 0,
             deps_bytes: bytes | None = None, flags: int = 0xA3, checksum: int = 0xFAFBFCFD_00000001) -> bytes:
    out = JI_MAGIC + struct.pack("<HHB", fmt, 0xFEFF, 8) + _str("Linux") + _str("x86_64") + _str(version)
    if fmt == 15:
        out += _str("gc-stock") + struct.pack("<I", 1) + _str("master") + _str("abc123")
        out += struct.pack("<IQQ", 0x12345678, 0, 0)
    else:
        out += _str("v" + version) + _str("abc123") + b"\0" + struct.pack("<QQQ", checksum, 0, 0)
    out += bytes([flags]) + _mod("Foo", 1, 2, [3]) + struct.pack("<i", 0)
    if deps_bytes is None:
        path = b"/src/Foo.jl"
        deps_bytes = struct.pack("<i", len(path)) + path + struct.pack("<d", 1.5) + struct.pack("<i", 0)
        deps_bytes += struct.pack("<i", 0) + struct.pack("<i", 0) + struct.pack("<Qq", 7, 0)
    out += struct.pack("<q", len(deps_bytes)) + deps_bytes
    out += _mod("Core", 0, 0, [0xFAFBFCFD_00000000, 5]) + struct.pack("<i", 0)
    if targets is None:
        layout = "cpufeatures" if fmt == 15 else "classic"
        nwords = 4 if fmt == 15 else 11
        targets = encode_target_list([TargetRecord("haswell", 0, 0b101, 0b10, nwords, "")], layout=layout)
    out += struct.pack("<I" if fmt == 15 else "<i", len(targets)) + targets
    out += b"source text" + struct.pack("<I", image_crc)
    return out + struct.pack("<I", crc32c.crc32c(out))


def test_synthetic_format_12_and_15() -> None:
    ji = parse_ji_bytes(build_ji(), "x.ji")
    assert (ji.format, ji.julia_version, ji.package, ji.targets[0].name) == (12, "1.10.4", "Foo", "haswell")
    assert ji.dependencies[0].path == "/src/Foo.jl" and ji.prefs_hash == 7 and ji.crc_ji_ok
    ji15 = parse_ji_bytes(build_ji(fmt=15, version="1.14.0-DEV"), "y.ji")
    assert (ji15.format, ji15.gc_abi, ji15.header_flags, ji15.branch) == (15, "gc-stock", 1, "master")
    assert ji15.heap_checksum == 0x12345678 and ji15.target_layout == "cpufeatures"
    assert ji15.targets[0].nwords == 4 and ji15.targets[0].en == 0b101


def test_undecodable_dependency_list_falls_back_to_its_fixed_tail() -> None:
    weird = b"\x07\x00\x00\x00" + b"\xff" * 20 + struct.pack("<Qq", 9, 0)  # a record layout we do not know
    ji = parse_ji_bytes(build_ji(deps_bytes=weird), "z.ji")
    assert ji.prefs_hash == 9 and ji.dependencies == [] and ji.notes


def test_no_pkgimage_cache() -> None:
    ji = parse_ji_bytes(build_ji(targets=b"", flags=0xA2), "n.ji")
    assert not ji.is_pkgimage and ji.targets == [] and ji.crc_so == 0


@pytest.mark.parametrize("mutate, problem", [
    (lambda b: b"\0" + b[1:], "bad magic"),
    (lambda b: b[:8] + b"\x0b\x00" + b[10:], "unsupported .ji format 11"),
    (lambda b: b[:10] + b"\x00\x00" + b[12:], "byte-order mark"),
    (lambda b: b[:40], "truncated"),
])
def test_malformed_headers_name_file_and_offset(mutate: object, problem: str) -> None:
    data = mutate(build_ji())  # type: ignore[operator]
    with pytest.raises(InputError) as e:
        parse_ji_bytes(data, "bad.ji")
    assert problem in str(e.value) and "bad.ji" in str(e.value) and e.value.offset is not None


def test_length_fields_pointing_past_the_end_are_refused_without_reading() -> None:
    good = build_ji()
    pos = good.index(b"\x03\x00\x00\x00Foo")
    huge = good[:pos] + struct.pack("<i", 0x7FFFFFF0) + good[pos + 4:]
    with pytest.raises(InputError, match="implausible|remain"):
        parse_ji_bytes(huge, "huge.ji")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        read_ji(tmp_path / "nope.ji")
    (tmp_path / "empty.ji").write_bytes(b"")
    with pytest.raises(InputError, match="bad magic"):
        read_ji(tmp_path / "empty.ji")


# -- fuzzing ------------------------------------------------------------------------------------

SEEDS = [build_ji(), build_ji(fmt=15, version="1.14.0-DEV"), (LINUX19 / "Reexport" / "bTpYr_LJMjr.ji").read_bytes(),
         (LINUX112 / "Logging" / "PWFjL_xCOJd.ji").read_bytes()]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _must_not_crash(data: bytes) -> None:
    try:
        parse_ji_bytes(data, "fuzz.ji")
    except InputError as e:
        assert "fuzz.ji" in str(e) and e.offset is not None


@FUZZ
@given(seed=st.sampled_from(SEEDS), cut=st.integers(min_value=0, max_value=5000))
def test_fuzz_truncated(seed: bytes, cut: int) -> None:
    _must_not_crash(seed[:min(cut, len(seed))])


@FUZZ
@given(seed=st.sampled_from(SEEDS), pos=st.integers(min_value=0, max_value=4000),
       value=st.sampled_from([0, 1, 0x7F, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000]))
def test_fuzz_length_fields(seed: bytes, pos: int, value: int) -> None:
    pos = pos % max(len(seed) - 4, 1)
    _must_not_crash(seed[:pos] + struct.pack("<I", value) + seed[pos + 4:])


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _must_not_crash(JI_MAGIC + b"\x0c\x00\xff\xfe\x08" + data)
    _must_not_crash(data)


@FUZZ
@given(prefix=st.binary(max_size=64), tail=st.binary(max_size=120))
def test_fuzz_embedded_header(prefix: bytes, tail: bytes) -> None:
    header = find_embedded_header(prefix + JI_MAGIC + b"\x0c\x00\xff\xfe\x08" + tail)
    assert header is None or header.offset >= 0
