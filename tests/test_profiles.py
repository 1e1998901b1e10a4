"""The Julia profiles (toolchains/*.toml) resolve versions to lines as docs/julia-linking.md §1.3-§1.5 says."""

from __future__ import annotations

import pytest

from pylinkjl.errors import TargetError
from pylinkjl.link.toolchain import Conditional, line_names, profile, resolve_line
from pylinkjl.versions import JuliaVersion


@pytest.mark.parametrize("version,line", [
    ("1.9.0", "1.9.0"), ("1.9.4", "1.9.0"), ("1.9.0-rc2", "1.9.0"),
    ("1.10.0", "1.10.0"), ("1.10.1", "1.10.1"), ("1.10.3", "1.10.1"), ("1.10.4", "1.10.4"), ("1.10.10", "1.10.4"),
    ("1.10", "1.10.4"),  # a minor version alone means its newest release
    ("1.11.0", "1.11"), ("1.11.7", "1.11"), ("1.12.0", "1.12"), ("1.12.6", "1.12"),
    ("1.13.0-DEV", "1.13.0-rc1"), ("1.13.0-rc1", "1.13.0-rc1"), ("1.13.0", "release-1.13"), ("1.13.2", "release-1.13"),
    ("1.14.0-DEV", "master"), ("release-1.13", "release-1.13"), ("master", "master"),
])
def test_version_to_line(version: str, line: str) -> None:
    assert resolve_line(version) == line


def test_default_is_1_12() -> None:
    assert resolve_line(None) == "1.12"


@pytest.mark.parametrize("bad", ["1.8.5", "0.7", "banana", "1.x"])
def test_bad_versions(bad: str) -> None:
    with pytest.raises(TargetError):
        resolve_line(bad)


def test_version_order() -> None:
    order = ["1.13.0-DEV", "1.13.0-rc1", "1.13.0", "1.13.1", "1.14.0-DEV"]
    parsed = [JuliaVersion.parse(v) for v in order]
    assert sorted(parsed, key=JuliaVersion.sort_key) == parsed


def test_every_line_has_a_profile_for_every_os() -> None:
    for line in line_names():
        for os_ in ("linux", "macos", "windows"):
            p = profile(line, os_)
            assert p.flavor == ("darwin" if os_ == "macos" else "gnu")
            assert "{out}" in p.argv and ("{inputs}" in p.argv or "{force_load_inputs}" in p.argv)


def test_profile_facts_from_the_reference() -> None:
    # -L<libdir> only in 1.9.0 / 1.10.0 (PR #51698 dropped it in 1.10.1)
    assert "-L{libdir}" in profile("1.10.0", "linux").argv and "-L{libdir}" not in profile("1.10.1", "linux").argv
    # 1.10.4 added --disable-auto-import --disable-runtime-pseudo-reloc on Windows
    assert "--disable-auto-import" not in profile("1.10.1", "windows").default_args
    assert "--disable-runtime-pseudo-reloc" in profile("1.10.4", "windows").default_args
    # 1.13.0-rc1 dropped -lssp outside debug builds
    assert "-lssp" in profile("1.12", "windows").argv and "-lssp" not in profile("1.13.0-rc1", "windows").argv
    assert any(isinstance(t, Conditional) and t.args == ("-lssp",) for t in profile("1.13.0-rc1", "windows").argv)
    # release-1.13: explicit C runtime, -z defs on Linux, -e on Windows, -force_load on macOS
    assert profile("release-1.13", "linux").default_args[-2:] == ("-z", "defs")
    assert "-e" in profile("release-1.13", "windows").default_args
    assert "{force_load_inputs}" in profile("release-1.13", "macos").argv
    assert "-syslibroot" in profile("master", "macos").default_args
    assert "-syslibroot" not in profile("release-1.13", "macos").default_args
