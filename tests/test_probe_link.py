"""Hostile probes of linking against the real Julia 1.13.1 runtime trees (tests/realruntime.py) and of the
system-image / juliac-library kinds: each test is a case that once went wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pylinkjl.errors import LinkError
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from .realruntime import require_runtime
from .toolnames import LLVM_READOBJ, compile_c, run_tool

ARCHIVES = Path(__file__).parent / "data" / "archives"


def _windows_home() -> Path:
    return Path(require_runtime("win_amd64")["bindir"]).parent


def _coff_imports(image: Path) -> dict[str, set[str]]:
    imports: dict[str, set[str]] = {}
    dll = ""
    for line in run_tool([LLVM_READOBJ, "--coff-imports", str(image)]).splitlines():
        line = line.strip()
        if line.startswith("Name:"):
            dll = line.split(None, 1)[1]
        elif line.startswith("Symbol:"):
            imports.setdefault(dll, set()).add(line.split()[1])
    return imports


def test_windows_real_tree_stubs_never_take_the_runtime_s_symbols(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The real Windows tree lacks the MinGW C runtime, so --stub-missing is needed; the stubs made for the
    missing libraries (msvcrt-os, kernel32, ...) must not claim the symbols the tree's own libjulia and
    libjulia-internal provide. Once they did: every jl_* symbol was assigned to a stub msvcrt.dll with a
    warning each, and a symbol the real runtime does not export linked as an import from msvcrt.dll (rc 0,
    verify passed; the DLL cannot load). It must be LLD's undefined-symbol error instead."""
    home = _windows_home()
    with caplog.at_level("WARNING", logger="pylinkjl"):
        result = link_image(ARCHIVES / "1.13-windows-x86_64.a", tmp_path / "sys.dll", target="windows-x86_64",
                            julia_home=home, stub_missing=True, kind="sysimage")
    assert not [r for r in caplog.records if "assigning it to" in r.getMessage()]
    imports = _coff_imports(result.output)
    assert "jl_RTLD_DEFAULT_handle" in imports["libjulia-internal.dll"]
    assert not any(n.startswith(("jl_", "ijl_")) for n in imports.get("msvcrt.dll", set()))

    source = tmp_path / "extra.c"
    source.write_text("__declspec(dllimport) extern void jl_no_such_function(void);\n"
                      "void pkg_extra(void) { jl_no_such_function(); }\n")
    extra = compile_c(source, parse_target("windows-x86_64"), tmp_path / "extra.o")
    with pytest.raises(LinkError) as err:
        link_image([ARCHIVES / "1.13-windows-x86_64.a", extra], tmp_path / "bad.dll", target="windows-x86_64",
                   julia_home=home, stub_missing=True, kind="sysimage")
    assert "jl_no_such_function" in str(err.value)
    assert not (tmp_path / "bad.dll").exists()


def test_advice_names_a_dllimport_symbol_not_the_declspec(tmp_path: Path) -> None:
    """LLD's MinGW driver says ``undefined symbol: __declspec(dllimport) jl_no_such_function`` for a
    dllimport reference; the advice used to name `__declspec(dllimport)` as the missing symbol."""
    source = tmp_path / "extra.c"
    source.write_text("__declspec(dllimport) extern void jl_no_such_function(void);\n"
                      "void pkg_extra(void) { jl_no_such_function(); }\n")
    extra = compile_c(source, parse_target("windows-x86_64"), tmp_path / "extra.o")
    with pytest.raises(LinkError) as err:
        link_image([ARCHIVES / "1.13-windows-x86_64.a", extra], tmp_path / "bad.dll", target="windows-x86_64",
                   julia_home=_windows_home(), stub_missing=True)
    assert "__declspec(dllimport) jl_no_such_function" in err.value.output
    advice = " ".join(err.value.advice)
    assert "`jl_no_such_function` is referenced" in advice and "`__declspec" not in advice


