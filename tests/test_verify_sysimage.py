"""verify on system images: the four real juliac 1.13.1 libraries from PyPI's ace-jax-coupling 0.2.0 wheels
(Linux x86_64/aarch64 post-processed by auditwheel, macOS arm64 by delocate, Windows x86_64) verify clean and
are recognised as juliac libraries; corrupted copies fail exactly the check that names the problem."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pylinkjl.binfmt.lief import open_binary
from pylinkjl.images.kind import KindInfo
from pylinkjl.images.platformchecks import runtime_library
from pylinkjl.images.syschecks import PE_IMAGE_LIMIT, check_pe_image_size
from pylinkjl.images.verify import verify_image

from .corrupt import copy_to, patch
from .realruntime import require_runtime

PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64", "macosx_11_0_arm64", "win_amd64"]
# jl_system_image_checksum of each real image; the CRC-32C of its heap bytes is the same number
CHECKSUMS = {"manylinux_2_28_x86_64": 0xD5CFE609, "manylinux_2_28_aarch64": 0xCE36BA53,
             "macosx_11_0_arm64": 0xF6664E15, "win_amd64": 0xB8AB9E80}
ENTRY_POINTS = ["etc_abi_version", "etc_couple", "etc_max_order"]
SYSTEM_CHECKS = ["image-kind", "system-image-data", "heap-checksum", "image-unpack", "rtld-consistency",
                 "entry-points"]


def _image(platform: str) -> Path:
    return Path(require_runtime(platform)["image"])


def _failed(path: Path) -> set[str]:
    return {c.name for c in verify_image(path).failed}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_real_juliac_images_verify_clean(platform: str) -> None:
    report = verify_image(_image(platform))
    assert report.ok, report.render(verbose=True)
    for name in SYSTEM_CHECKS:
        assert report[name].passed, report[name]
    assert report.image["kind"] == "juliac-library"
    assert report["entry-points"].numbers["entry_points"] == ENTRY_POINTS
    assert report["heap-checksum"].numbers["stored"] == f"{CHECKSUMS[platform]:#010x}"
    assert report["heap-checksum"].numbers["computed"] == f"{CHECKSUMS[platform]:#010x}"
    assert report["image-unpack"].numbers["points_to"] == "jl_image_unpack_uncomp"
    assert report["rtld-consistency"].numbers["bound_to"] == "jl_RTLD_DEFAULT_handle"
    assert "juliac library" in report.render().splitlines()[0]


def test_grafted_runtime_names_are_recognised() -> None:
    report = verify_image(_image("manylinux_2_28_x86_64"))
    assert report["elf-needed"].passed and "grafted" in report["elf-needed"].reason
    assert runtime_library("ICl90UHn_libjulia.so.1.13.1") == "libjulia"
    assert runtime_library("ICl90UHn_libjulia-internal.so.1.13") == "libjulia-internal"
    assert runtime_library("@rpath/JXacdAlp_libjulia.1.13.1.dylib") == "libjulia"
    assert runtime_library("libjulia-internal-debug.so.1.10") == "libjulia-internal"
    assert runtime_library("libjuliafoo.so") is None and runtime_library("libc.so.6") is None


def test_global_variables_judged_by_program_headers() -> None:
    """auditwheel/patchelf left the aarch64 image's global variables between .data and .bss, in no section but
    inside the writable PT_LOAD the loader maps: data-pointers must pass."""
    path = _image("manylinux_2_28_aarch64")
    with open_binary(path) as v:
        ranges = v.loader_ranges(writable=True)
        assert v.section_at(0x4510D0) is None
        assert any(lo <= 0x4510D0 < hi for lo, hi in ranges)
    assert verify_image(path)["data-pointers"].passed


def _also_signature(platform: str, check: str) -> set[str]:
    """The check that names the problem; on macOS arm64 every changed byte also breaks the code signature."""
    return {check, "macho-code-signature"} if platform.startswith("macosx") else {check}


def _heap_offset(path: Path, delta: int = 0) -> int:
    with open_binary(path) as v:
        addr = v.export_address("jl_system_image_data")
        assert addr is not None
        off = v.file_offset(addr + delta)
        assert off is not None
        return off


@pytest.mark.parametrize("platform", PLATFORMS)
def test_changed_heap_byte_fails_heap_checksum(platform: str, tmp_path: Path) -> None:
    bad = copy_to(_image(platform), tmp_path)
    off = _heap_offset(bad, 100_000)
    old = bad.read_bytes()[off]
    patch(bad, off, bytes([old ^ 0x5A]))
    report = verify_image(bad)
    assert {c.name for c in report.failed} == _also_signature(platform, "heap-checksum"), report.render()
    assert "the heap was changed after it was written" in report["heap-checksum"].reason


@pytest.mark.parametrize("platform", PLATFORMS)
def test_changed_checksum_fails_heap_checksum(platform: str, tmp_path: Path) -> None:
    bad = copy_to(_image(platform), tmp_path)
    with open_binary(bad) as v:
        addr = v.export_address("jl_system_image_checksum")
        assert addr is not None
        off = v.file_offset(addr)
    assert off is not None
    patch(bad, off, struct.pack("<I", CHECKSUMS[platform] ^ 1))
    assert _failed(bad) == _also_signature(platform, "heap-checksum")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_removed_export_fails_loader_exports(platform: str, tmp_path: Path) -> None:
    """Renaming jl_image_unpack in the export table (ELF .dynstr, Mach-O export trie, PE export names) hides it
    from the loader's jl_dlsym."""
    bad = copy_to(_image(platform), tmp_path)
    with open_binary(bad) as v:
        # the Mach-O trie stores names by shared prefixes: the edge label that ends the name is "unpack"
        needle = b"unpack\0" if v.format == "macho" else b"jl_image_unpack\0"
    data = bad.read_bytes()
    at = data.find(needle)
    assert at >= 0
    while at >= 0:  # every table that names it: the export table, and the static symbol table
        patch(bad, at + len(needle) - 2, b"X")
        at = data.find(needle, at + 1)
    report = verify_image(bad)
    failed = {c.name for c in report.failed}
    assert "loader-exports" in failed, report.render()
    # with the symbol gone, the unpacker cannot be found either; a changed byte breaks an arm64 signature
    assert failed <= {"loader-exports", "image-unpack", "macho-code-signature"}, report.render()
    assert "jl_image_unpack" in report["loader-exports"].reason


