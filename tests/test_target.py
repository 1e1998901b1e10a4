from __future__ import annotations

import pytest

from pylinkjl.errors import TargetError
from pylinkjl.target import (
    ALL_TARGETS,
    OS_OF_FORMAT,
    Target,
    host_os,
    host_target,
    parse_target,
    target_of_format,
)


@pytest.mark.parametrize("text,expected", [
    ("x86_64-linux-gnu", Target("linux", "x86_64")),
    ("aarch64-linux-gnu", Target("linux", "aarch64")),
    ("x86_64-unknown-linux-gnu", Target("linux", "x86_64")),
    ("aarch64-apple-darwin", Target("macos", "aarch64")),
    ("arm64-apple-darwin", Target("macos", "aarch64")),
    ("arm64-apple-darwin20.1.0", Target("macos", "aarch64")),
    ("x86_64-apple-macos10.14", Target("macos", "x86_64")),
    ("x86_64-w64-mingw32", Target("windows", "x86_64")),
    ("i686-w64-mingw32", Target("windows", "i686")),
    ("aarch64-w64-mingw32", Target("windows", "aarch64")),
    ("linux-x86_64", Target("linux", "x86_64")),
    ("macos-arm64", Target("macos", "aarch64")),
    ("windows-x86_64", Target("windows", "x86_64")),
    ("windows-i686", Target("windows", "i686")),
    ("Linux-AArch64", Target("linux", "aarch64")),
])
def test_parse_target_spellings(text: str, expected: Target) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "x86_64", "sparc-linux-gnu", "i686-linux-gnu", "linux-riscv64",
                                  "i686-apple-darwin", "windows"])
def test_unknown_targets_list_valid_ones(text: str) -> None:
    with pytest.raises(TargetError) as err:
        parse_target(text)
    assert "linux-x86_64" in str(err.value) and "x86_64-w64-mingw32" in str(err.value)
    assert err.value.exit_code == 2


def test_every_target_round_trips_through_both_spellings() -> None:
    assert len(ALL_TARGETS) == 7
    for t in ALL_TARGETS:
        assert parse_target(t.name) == t
        assert parse_target(t.triple) == t


def test_target_facts() -> None:
    win64, win32, winarm = (parse_target(f"windows-{a}") for a in ("x86_64", "i686", "aarch64"))
    assert (win64.julia_mingw_emulation, win32.julia_mingw_emulation) == ("i386pep", "i386pe")
    assert winarm.julia_mingw_emulation == "i386pe" and winarm.mingw_emulation == "arm64pe"
    assert win32.dll_entry_symbol == "__DllMainCRTStartup@12" and win64.dll_entry_symbol == "_DllMainCRTStartup"
    mac = parse_target("macos-aarch64")
    assert (mac.darwin_arch, mac.dlext, mac.mangle("jl_x"), mac.default_macos_version) == ("arm64", "dylib", "_jl_x",
                                                                                         "11.0")
    assert win32.mangle("jl_x") == "_jl_x" and win64.mangle("jl_x") == "jl_x"


def test_host_target_is_a_known_target() -> None:
    assert host_target() in ALL_TARGETS


def test_format_and_os_map_both_ways_and_name_each_target() -> None:
    for t in ALL_TARGETS:
        assert OS_OF_FORMAT[t.format] == t.os
        assert target_of_format(t.format, t.arch) == t
    assert target_of_format("macho", "i686") is None  # no 32-bit macOS pkgimages
    assert [parse_target(f"{o}-x86_64").library_search for o in ("linux", "macos", "windows")] == \
        ["elf", "darwin", "mingw"]
    assert [parse_target(f"{o}-x86_64").julia_kernel for o in ("linux", "macos", "windows")] == \
        ["Linux", "Darwin", "WINNT"]
    assert host_os() == host_target().os