@pytest.mark.parametrize("version", ["garbage", "1.2.3.4", "65536.0", "1.2.300", "", "1..2", " 1.2", "1.2.3;"])
def test_a_bad_library_version_is_a_usage_error(tmp_path: Path, version: str) -> None:
    """--library-version went to LLD as given: ld64.lld failed (exit 5, 'malformed version') for macOS, and
    it was ignored for the other OSes. It is a usage error (rc 2) before anything runs."""
    from click.testing import CliRunner

    from pylinkjl.cli import main

    for target in ("macos-arm64", "linux-x86_64"):
        done = CliRunner().invoke(main, ["link", str(ARCHIVES / "1.13-macos-aarch64.a"), "-o",
                                         str(tmp_path / "sys.dylib"), "--target", target, "--kind", "sysimage",
                                         "--library-version", version])
        assert done.exit_code == 2, done.output
        assert "--library-version" in done.output and "Traceback" not in done.output
    assert not list(tmp_path.iterdir())


def test_library_version_is_refused_for_a_package_image(tmp_path: Path) -> None:
    from pylinkjl.errors import TargetError

    with pytest.raises(TargetError, match="package image"):
        link_image(ARCHIVES / "1.13-macos-aarch64.a", tmp_path / "pkg.dylib", target="macos-arm64",
                   library_version="1.2.3")


def test_the_largest_library_version_links(tmp_path: Path) -> None:
    from .toolnames import LLVM_OBJDUMP

    out = link_image(ARCHIVES / "1.13-macos-aarch64.a", tmp_path / "sys.dylib", target="macos-arm64",
                     kind="sysimage", library_version="65535.255.255").output
    text = run_tool([LLVM_OBJDUMP, "--macho", "--dylib-id", "--dylibs-used", str(out)])
    assert "current version 65535.255.255" in text


@pytest.mark.parametrize("kind,archive_kind", [("sysimage", "pkgimage"), ("juliac-library", "pkgimage"),
                                               ("pkgimage", "sysimage")])
def test_link_verify_requires_the_kind_that_was_linked(tmp_path: Path, kind: str, archive_kind: str) -> None:
    """`link --kind sysimage --verify` of a package image's archive said 'verification passed' and installed a
    "system image" whose heap starts with a cache header (and `--kind pkgimage --verify` a system image's):
    verify must find the kind that was linked, and the output stays as it was."""
    from fixturegen.build import generate_archive
    from fixturegen.spec import FixtureSpec
    from pylinkjl.errors import VerificationError
    from pylinkjl.target import parse_target

    archive = (ARCHIVES / "1.13-linux-x86_64.a" if archive_kind == "pkgimage" else generate_archive(
        FixtureSpec(parse_target("linux-x86_64"), layout="1.13", kind="sysimage"), tmp_path / "sys-o.a"))
    out = tmp_path / "out.so"
    out.write_bytes(b"the old image")
    with pytest.raises(VerificationError) as err:
        link_image(archive, out, target="linux-x86_64", julia_version="release-1.13", kind=kind, verify=True)
    report = err.value.verify
    assert report is not None and [c.name for c in report.failed] == ["image-kind"], report.render()
    assert out.read_bytes() == b"the old image"
    ok = link_image(archive, out, target="linux-x86_64", julia_version="release-1.13",
                    kind="pkgimage" if archive_kind == "pkgimage" else "sysimage", verify=True)
    assert ok.verify is not None and ok.verify.ok


def test_a_foreign_ji_names_the_output_not_the_removed_staging_file(tmp_path: Path) -> None:
    """`link --ji OTHER.ji` said '<out dir>/.pylinkjl-<token>/pkg.so: does not belong to OTHER.ji', naming a
    staged file that is gone when the message is read."""
    import shutil

    from pylinkjl.errors import InputError

    from .realdata import require_real

    ji = require_real() / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.ji"
    own = tmp_path / ji.name
    shutil.copyfile(ji, own)
    out = tmp_path / "pkg.so"
    with pytest.raises(InputError) as err:
        link_image(ARCHIVES / "1.13-linux-x86_64.a", out, target="linux-x86_64", julia_version="release-1.13",
                   ji=own)
    assert err.value.path == out and "the new image does not belong" in str(err.value)
    assert ".pylinkjl-" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [ji.name]