def test_rtld_getter_bound_elsewhere_fails_rtld_consistency(tmp_path: Path) -> None:
    """Point get_jl_RTLD_DEFAULT_handle_addr's GOT load at the neighbouring GOT slot: the loader's consistency
    check would refuse the image."""
    bad = copy_to(_image("manylinux_2_28_x86_64"), tmp_path)
    with open_binary(bad) as v:
        addr = v.export_address("get_jl_RTLD_DEFAULT_handle_addr")
        assert addr is not None
        code = v.read_bytes(addr, 8)
        assert code[:3] == b"\x48\x8b\x05" and code[7] == 0xC3
        off = v.file_offset(addr + 3)
    assert off is not None
    (disp,) = struct.unpack("<i", code[3:7])
    patch(bad, off, struct.pack("<i", disp + 8))
    report = verify_image(bad)
    assert _failed(bad) == {"rtld-consistency"}, report.render()
    assert "consistency" in report["rtld-consistency"].reason


def test_pe_image_size_limit() -> None:
    """PackageCompiler's warning: Windows does not load a DLL of 2 GiB or more."""
    class _Big:
        file_size = PE_IMAGE_LIMIT

    kind = KindInfo("system-image", "test")
    bad = check_pe_image_size(_Big(), kind)  # type: ignore[arg-type]
    assert bad.failed and "2 GiB" in bad.reason and "--compress-sysimage" in bad.reason
    _Big.file_size = PE_IMAGE_LIMIT - 1
    assert check_pe_image_size(_Big(), kind).passed  # type: ignore[arg-type]


def test_cli_verify_expected_kind() -> None:
    from click.testing import CliRunner

    from pylinkjl.cli import main as cli

    image = str(_image("manylinux_2_28_x86_64"))
    res = CliRunner().invoke(cli, ["verify", image, "--kind", "juliac-library"])
    assert res.exit_code == 0, res.output
    assert "juliac library" in res.output.splitlines()[0]
    res = CliRunner().invoke(cli, ["verify", image, "--kind", "package-image"])
    assert res.exit_code == 7 and "FAIL image-kind: a juliac library" in res.output, res.output
