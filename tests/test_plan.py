"""Planner decisions beyond the golden files: --julia-exact, debug builds, conditional arguments, the
line read from a Julia tree, and the macOS platform version sources."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pylinkjl.link.deviations import ALL_DEVIATIONS
from pylinkjl.link.plan import LinkRequest, plan_link
from pylinkjl.target import parse_target

from .fake_julia import make_fake_julia
from .realdata import REAL

ARCHIVES = Path(__file__).parent / "data" / "archives"
ROOT = Path(__file__).resolve().parents[1]
ENV = {"PATH": os.environ.get("PATH", "")}


def plan(target: str, tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    t = parse_target(target)
    request = LinkRequest(inputs=(ARCHIVES / f"1.11-{t.name}.a",), output=tmp_path / f"x.{t.dlext}", target=t,
                          staging_token="S", **kw)  # type: ignore[arg-type]
    return plan_link(request, environ=kw.pop("environ", ENV) if "environ" in kw else ENV)


def test_julia_exact_applies_no_deviation(tmp_path: Path) -> None:
    exact = plan("windows-aarch64", tmp_path, julia_exact=True, julia_version="1.11")
    assert exact.deviations == () and "" in exact.argv  # Julia's empty --verbose argument
    assert exact.argv[exact.argv.index("-m") + 1] == "i386pe"  # Julia's (wrong) emulation for arm64
    assert not any(a.startswith("--entry") for a in exact.argv)
    ours = plan("windows-aarch64", tmp_path, julia_version="1.11")
    assert set(ours.deviations) == {"arm64pe", "explicit-dll-entry", "drop-empty-args"}
    mac = plan("macos-arm64", tmp_path, julia_exact=True, julia_version="1.11")
    assert "-install_name" not in mac.argv and mac.argv.count("") == 2  # --verbose and NO_WHOLE_ARCHIVE


def test_readme_lists_every_deviation() -> None:
    readme = (ROOT / "README.md").read_text()
    for dev in ALL_DEVIATIONS:
        assert f"| `{dev.id}` |" in readme, dev.id


def test_debug_build_and_conditional_arguments(tmp_path: Path) -> None:
    t = parse_target("windows-x86_64")
    home = make_fake_julia(tmp_path / "jl", t, "1.13.0-rc1", debug=True, drop=("dllcrt2.o",))
    for name in ("libjulia-debug.dll", "libjulia-internal-debug.dll"):
        assert (home / "bin" / name).is_file()
    p = plan("windows-x86_64", tmp_path, julia_home=home)
    assert p.line == "1.13.0-rc1" and p.julia is not None and p.julia.debug
    tail = p.argv[p.argv.index("-ljulia-debug"):]
    assert tail == ("-ljulia-debug", "-ljulia-internal-debug", "-lopenlibm", "-lgcc_s", "-lgcc", "-lmsvcrt", "-lssp",
                    "-lmingwex", "-lkernel32")
    (home / "lib/julia/libmingwex.a").unlink()  # the mingwex pair needs that file
    p = plan("windows-x86_64", tmp_path, julia_home=home, stub_missing=True)
    assert "-lmingwex" not in p.argv and "-lssp" in p.argv


def test_release_1_13_is_recognised_by_its_c_runtime_files(tmp_path: Path) -> None:
    t = parse_target("windows-x86_64")
    home = make_fake_julia(tmp_path / "jl", t, "1.13.0-rc1")  # has lib/julia/dllcrt2.o
    assert plan("windows-x86_64", tmp_path, julia_home=home).line == "release-1.13"
    (home / "lib/julia/dllcrt2.o").unlink()
    assert plan("windows-x86_64", tmp_path, julia_home=home, stub_missing=True).line == "1.13.0-rc1"


def test_tree_version_decides_unless_overridden(tmp_path: Path) -> None:
    home = make_fake_julia(tmp_path / "jl", parse_target("linux-x86_64"), "1.10.2")
    assert plan("linux-x86_64", tmp_path, julia_home=home).line == "1.10.1"
    assert plan("linux-x86_64", tmp_path, julia_home=home, julia_version="1.9.3").line == "1.9.0"


def test_tree_of_another_os_is_refused(tmp_path: Path) -> None:
    from pylinkjl.errors import TargetError

    home = make_fake_julia(tmp_path / "jl", parse_target("linux-x86_64"), "1.11.7")
    with pytest.raises(TargetError, match="is a linux install"):
        plan("windows-x86_64", tmp_path, julia_home=home)


@pytest.mark.parametrize("kw,env,expected", [
    ({"macos_version": "12.1"}, {}, ("12.1", "12.1", "--macos-version")),
    ({"macos_version": "12.1", "macos_sdk": "14.2"}, {}, ("12.1", "14.2", "--macos-version")),
    ({}, {"MACOSX_DEPLOYMENT_TARGET": "10.15"}, ("10.15", "10.15", "MACOSX_DEPLOYMENT_TARGET")),
    ({}, {}, ("11.0", "11.0", "default for arm64")),
])
def test_macos_version_sources(kw: dict[str, str], env: dict[str, str], expected: tuple[str, str, str],
                               tmp_path: Path) -> None:
    t = parse_target("macos-arm64")
    request = LinkRequest(inputs=(ARCHIVES / f"1.11-{t.name}.a",), output=tmp_path / "x.dylib", target=t, **kw)
    p = plan_link(request, environ={**ENV, **env})
    assert p.macos is not None and (p.macos.minimum, p.macos.sdk, p.macos.source) == expected
    at = p.argv.index("-platform_version")
    assert p.argv[at:at + 4] == ("-platform_version", "macos", expected[0], expected[1])


def test_macos_version_from_the_julia_tree(tmp_path: Path) -> None:
    """A real libjulia's LC_BUILD_VERSION: the 1.11 pkgimage fixture stands in for it (same load command)."""
    t = parse_target("macos-x86_64")
    home = make_fake_julia(tmp_path / "jl", t, "1.11.7")
    real = REAL / "subhk__FeastKit.jl/darwin-x86_64/compiled/v1.11/Logging/PWFjL_GDH18.dylib"
    if not real.is_file():
        pytest.skip("the shared real fixtures are not available")
    (home / "lib/libjulia.1.12.dylib").write_bytes(real.read_bytes())
    p = plan("macos-x86_64", tmp_path, julia_home=home)
    assert p.macos is not None and (p.macos.minimum, p.macos.sdk) == ("15.0.1", "13.3")
    assert "LC_BUILD_VERSION" in p.macos.source


def test_public_api_names() -> None:
    import pylinkjl

    for name in ("link_image", "link_image_cmd", "link_request", "plan_link", "execute", "verify_image",
                 "relink_many", "read_ji", "Target", "parse_target", "PylinkjlError"):
        assert callable(getattr(pylinkjl, name)) or isinstance(getattr(pylinkjl, name), type), name
