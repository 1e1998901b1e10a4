"""ELF symbol versions read from real binaries (the 1.10.10 package image, the real 1.13.1 runtime), checked
against llvm-readelf; a need renamed in a copy is what llvm-readelf then reads, hash included; malformed
tables are InputErrors, never crashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pylinkjl.binfmt.symversions import elf_hash, read_symbol_versions, with_needed_version
from pylinkjl.errors import InputError

from .realdata import require_real
from .realruntime import require_runtime
from .toolnames import LLVM_READELF, LLVM_READOBJ, run_tool

GLOB_110 = "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.so"


def readelf_versions(path: Path) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(version definitions, version needs) as llvm-readelf prints them."""
    text = run_tool([LLVM_READELF, "--version-info", str(path)])
    defined = re.findall(r"Rev: \d+\s+Flags: \S+\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)", text)
    needed: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if m := re.search(r"Version: \d+\s+File: (\S+)\s+Cnt:", line):
            needed.append((m.group(1), []))
        elif m := re.search(r"^\s*0x[0-9a-f]+:\s+Name: (\S+)\s+Flags:", line):
            needed[-1][1].append(m.group(1))
    return defined, needed


def real_files() -> list[Path]:
    info = require_runtime("manylinux_2_28_x86_64")
    return [require_real() / GLOB_110, Path(info["libjulia"]), Path(info["libjulia_internal"]), Path(info["image"])]


def test_the_tables_of_real_binaries_read_as_llvm_readelf_reads_them() -> None:
    for path in real_files():
        versions = read_symbol_versions(path.read_bytes(), str(path))
        assert versions is not None
        defined, needed = readelf_versions(path)
        assert list(versions.defined) == defined, path
        assert [(f, list(n)) for f, n in versions.needed] == needed, path
    glob = read_symbol_versions((require_real() / GLOB_110).read_bytes(), GLOB_110)
    assert glob is not None and glob.needed_from("libjulia-internal.so.1.10") == ("JL_LIBJULIA_1.10",)


def test_the_hash_is_the_one_real_tables_store() -> None:
    info = require_runtime("manylinux_2_28_x86_64")
    text = run_tool([LLVM_READOBJ, "--version-info", info["libjulia"]])
    stored = {name: int(h) for h, name in re.findall(r"Hash: (\d+)\n\s+Name: (\S+)", text)}  # the definitions
    assert set(stored) == {"libjulia.so.1.13", "JL_ICl90UHn_1.13"}
    assert all(elf_hash(name) == h for name, h in stored.items()), stored


def test_a_need_renamed_in_a_copy(tmp_path: Path) -> None:
    source = require_real() / GLOB_110
    data = source.read_bytes()
    renamed = with_needed_version(data, str(source), "JL_LIBJULIA_1.10", "JL_ABCDEFGH_1.10")
    assert renamed is not None and len(renamed) == len(data)
    out = tmp_path / "renamed.so"
    out.write_bytes(renamed)
    assert readelf_versions(out)[1] == [("libjulia-internal.so.1.10", ["JL_ABCDEFGH_1.10"])]
    text = run_tool([LLVM_READOBJ, "--version-info", str(out)])
    assert f"Hash: {elf_hash('JL_ABCDEFGH_1.10')}" in text
    assert "jl_RTLD_DEFAULT_handle@JL_ABCDEFGH_1.10" in run_tool([LLVM_READELF, "--dyn-syms", str(out)])
    # nothing needs it, or the name would not fit: no copy
    assert with_needed_version(data, str(source), "JL_LIBJULIA_1.13", "JL_ABCDEFGH_1.13") is None
    assert with_needed_version(data, str(source), "JL_LIBJULIA_1.10", "JL_LIBJULIA_1.1") is None


def test_files_that_are_not_elf_or_are_cut_short() -> None:
    assert read_symbol_versions(b"not an ELF file at all" * 4, "x") is None
    source = require_real() / GLOB_110
    data = source.read_bytes()
    with pytest.raises(InputError):
        read_symbol_versions(data[:0x300], str(source))  # the program headers are there, the tables are not