@pytest.mark.parametrize("kind", ["sysimage", "juliac-library"])
def test_ji_with_a_system_image_kind_is_a_usage_error_before_lld(tmp_path: Path, kind: str) -> None:
    """`link --kind sysimage --ji X.ji` ran LLD and then failed the pairing (exit 3): a system image has no
    .ji. It is a usage error (rc 2) before anything runs."""
    from click.testing import CliRunner

    from pylinkjl.cli import main

    ji = tmp_path / "x.ji"
    ji.write_bytes(b"not looked at")
    done = CliRunner().invoke(main, ["link", str(ARCHIVES / "1.13-linux-x86_64.a"), "-o", str(tmp_path / "s.so"),
                                     "--target", "linux-x86_64", "--kind", kind, "--ji", str(ji), "-v"])
    assert done.exit_code == 2, done.output
    assert "has no .ji" in done.output and "running:" not in done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ji"]


def _coff_globals(tmp_path: Path, n: int) -> Path:
    from .test_link_sysimage import _many_globals

    return _many_globals(tmp_path, n)


def test_export_limit_counts_the_entry_stub_pylinkjl_adds(tmp_path: Path) -> None:
    """65,535 globals passed the check before LLD, but the entry stub pylinkjl injects exports
    _DllMainCRTStartup too: LLD failed 'too many exported symbols (got 65536, max 65535)', exit 5. The
    check counts it (exit 3, before LLD)."""
    from pylinkjl.errors import InputError

    obj = _coff_globals(tmp_path, 65535)
    with pytest.raises(InputError, match="65536 global symbols") as err:
        link_image(obj, tmp_path / "sys.dll", target="windows-x86_64", julia_version="1.12", kind="sysimage")
    assert err.value.exit_code == 3 and "entry stub" in str(err.value)
    assert not (tmp_path / "sys.dll").exists()


def test_a_dll_with_exactly_65535_exports_verifies(tmp_path: Path) -> None:
    """LLD numbers exports 1..65535 and writes a DLL with 65,535 of them (it refuses 65,536); verify's
    pe-export-count failed it ('65535 exports: PE export ordinals stop at 65535')."""
    from pylinkjl.images.verify import verify_image

    obj = _coff_globals(tmp_path, 65534)  # + the entry stub's _DllMainCRTStartup
    out = link_image(obj, tmp_path / "sys.dll", target="windows-x86_64", julia_version="1.12", kind="sysimage").output
    check = verify_image(out)["pe-export-count"]
    assert check.passed, check.reason
    assert check.numbers["exports"] == 65535


def _linux_home() -> Path:
    return Path(require_runtime("manylinux_2_28_x86_64")["libjulia"]).parents[1]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting tmpfs needs root (CI runs as root)")
def test_a_full_cache_names_its_file_system(tmp_path: Path) -> None:
    """The link-time copy of the real libjulia-internal (its soname rewritten) does not fit into a full
    PYLINKJL_CACHE_DIR: the error said only 'cannot write the stub-library cache: No space left on device',
    naming no path, no mount point and no free space (what every other full disk says)."""
    import subprocess
    import sys

    point = tmp_path / "full"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], check=True)
    try:
        done = subprocess.run([sys.executable, "-m", "pylinkjl", "link", str(ARCHIVES / "1.13-linux-x86_64.a"),
                               "-o", str(tmp_path / "sys.so"), "--julia-home", str(_linux_home()), "--stub-missing",
                               "--kind", "sysimage"], capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PYLINKJL_CACHE_DIR": str(point / "cache")})
        assert done.returncode == 9, done.stderr
        assert f"no space left on {point}" in done.stderr and str(point / "cache") in done.stderr, done.stderr
        assert not [p for p in (point / "cache" / "stubs").iterdir()]  # no half-built folder is left
        assert not (tmp_path / "sys.so").exists()
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)
