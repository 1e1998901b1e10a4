"""The readers behind real runtime trees: the ELF soname (and its rewritten link-time copy) and the version
a Windows libjulia-internal.dll returns from ijl_ver_string; library search by runtime names. Checked on the
real Julia 1.13.1 files, then fuzzed: malformed input gives None or an InputError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.loadname import install_name_slot, soname_slot, with_load_name
from pylinkjl.binfmt.runtimeversion import version_from_pe
from pylinkjl.errors import InputError
from pylinkjl.link.libsearch import find_runtime_library, runtime_name_pattern

from .realruntime import require_runtime
from .toolnames import LLVM_OBJDUMP, LLVM_READOBJ, run_tool

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@pytest.fixture(scope="module")
def libjulia_elf() -> bytes:
    return Path(require_runtime("manylinux_2_28_x86_64")["libjulia"]).read_bytes()


@pytest.fixture(scope="module")
def internal_dll() -> bytes:
    return Path(require_runtime("win_amd64")["libjulia_internal"]).read_bytes()


def test_soname_rewritten_copy_is_what_readelf_sees(libjulia_elf: bytes, tmp_path: Path) -> None:
    slot = soname_slot(libjulia_elf, "libjulia")
    assert slot is not None and slot[0] == "ICl90UHn_libjulia.so.1.13.1"
    copy = with_load_name(libjulia_elf, "libjulia", "ICl90UHn_libjulia.so.1")
    assert copy is not None and len(copy) == len(libjulia_elf)
    (tmp_path / "copy.so").write_bytes(copy)
    assert "ICl90UHn_libjulia.so.1]" in run_tool([LLVM_READOBJ, "--dynamic-table", str(tmp_path / "copy.so")])
    assert with_load_name(libjulia_elf, "libjulia", "x" * 40) is None  # longer than the old one: cannot grow
    assert soname_slot(b"\x7fELF" + b"\0" * 100, "x") is None and soname_slot(b"MZ", "x") is None


@pytest.fixture(scope="module")
def internal_dylib() -> bytes:
    return Path(require_runtime("macosx_11_0_arm64")["libjulia_internal"]).read_bytes()


def test_install_name_rewritten_copy(internal_dylib: bytes, tmp_path: Path) -> None:
    slot = install_name_slot(internal_dylib, "dylib")
    assert slot is not None and slot[0] == "@rpath/JXacdAlp_libjulia-internal.1.13.1.dylib"
    copy = with_load_name(internal_dylib, "dylib", "@rpath/JXacdAlp_libjulia-internal.1.13.dylib")
    assert copy is not None and len(copy) == len(internal_dylib)
    (tmp_path / "copy.dylib").write_bytes(copy)
    ident = run_tool([LLVM_OBJDUMP, "--macho", "--dylib-id", str(tmp_path / "copy.dylib")])
    assert ident.split()[-1] == "@rpath/JXacdAlp_libjulia-internal.1.13.dylib"
    assert with_load_name(internal_dylib, "dylib", "@rpath/" + "x" * 400) is None  # does not fit the command


@FUZZ
@given(st.data())
def test_fuzz_install_name(internal_dylib: bytes, data: st.DataObject) -> None:
    head = bytearray(internal_dylib[:0x4000])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(head) - 1))
        head[at] = data.draw(st.integers(0, 255))
    try:
        install_name_slot(bytes(head[:data.draw(st.integers(0, len(head)))]), "fuzz")
    except InputError as err:
        assert err.path == Path("fuzz")


def test_dll_version(internal_dll: bytes) -> None:
    assert version_from_pe(internal_dll, "libjulia-internal.dll") == "1.13.1"
    libjulia = Path(require_runtime("win_amd64")["libjulia"]).read_bytes()
    assert version_from_pe(libjulia, "libjulia.dll") is None  # its jl_ver_string jumps into internal: no guess


@FUZZ
@given(st.data())
def test_fuzz_soname(libjulia_elf: bytes, data: st.DataObject) -> None:
    head = bytearray(libjulia_elf[:0x20000])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(head) - 1))
        head[at] = data.draw(st.integers(0, 255))
    cut = bytes(head[:data.draw(st.integers(0, len(head)))])
    try:
        soname_slot(cut, "fuzz")
    except InputError as err:
        assert err.path == Path("fuzz")


@FUZZ
@given(st.data())
def test_fuzz_dll_version(internal_dll: bytes, data: st.DataObject) -> None:
    buf = bytearray(internal_dll)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.sampled_from([data.draw(st.integers(0, 0x400)), data.draw(st.integers(0, len(buf) - 1))]))
        buf[at] = data.draw(st.integers(0, 255))
    try:
        version = version_from_pe(bytes(buf[:data.draw(st.integers(0, len(buf)))]), "fuzz")
    except InputError as err:
        assert err.path == Path("fuzz")
    else:
        assert version is None or version[0].isdigit()


@pytest.mark.parametrize("driver,name,files,found", [
    ("elf", "julia", ["ICl90UHn_libjulia.so.1.13.1", "libjulia-internal.so.1"], "ICl90UHn_libjulia.so.1.13.1"),
    ("elf", "julia", ["libjulia.so.1.13.1", "libjulia.so.1.13", "ICl90UHn_libjulia.so.1"], "libjulia.so.1.13"),
    ("elf", "julia", ["libjulia-1a2b3c4d.so.1.13.1"], "libjulia-1a2b3c4d.so.1.13.1"),  # auditwheel's graft
    ("elf", "julia", ["libjulia-internal-1a2b3c4d.so.1.13"], None),  # that is -ljulia-internal
    ("elf", "gcc", ["libgcc_s.so.1"], None),  # -lgcc is not -lgcc_s
    ("elf", "gcc_s", ["libgcc_s.so.1"], "libgcc_s.so.1"),
    ("darwin", "julia-internal", ["JXacdAlp_libjulia-internal.1.13.dylib"], "JXacdAlp_libjulia-internal.1.13.dylib"),
    ("mingw", "gcc_s", ["libgcc_s_seh-1.dll"], "libgcc_s_seh-1.dll"),
    ("mingw", "ssp", ["libssp-0.dll"], "libssp-0.dll"),
    ("mingw", "julia", ["libjulia.dll"], None),  # LLD's own search finds that one
])
def test_runtime_names(tmp_path: Path, driver: str, name: str, files: list[str], found: str | None) -> None:
    for f in files:
        (tmp_path / f).write_bytes(b"")
    hit = find_runtime_library(driver, name, [tmp_path / "none", tmp_path])
    assert (hit.name if hit else None) == found
    assert runtime_name_pattern(driver, ":libx.so") is None


def test_token_salted_names(tmp_path: Path) -> None:
    for f in ("Xy12-_Ab.so.1.13.1", "Xy12-_Ab-internal.so.1.13", "libz.so.1"):
        (tmp_path / f).write_bytes(b"")
    assert find_runtime_library("elf", "julia", [tmp_path], "Xy12-_Ab") == tmp_path / "Xy12-_Ab.so.1.13.1"
    assert find_runtime_library("elf", "julia-internal", [tmp_path], "Xy12-_Ab") == tmp_path / "Xy12-_Ab-internal.so.1.13"
    assert find_runtime_library("elf", "julia", [tmp_path]) is None  # without the tree's salt: no guess
    assert find_runtime_library("elf", "z", [tmp_path], "Xy12-_Ab") == tmp_path / "libz.so.1"
