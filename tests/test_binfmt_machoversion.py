"""Build version and install name of Mach-O dylibs: the real Julia 1.9 / 1.11 images, and dylibs
linked by ld64.lld-19 with chosen ``-platform_version`` values (thin and universal), each compared
with ``llvm-objdump --macho --private-headers``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pylinkjl.binfmt.machoversion import (
    BuildVersion,
    build_version_of,
    format_version,
    install_name_of,
    read_build_version,
    read_install_name,
)
from pylinkjl.errors import InputError

from .realdata import REAL
from .toolnames import CLANG, LD64_LLD, LLVM_LIPO, LLVM_OBJDUMP, run_tool

TOOLS = (CLANG, LD64_LLD, LLVM_OBJDUMP, LLVM_LIPO)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs clang-19 and LLVM 19 tools")




def _objdump(path: Path, arch: str | None = None) -> tuple[BuildVersion | None, str | None]:
    """(build version, install name) as llvm-objdump prints them."""
    argv = [LLVM_OBJDUMP, "--macho", "--private-headers", str(path)]
    if arch:
        argv.insert(3, f"--arch={arch}")
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in run_tool(argv).splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == "cmd":
            current = blocks.setdefault(words[1], {})
        elif line.startswith("Load command"):
            current = None
        elif current is not None and len(words) >= 2:
            current.setdefault(words[0], words[1])

    def version(text: str) -> str:
        return "0.0" if text == "n/a" else text

    build = None
    if "LC_BUILD_VERSION" in blocks:
        b = blocks["LC_BUILD_VERSION"]
        build = BuildVersion(b["platform"], version(b["minos"]), version(b["sdk"]))
    elif "LC_VERSION_MIN_MACOSX" in blocks:
        b = blocks["LC_VERSION_MIN_MACOSX"]
        build = BuildVersion("macos", version(b["version"]), version(b["sdk"]))
    name = blocks.get("LC_ID_DYLIB", {}).get("name")
    return build, name


def test_real_julia_dylibs_match_objdump() -> None:
    dylibs = sorted(REAL.glob("*/darwin-*/compiled/*/*/*.dylib"))
    assert len(dylibs) >= 15
    seen = set()
    for dylib in dylibs:
        build, name = read_build_version(dylib), read_install_name(dylib)
        assert (build, name) == _objdump(dylib), dylib
        assert build is not None and build.platform == "macos"
        assert name is not None and "/compiled/v1." in name
        seen.add(build)
    # 1.9 images were linked on macOS 13.3.1, the 1.11 ones on 15.0.1 (with Julia's SDK 13.3)
    assert BuildVersion("macos", "13.3.1", "13.3") in seen and BuildVersion("macos", "15.0.1", "13.3") in seen


@pytest.fixture(scope="session")
def dylibs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("binfmt-machoversion")
    src = out / "leaf.c"
    src.write_text("int leaf(int x) { return x + 1; }\n")
    cases = {  # name: (clang triple, -arch, minos, sdk)
        "arm64": ("arm64-apple-macos11", "arm64", "11.0", "12.0"),
        "x86_64": ("x86_64-apple-macos10.14", "x86_64", "11.0", "12.0"),
        "patch": ("x86_64-apple-macos10.14", "x86_64", "10.14.6", "13.3.1"),
        "old": ("x86_64-apple-macos10.13", "x86_64", "10.13", "10.15.2"),  # LC_VERSION_MIN_MACOSX
    }
    result = {}
    for name, (triple, arch, minos, sdk) in cases.items():
        obj = out / f"{name}.o"
        run_tool([CLANG, f"--target={triple}", "-c", "-ffreestanding", str(src), "-o", str(obj)])
        dylib = out / f"{name}.dylib"
        run_tool([LD64_LLD, "-arch", arch, "-platform_version", "macos", minos, sdk, "-dylib",
              "-install_name", f"@rpath/lib{name}.1.dylib", str(obj), "-o", str(dylib)])
        result[name] = dylib
        result[f"{name}.o"] = obj
    fat = out / "fat.dylib"
    run_tool([LLVM_LIPO, "-create", str(result["patch"]), str(result["arm64"]), "-output", str(fat)])
    result["fat"] = fat
    return result


@pytest.mark.parametrize("name, expected", [
    ("arm64", BuildVersion("macos", "11.0", "12.0")),
    ("x86_64", BuildVersion("macos", "11.0", "12.0")),
    ("patch", BuildVersion("macos", "10.14.6", "13.3.1")),
    ("old", BuildVersion("macos", "10.13", "10.15.2")),
])
def test_lld_outputs(dylibs: dict[str, Path], name: str, expected: BuildVersion) -> None:
    path = dylibs[name]
    assert read_build_version(path) == expected
    assert read_install_name(path) == f"@rpath/lib{name}.1.dylib"
    assert _objdump(path) == (expected, f"@rpath/lib{name}.1.dylib")
    # the object files: clang's own version command, no install name
    obj = dylibs[f"{name}.o"]
    assert (read_build_version(obj), read_install_name(obj)) == _objdump(obj)
    assert read_install_name(obj) is None


def test_universal_dylib_slices(dylibs: dict[str, Path]) -> None:
    fat = dylibs["fat"]
    for arch, objdump_arch, expected in (("x86_64", "x86_64", "10.14.6"), ("arm64", "arm64", "11.0"),
                                         ("aarch64", "arm64", "11.0")):
        build = read_build_version(fat, arch)
        assert build is not None and build.minos == expected
        assert (build, read_install_name(fat, arch)) == _objdump(fat, objdump_arch)
    with pytest.raises(InputError, match="slices x86_64, aarch64: pass the architecture"):
        read_build_version(fat)
    with pytest.raises(InputError, match="no i686 slice"):
        read_install_name(fat, "i686")


def test_wrong_inputs(dylibs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a x86_64 Mach-O file, not arm64"):
        read_build_version(dylibs["x86_64"], "arm64")
    elf = tmp_path / "x.so"
    elf.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(InputError, match="not a Mach-O header"):
        read_build_version(elf)
    empty = tmp_path / "empty.dylib"
    empty.touch()
    with pytest.raises(InputError, match="empty file"):
        read_install_name(empty)
    with pytest.raises(InputError, match="cannot open"):
        read_install_name(tmp_path / "missing.dylib")
    data = dylibs["arm64"].read_bytes()
    with pytest.raises(InputError, match=r"cut\.dylib \(at offset 0x20\): load commands"):
        build_version_of(data[:100], "cut.dylib")
    assert install_name_of(data, "whole.dylib") == "@rpath/libarm64.1.dylib"


def test_format_version() -> None:
    assert format_version(0x000B0000) == "11.0"
    assert format_version(0x000A0E06) == "10.14.6"
    assert format_version(0x000F0001) == "15.0.1"
    assert format_version(0) == "0.0"
