"""verify / read_image on the real Julia pkgimages in shared/fixtures/real (Linux 1.9, macOS 1.9 and 1.11).

Every real image must verify clean; corrupted copies must fail exactly the check that names the problem.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pylinkjl.binfmt.lief import open_binary
from pylinkjl.errors import InputError, TargetError
from pylinkjl.images.decode import read_image
from pylinkjl.images.layout import layout_of_version
from pylinkjl.images.verify import verify_image

from .corrupt import copy_to, patch
from .realdata import REAL
from .toolnames import LLVM_OBJCOPY

IMAGES = sorted(p for p in REAL.glob("*/*/compiled/*/*/*") if p.suffix in (".so", ".dylib"))
LINUX19 = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9"
MAC19 = REAL / "alexwjung__dot_julia/darwin-x86_64/compiled/v1.9"
MAC111 = REAL / "subhk__FeastKit.jl/darwin-x86_64/compiled/v1.11"

pytestmark = pytest.mark.skipif(not IMAGES, reason="shared/fixtures/real is not available")


def _rel(p: Path) -> str:
    return str(p.relative_to(REAL))




def _failed(path: Path) -> set[str]:
    return {c.name for c in verify_image(path).failed}


@pytest.mark.parametrize("image", IMAGES, ids=_rel)
def test_real_images_verify_clean(image: Path) -> None:
    report = verify_image(image)
    assert report.ok, report.render(verbose=True)
    assert report["function-pointers"].passed and report["target-count"].passed


def test_real_image_facts() -> None:
    """What the fixtures' README says about them, read back through the decoder."""
    info = read_image(LINUX19 / "Adapt/rUIgN_LJMjr.so")
    assert info.layout == "1.9" and info.format == "elf" and info.arch == "x86_64"
    assert [t.name for t in info.targets] == ["broadwell"] and info.targets[0].nwords == 11
    assert (info.nfuncs, info.ngvars) == (2, 5)
    assert info.clones_per_target == [2]
    info = read_image(MAC111 / "Base64/D7K0n_GDH18.dylib")
    assert info.layout == "1.11" and "get_jl_RTLD_DEFAULT_handle_addr" in info.layout_reason
    assert (info.nshards, info.nfuncs, info.ngvars, info.header_version) == (1, 7, 41, 1)
    assert info.targets[0].name == "icelake-client"
    assert read_image(MAC19 / "Adapt/rUIgN_ucCNj.dylib").targets[0].name == "skylake"


def test_two_builds_of_one_package_decode_alike() -> None:
    a = read_image(LINUX19 / "Preferences/pWSk8_LJMjr.so")
    b = read_image(LINUX19 / "Preferences/pWSk8_0kJBY.so")
    assert (a.nfuncs, a.ngvars, a.target_list) == (b.nfuncs, b.ngvars, b.target_list)


GLOB110 = REAL / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.so"


@pytest.mark.parametrize("strip", [False, True], ids=["symbols", "stripped"])
def test_real_1_10_10_image_has_9_pointer_shards_and_the_getter(strip: bool, tmp_path: Path) -> None:
    """1.10.4+ images define get_jl_RTLD_DEFAULT_handle_addr but keep the 1.10 shard tables; the layout
    comes from the tables, so it is found with and without the static symbol table."""
    img = GLOB110
    if strip:
        img = tmp_path / "stripped.so"
        subprocess.run([LLVM_OBJCOPY, "--strip-all", str(GLOB110), str(img)], check=True)
        with open_binary(img) as view:
            assert view.symbol_address("jl_fvar_base_0") is None
    info = read_image(img, julia_version="1.10.10")
    assert (info.layout, info.rtld_marker, info.problems) == ("1.10", "get_jl_RTLD_DEFAULT_handle_addr", {})
    assert "9-pointer" in info.layout_reason
    assert verify_image(img).ok
    assert _failed(img if strip else GLOB110) == set()
    report = verify_image(img, julia_version="1.10.3")
    assert {c.name for c in report.failed} == {"julia-line"} and "1.10.4" in report["julia-line"].reason


def test_line_of_version() -> None:
    assert [layout_of_version(v) for v in ("1.9.0", "1.10.4", "1.11.7", "1.12.1", "1.13.0-rc1", "release-1.13",
                                          "master", "1.14.0-DEV")] == [
        "1.9", "1.10", "1.11", "1.11", "1.13", "1.13", "1.13", "1.13"]
    with pytest.raises(TargetError):
        layout_of_version("1.8.5")
    with pytest.raises(TargetError):
        layout_of_version("banana")


# -- corrupted copies ----------------------------------------------------------------------------------

def test_linux19_offset_out_of_text_fails_function_pointers(tmp_path: Path) -> None:
    img = copy_to(LINUX19 / "Preferences/pWSk8_LJMjr.so", tmp_path)
    with open_binary(img) as view:
        at = view.file_offset(view.export_address("jl_sysimg_fvars_offsets") + 4 * 3)
    assert at is not None
    patch(img, at, struct.pack("<i", 0x200000))  # far past .text, into .data
    assert _failed(img) == {"function-pointers"}
    assert "function pointer" in verify_image(img)["function-pointers"].reason


def test_linux19_gvar_offset_into_rodata_fails_data_pointers(tmp_path: Path) -> None:
    img = copy_to(LINUX19 / "Preferences/pWSk8_LJMjr.so", tmp_path)
    with open_binary(img) as view:
        base = view.export_address("jl_sysimg_gvars_base")
        rodata = next(s for s in view.sections if s.name == ".rodata")
        at = view.file_offset(view.export_address("jl_sysimg_gvars_offsets") + 4 * 5)
    assert at is not None
    patch(img, at, struct.pack("<i", rodata.vaddr - base))
    assert _failed(img) == {"data-pointers"}


