"""The LIEF facade: structure, exports, pointers through relocations, and malformed input.

Malformed input of any kind (random bytes, truncated or mutated real images) must end in a pylinkjl
InputError naming the file, or in a Report: never another exception, never a crash.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.lief import open_binary
from pylinkjl.errors import InputError
from pylinkjl.images.decode import read_image
from pylinkjl.images.verify import verify_image

from .realdata import REAL

ELF19 = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Adapt/rUIgN_LJMjr.so"
ELF19_EMPTY = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/AdaptStaticArraysExt/9bCdf_LJMjr.so"
MAC19 = REAL / "alexwjung__dot_julia/darwin-x86_64/compiled/v1.9/Adapt/rUIgN_ucCNj.dylib"
MAC111 = REAL / "subhk__FeastKit.jl/darwin-x86_64/compiled/v1.11/Logging/PWFjL_GDH18.dylib"
SEEDS = [p for p in (ELF19_EMPTY, MAC111, ELF19) if p.is_file()]

pytestmark = pytest.mark.skipif(not ELF19.is_file(), reason="shared/fixtures/real is not available")


def test_elf_structure_and_exports() -> None:
    with open_binary(ELF19) as v:
        assert (v.format, v.arch, v.kind, v.pointer_size) == ("elf", "x86_64", "shared", 8)
        assert v.needed_libraries == ("libjulia.so.1", "libjulia-internal.so.1")
        assert "jl_sysimg_fvars_offsets" in v.exported_symbols() and v.export_count == len(v.exported_symbols())
        assert v.export_address("jl_RTLD_DEFAULT_handle") is None  # imported, not exported
        text = next(s for s in v.sections if s.name == ".text")
        assert text.executable and not text.writable
        assert next(s for s in v.sections if s.name == ".data.rel.ro").writable is False  # RELRO
        assert v.section_at(text.vaddr + 1) == text
        # jl_RTLD_DEFAULT_handle_pointer holds &jl_RTLD_DEFAULT_handle: an R_X86_64_64 against an import
        slot = v.export_address("jl_RTLD_DEFAULT_handle_pointer")
        assert v.read_pointer(slot) is None
        assert "undefined symbol jl_RTLD_DEFAULT_handle" in (v.relocation_problem(slot) or "")
        assert v.bound_symbol(slot) == "jl_RTLD_DEFAULT_handle"
        assert v.undefined_imports()["jl_RTLD_DEFAULT_handle"] is True
        assert v.region_at(v.file_offset(text.vaddr) or 0) == ".text"


def test_macho_structure_exports_and_rebased_pointers() -> None:
    with open_binary(MAC111) as v:
        assert (v.format, v.arch, v.kind) == ("macho", "x86_64", "shared")
        assert v.exported_symbols() == {"jl_image_pointers", "jl_system_image_data", "jl_system_image_size",
                                        "get_jl_RTLD_DEFAULT_handle_addr"}
        assert v.build_version is not None and v.build_version.platform == "macos"
        assert v.install_name and v.install_name.endswith("/Logging/jl_jeIXIu")
        assert v.needed_libraries == ("@rpath/libjulia.1.11.dylib", "@rpath/libjulia-internal.dylib")
        ptrs = v.read_pointers(v.export_address("jl_image_pointers"), 5)
        assert all(p and v.section_at(p) for p in ptrs)
        # the trie and the symbol table agree
        assert v.symbol_address("jl_image_pointers") == v.export_address("jl_image_pointers")
        assert v.code_signature is None


def test_export_trie_agrees_with_lief() -> None:
    import lief

    with open_binary(MAC19) as v:
        mine = v.exported_symbols()
    b = lief.parse(str(MAC19))
    theirs = {s.name.removeprefix("_") for s in b.exported_symbols}
    assert mine == theirs


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        open_binary(tmp_path / "nope.so")
    (tmp_path / "d.so").mkdir()
    with pytest.raises(InputError):
        open_binary(tmp_path / "d.so")
    text = tmp_path / "t.so"
    text.write_text("hello world, this is not a library at all; " * 4)
    with pytest.raises(InputError, match="not an ELF, Mach-O or PE"):
        open_binary(text)


def _check_no_crash(path: Path) -> None:
    """verify_image either reports or raises InputError, and the error names the file."""
    try:
        report = verify_image(path)
    except InputError as err:
        assert str(path) in str(err)
        return
    assert report.checks  # a report, maybe with failures
    json.dumps(report.to_dict())  # serialisable as the CLI prints it


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from([b"\x7fELF\x02\x01\x01", b"\xcf\xfa\xed\xfe", b"MZ", b"\xca\xfe\xba\xbe", b""]),
       body=st.binary(min_size=0, max_size=3000))
def test_random_bytes_never_crash(tmp_path: Path, magic: bytes, body: bytes) -> None:
    path = tmp_path / "random.bin"
    path.write_bytes(magic + body)
    _check_no_crash(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), cut=st.floats(min_value=0.0, max_value=1.0))
def test_truncated_images_never_crash(tmp_path: Path, seed: Path, cut: float) -> None:
    data = seed.read_bytes()
    path = tmp_path / seed.name
    path.write_bytes(data[:int(len(data) * cut)])
    _check_no_crash(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), rnd=st.randoms(use_true_random=False),
       nflips=st.integers(min_value=1, max_value=40), region=st.sampled_from(["head", "any"]))
def test_mutated_images_never_crash(tmp_path: Path, seed: Path, rnd: random.Random, nflips: int,
                                    region: str) -> None:
    data = bytearray(seed.read_bytes())
    limit = min(len(data), 4096) if region == "head" else len(data)
    for _ in range(nflips):
        data[rnd.randrange(limit)] = rnd.randrange(256)
    path = tmp_path / seed.name
    path.write_bytes(bytes(data))
    _check_no_crash(path)
    try:
        read_image(path)
    except InputError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.integers(min_value=0, max_value=0xFFFFFFFF), index=st.integers(min_value=0, max_value=40))
def test_corrupt_table_words_are_reported_not_raised(tmp_path: Path, word: int, index: int) -> None:
    """Any value in any word of the 1.11 tables: the decoder records problems, it does not blow up."""
    path = tmp_path / MAC111.name
    shutil.copyfile(MAC111, path)
    with open_binary(path) as v:
        ptrs = v.read_pointers(v.export_address("jl_image_pointers"), 5)
        targets = [p for p in ptrs if p]
        at = v.file_offset(targets[index % len(targets)] + 4 * (index // len(targets)))
    if at is None:
        return
    with open(path, "r+b") as f:
        f.seek(at)
        f.write(struct.pack("<I", word))
    _check_no_crash(path)


def test_fuzz_seed_files_exist() -> None:
    assert len(SEEDS) == 3 and all(os.path.getsize(p) > 0 for p in SEEDS)
