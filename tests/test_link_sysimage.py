"""``link --kind sysimage`` / ``--kind juliac-library``: golden command lines per line x target, real LLD links for
all seven targets from generated system-image archives (``fixturegen --kind sysimage``, compressed on the 1.13
layout) that verify as system images, PackageCompiler's export limit checked before LLD runs, and its 2 GiB
warning."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.binfmt.lief import open_binary
from pylinkjl.errors import InputError, TargetError
from pylinkjl.images.verify import verify_image
from pylinkjl.link.api import link_image, link_request
from pylinkjl.link.host import HostFacts
from pylinkjl.link.plan import LinkRequest, plan_link
from pylinkjl.link.run import DLL_SIZE_LIMIT, result_warnings
from pylinkjl.link.toolchain import line_names, profile
from pylinkjl.resources import data_dir
from pylinkjl.target import ALL_TARGETS, Target, parse_target

from .fake_julia import make_fake_julia
from .test_golden_argv import FAKE_LLD, VERSION_OF_LINE, check, host, normalize, sample
from .toolnames import LLD, LLVM_MC

KINDS = ("sysimage", "juliac-library")
HAS_LLD = shutil.which(LLD) is not None or shutil.which("lld") is not None


# -- golden argv -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("line", line_names())
@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_golden_kind_with_stubs(kind: str, line: str, target: Target, tmp_path: Path) -> None:
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "out" / f"sys.{target.dlext}", target=target,
                          julia_version=line, staging_token="STAGE", kind=kind, library_version="1.2.3")
    plan = plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))
    assert plan.stub_dir is not None and plan.to_dict()["kind"] == kind
    text = normalize(plan.argv[1:], {str(plan.stub_dir): "<STUBS>", str(sample(target)): "<IN>",
                                     str(tmp_path / "out"): "<OUT>", str(data_dir("stubs")): "<PYLINKJL_STUBS>"})
    check(f"{line}/{target.name}.{kind}.stubs.txt", text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("line", line_names())
@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_golden_kind_with_julia_tree(kind: str, line: str, target: Target, tmp_path: Path) -> None:
    home = make_fake_julia(tmp_path / "julia", target, VERSION_OF_LINE[line])
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "out" / f"sys.{target.dlext}", target=target,
                          julia_version=line, julia_home=home, macos_version="13.3.1", macos_sdk="13.3",
                          staging_token="STAGE", kind=kind)
    plan = plan_link(request, host=host(target, tmp_path))
    text = normalize(plan.argv[1:], {str(home): "<JULIA>", str(sample(target)): "<IN>",
                                     str(tmp_path / "out"): "<OUT>", str(data_dir("stubs")): "<PYLINKJL_STUBS>"})
    check(f"{line}/{target.name}.{kind}.tree.txt", text)


def test_kind_additions_per_os() -> None:
    """PackageCompiler's additions as data: Linux soname + rpath, macOS install name, rpaths and versions,
    Windows --export-all-symbols only from Julia 1.11 on."""
    assert profile("1.12", "linux", "pkgimage").argv == profile("1.12", "linux").argv
    linux = profile("1.12", "linux", "sysimage").argv
    assert linux[-4:] == ("-soname", "{soname}", "-rpath", "$ORIGIN:$ORIGIN/julia")
    assert "--export-all-symbols" not in profile("1.10.4", "windows", "sysimage").argv
    for line in ("1.11", "1.12", "release-1.13", "master"):
        assert profile(line, "windows", "sysimage").argv[-1] == "--export-all-symbols"
    assert profile("1.12", "windows", "juliac-library").argv[-2:] == ("--stack", "8388608")
    with pytest.raises(TargetError, match="unknown image kind"):
        profile("1.12", "linux", "bundle")
    with pytest.raises(TargetError, match="unknown image kind"):
        link_request("x.a", "x.so", kind="bundle")


def test_macos_install_name_is_not_doubled(tmp_path: Path) -> None:
    target = parse_target("macos-aarch64")
    for kind in ("pkgimage", "sysimage"):
        request = LinkRequest(inputs=(sample(target),), output=tmp_path / "sys.dylib", target=target, kind=kind,
                              library_version="2.5.0" if kind == "sysimage" else None)
        argv = plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache")).argv
        assert argv.count("-install_name") == 1 and "@rpath/sys.dylib" in argv
    assert argv[argv.index("-compatibility_version") + 1] == "2.5.0" and "-current_version" in argv


# -- the export limit, before LLD runs ----------------------------------------------------------------

def _many_globals(tmp_path: Path, n: int) -> Path:
    """A COFF x86_64 object defining ``n`` global functions (assembled with llvm-mc)."""
    src = tmp_path / "many.s"
    lines = ["  .text"]
    for i in range(n):
        lines += [f"  .globl f{i}", f"f{i}:", "  ret"]
    src.write_text("\n".join(lines) + "\n")
    obj = tmp_path / "many.o"
    subprocess.run([LLVM_MC, "-triple", "x86_64-w64-windows-gnu", "-filetype=obj", str(src), "-o", str(obj)],
                   check=True)
    return obj


def test_export_limit_checked_before_lld(tmp_path: Path) -> None:
    obj = _many_globals(tmp_path, 65536)
    target = parse_target("windows-x86_64")
    request = LinkRequest(inputs=(obj,), output=tmp_path / "sys.dll", target=target, julia_version="1.12",
                          kind="sysimage")
    with pytest.raises(InputError, match="65537 global symbols") as err:  # with the entry stub
        plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))  # FAKE_LLD never runs
    assert err.value.exit_code == 3 and "65535" in str(err.value)
    # Julia 1.10 (no --export-all-symbols) and package images are not limited this way
    for kind, line in (("sysimage", "1.10.4"), ("pkgimage", "1.12")):
        ok = LinkRequest(inputs=(obj,), output=tmp_path / "sys.dll", target=target, julia_version=line, kind=kind)
        plan_link(ok, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))


def test_export_limit_cli_exit_code(tmp_path: Path) -> None:
    obj = _many_globals(tmp_path, 65536)
    from click.testing import CliRunner

    from pylinkjl.cli import main as cli

    res = CliRunner().invoke(cli, ["link", str(obj), "-o", str(tmp_path / "sys.dll"), "--target", "windows-x86_64",
                                   "--kind", "sysimage", "--julia-version", "1.12"])
    assert res.exit_code == 3, res.output
    assert "ordinals stop at 65535" in res.output and not (tmp_path / "sys.dll").exists()


def test_two_gib_dll_warning(tmp_path: Path) -> None:
    target = parse_target("windows-x86_64")
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "sys.dll", target=target, kind="sysimage")
    plan = plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))
    (text,) = result_warnings(plan, DLL_SIZE_LIMIT)
    assert "2 GiB" in text and "--compress-sysimage" in text and "not a valid Win32 application" in text
    assert result_warnings(plan, DLL_SIZE_LIMIT - 1) == ()
    linux = parse_target("linux-x86_64")
    other = plan_link(LinkRequest(inputs=(sample(linux),), output=tmp_path / "sys.so", target=linux, kind="sysimage"),
                      host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))
    assert result_warnings(other, DLL_SIZE_LIMIT) == ()


# -- real links for all seven targets -----------------------------------------------------------------

# every layout, linked with a line that writes it (Windows aarch64 from the 1.11 layout on, as in the verify tests;
# 1.10 as 1.10.0, whose auto-import reaches jl_RTLD_DEFAULT_handle on Windows)
LINK_CASES = [(t.name, layout) for t in ALL_TARGETS for layout in ("1.9", "1.10", "1.11", "1.13")
              if not (t.name == "windows-aarch64" and layout in ("1.9", "1.10"))]
VERSION = {"1.9": "1.9.4", "1.10": "1.10.0", "1.11": "1.12.1", "1.13": "release-1.13"}
JULIA_VERSION = {"1.9": "1.9.4", "1.10": "1.10.0", "1.11": "1.12.1", "1.13": "1.13.0"}


@pytest.fixture(scope="module")
def sysimage_archive(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    root = tmp_path_factory.mktemp("sysimage-archives")
    made: dict[tuple[str, str], Path] = {}

    def get(target_name: str, layout: str) -> Path:
        if (target_name, layout) not in made:
            target = parse_target(target_name)
            spec = FixtureSpec(target, layout=layout, julia_version=JULIA_VERSION[layout], kind="sysimage",  # type: ignore[arg-type]
                               compress=layout == "1.13", blob_size=65536, nshards=1 if layout == "1.9" else 2,
                               cpu_targets=("generic", "haswell,clone_all") if target.arch != "aarch64" else
                               ("generic", "cortex-a57,clone_all"))
            made[(target_name, layout)] = generate_archive(spec, root / f"sys-{layout}-{target.name}.a")
        return made[(target_name, layout)]

    return get


@pytest.mark.skipif(not HAS_LLD, reason="needs LLD")
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("target_name", "layout"), LINK_CASES)
def test_link_system_image_every_target(kind: str, target_name: str, layout: str, tmp_path: Path,
                                        sysimage_archive: Callable[[str, str], Path]) -> None:
    target = parse_target(target_name)
    out = tmp_path / f"libsys.{target.dlext}"
    result = link_image(sysimage_archive(target_name, layout), out, target=target, julia_version=VERSION[layout],
                        kind=kind, library_version="1.4.0")
    assert result.warnings == () and result.plan.profile.kind == kind
    report = verify_image(out, julia_version=VERSION[layout])
    assert report.ok, report.render(verbose=True)
    assert report.image["kind"] in ("system-image", "juliac-library")
    assert report["entry-points"].numbers["entry_points"] == ["pkg_answer", "pkg_call_runtime"]
    if layout == "1.13":
        assert report["heap-checksum"].passed and report["image-unpack"].numbers["points_to"] == "jl_image_unpack_zstd"
        assert report["system-image-data"].numbers["compressed"] is True
    with open_binary(out) as v:
        if target.os == "linux":
            assert v.install_name == "libsys.so"  # DT_SONAME
            runpath = "$ORIGIN:$ORIGIN/julia" if kind == "sysimage" else "$ORIGIN/../lib:$ORIGIN/../lib/julia"
            assert runpath.encode() in out.read_bytes()
        elif target.os == "macos":
            assert v.install_name == "@rpath/libsys.dylib"
            assert (b"@executable_path/julia" if kind == "sysimage" else b"@loader_path/../lib/julia") in \
                out.read_bytes()
        else:  # PackageCompiler exports all symbols (Julia >= 1.11); hidden ones stay out (-exclude-symbols)
            assert ("--export-all-symbols" in result.plan.argv) == (kind == "sysimage" and layout in ("1.11", "1.13"))
            assert "jl_shard_tables" not in v.exported_symbols()
    if target.os == "macos":
        import lief

        binary = lief.parse(str(out))
        assert binary is not None
        ident = next(c for c in binary.commands if str(c.command).endswith("ID_DYLIB"))
        assert tuple(ident.current_version)[:2] == (1, 4) and tuple(ident.compatibility_version)[:2] == (1, 4)


@pytest.mark.skipif(not HAS_LLD, reason="needs LLD")
def test_cli_link_kind_sysimage(tmp_path: Path, sysimage_archive: Callable[[str, str], Path]) -> None:
    from click.testing import CliRunner

    from pylinkjl.cli import main as cli

    out = tmp_path / "sys.so"
    res = CliRunner().invoke(cli, ["link", str(sysimage_archive("linux-x86_64", "1.13")), "-o", str(out),
                                   "--target", "linux-x86_64", "--julia-version", "release-1.13", "--kind", "sysimage",
                                   "--verify"])
    assert res.exit_code == 0, res.output
    assert "sysimage" in res.output.splitlines()[0] and "heap-checksum" in res.output