def test_linux19_removed_export_fails_loader_exports(tmp_path: Path) -> None:
    img = copy_to(LINUX19 / "Adapt/rUIgN_LJMjr.so", tmp_path)
    with open_binary(img) as view:
        dynstr = next(s for s in view.sections if s.name == ".dynstr")
        raw = view.read_bytes(dynstr.vaddr, dynstr.size)
        at = view.file_offset(dynstr.vaddr + raw.index(b"\0jl_dispatch_fvars_idxs\0") + 1)
    assert at is not None
    patch(img, at, b"xx")
    assert _failed(img) == {"loader-exports"}


def test_linux19_wrong_target_count_fails_target_count(tmp_path: Path) -> None:
    """jl_dispatch_fvars_idxs holds one record; make it claim to hold two: the walk runs off its end."""
    img = copy_to(LINUX19 / "DataStructures/xKiwJ_LJMjr.so", tmp_path)
    with open_binary(img) as view:
        tids = view.file_offset(view.export_address("jl_dispatch_target_ids"))
    assert tids is not None
    # a second, minimal target record would not fit: instead append one record to the clone table's walk by
    # telling the decoder the list has 2 targets with the first record reused (re-encode in place)
    from pylinkjl.binfmt.targetlist import decode_target_list, encode_target_list

    raw = img.read_bytes()[tids:tids + 117]
    targets, _ = decode_target_list(raw)
    two = encode_target_list([targets[0].__class__("x", 0, 0, 0, 0), targets[0].__class__("y", 0, 0, 0, 0)])
    patch(img, tids, two)  # 2 records with no feature words (the 1.9 x86 list stores 11: target-list fails too)
    failed = _failed(img)
    assert "target-count" in failed
    assert failed <= {"target-count", "target-list"}


def test_mac111_fvar_pointer_into_data_fails_function_pointers(tmp_path: Path) -> None:
    img = copy_to(MAC111 / "Base64/D7K0n_GDH18.dylib", tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        table = view.read_pointers(info.table_symbols["jl_image_pointers"], 2)[1]
        fptrs = view.read_pointer(table + 8)  # shard 0, fvar_ptrs
        at = view.file_offset(fptrs + 8 * 2)
        data = next(s for s in view.sections if s.name == "__data")
    assert at is not None
    patch(img, at, struct.pack("<Q", data.vaddr + 64))  # rebased in place: the value is the address
    assert _failed(img) == {"function-pointers"}
    assert "__data" in verify_image(img)["function-pointers"].reason


def test_mac111_header_version_fails_image_header(tmp_path: Path) -> None:
    img = copy_to(MAC111 / "Base64/D7K0n_GDH18.dylib", tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        header = view.read_pointer(info.table_symbols["jl_image_pointers"])
        at = view.file_offset(header)
    assert at is not None
    patch(img, at, struct.pack("<I", 2))
    assert _failed(img) == {"image-header"}
    assert "version is 2" in verify_image(img)["image-header"].reason


def test_mac19_removed_export_from_trie_fails_loader_exports(tmp_path: Path) -> None:
    img = copy_to(MAC19 / "Adapt/rUIgN_ucCNj.dylib", tmp_path)
    blob = img.read_bytes()
    with open_binary(img) as view:
        trie = view._export_trie()
    start = blob.index(trie)
    edge = trie.index(b"offsets\0")  # the edge shared by the *_offsets symbols
    patch(img, start + edge, b"OFFSETS")
    failed = verify_image(img)
    assert {c.name for c in failed.failed} == {"loader-exports"}
    assert "not exported" in failed["loader-exports"].reason


# -- CLI -----------------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pylinkjl.cli.verify import verify_command; verify_command(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True,
                          timeout=120,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_cli_passes_and_reports(tmp_path: Path) -> None:
    done = _cli(str(MAC111 / "Logging/PWFjL_GDH18.dylib"))
    assert done.returncode == 0, done.stderr
    assert "verification passed" in done.stdout and "Julia 1.11-1.12" in done.stdout
    done = _cli(str(LINUX19 / "Adapt/rUIgN_LJMjr.so"), "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["ok"] and data["image"]["line"] == "1.9"
    assert {c["status"] for c in data["checks"]} <= {"passed", "not_applicable"}


def test_cli_failure_exit_codes(tmp_path: Path) -> None:
    img = copy_to(LINUX19 / "Adapt/rUIgN_LJMjr.so", tmp_path)
    done = _cli(str(img), "--target", "macos-x86_64")
    assert done.returncode == 7
    assert "FAIL image-format" in done.stdout and "error:" in done.stderr
    done = _cli(str(img), "--target", "macos-x86_64", "--json")
    assert done.returncode == 7 and json.loads(done.stdout)["ok"] is False
    junk = tmp_path / "junk.so"
    junk.write_bytes(os.urandom(4096))
    done = _cli(str(junk))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert "junk.so" in done.stderr
    done = _cli(str(tmp_path / "missing.so"))
    assert done.returncode == 3 and "cannot open" in done.stderr


# -- malformed input: clear errors, never a crash ---------------------------------------------------------

def test_not_images_are_named(tmp_path: Path) -> None:
    arch = tmp_path / "x.a"
    arch.write_bytes(b"!<arch>\n" + bytes(100))
    with pytest.raises(InputError, match="archive"):
        verify_image(arch)
    short = tmp_path / "short.so"
    short.write_bytes(b"\x7fELF")
    with pytest.raises(InputError, match="too short"):
        verify_image(short)
    truncated = tmp_path / "trunc.so"
    truncated.write_bytes((LINUX19 / "Adapt/rUIgN_LJMjr.so").read_bytes()[:3000])
    with pytest.raises(InputError):
        verify_image(truncated)
