"""Stub runtime libraries against real LLD: a real object per target, stubs for what it leaves
undefined, a Julia-like link, and the output read back (and loaded, on the host)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pylinkjl.errors import LinkError, LldNotFoundError
from pylinkjl.link.stubs.libraries import build_stub_libraries, plan_stub_libraries
from pylinkjl.process import run_process
from pylinkjl.target import ALL_TARGETS, Target, host_target

from .toolnames import CLANG, LLD, LLVM_AR, LLVM_NM, LLVM_OBJDUMP, compile_c, run_tool

LLD = shutil.which(LLD)
TOOLS = (LLD, CLANG, LLVM_NM, LLVM_AR, LLVM_OBJDUMP)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                reason="needs lld-19, clang-19 and llvm-19 tools")
DATA = Path(__file__).parent / "data" / "stublibs"

# The -l lists of Julia's link lines (docs/julia-linking.md §1.5): 1.13-like Linux (with -z defs and the C
# library), macOS, and Windows 1.10-1.12.
LINUX_LIBS = ["julia", "julia-internal", "gcc", "gcc_s", "atomic", "openlibm", "c"]
MACOS_LIBS = ["julia", "julia-internal"]
WINDOWS_LIBS = ["julia", "julia-internal", "openlibm", "ssp", "gcc_s", "gcc", "msvcrt"]
LINK_NAMES = {"linux": LINUX_LIBS, "macos": MACOS_LIBS, "windows": WINDOWS_LIBS}




def _compile(source: Path, target: Target, out: Path) -> Path:
    return compile_c(source, target, out, "-O2", "-ffreestanding", "-fno-builtin", "-fPIC")


def _undefined(obj: Path) -> list[str]:
    return run_tool([LLVM_NM, "-u", "--format=just-symbols", str(obj)]).split()


def _lines(libs: list[str]) -> list[str]:
    return [f"-l{n}" for n in libs]


def _link(target: Target, archive: Path, stubdir: Path, out: Path, libs: list[str],
          extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    assert LLD is not None
    if target.os == "linux":
        argv = [LLD, "-flavor", "gnu", "-shared", "-z", "defs", "-o", str(out),
                "--whole-archive", str(archive), "--no-whole-archive", "-L", str(stubdir)]
        for n in libs:  # Julia 1.13: -lgcc --as-needed -lgcc_s -latomic -lopenlibm --no-as-needed libc
            argv += {"gcc_s": ["--as-needed", "-lgcc_s"], "c": ["--no-as-needed", "-lc"]}.get(n, [f"-l{n}"])
    elif target.os == "macos":
        v = target.default_macos_version
        argv = [LLD, "-flavor", "darwin", "-arch", target.darwin_arch, "-undefined", "dynamic_lookup",
                "-platform_version", "macos", v, v, "-dylib", "-o", str(out), "-all_load", str(archive),
                "-L", str(stubdir), *_lines(libs)]
    else:
        entry = "__DllMainCRTStartup@12" if target.arch == "i686" else "_DllMainCRTStartup"
        argv = [LLD, "-flavor", "gnu", "-m", target.mingw_emulation, "-Bdynamic", "--enable-auto-image-base",
                "--allow-multiple-definition", *extra, "-shared", "-o", str(out), f"--entry={entry}",
                "--whole-archive", str(archive), "--no-whole-archive", "-L", str(stubdir), *_lines(libs)]
    return argv


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[Target, tuple[Path, Path, list]]:
    """Per target: the object archive, the stub directory and the planned stubs."""
    root = tmp_path_factory.mktemp("stublibs")
    out = {}
    for target in ALL_TARGETS:
        work = root / target.name
        work.mkdir()
        obj = _compile(DATA / "pkg.c", target, work / "pkg.o")
        archive = work / "pkg.a"
        run_tool([LLVM_AR, "rcs", str(archive), str(obj)])
        libs = plan_stub_libraries(target, _undefined(obj), [], LINK_NAMES[target.os])
        assert LLD is not None
        build_stub_libraries(libs, target, LLD, work / "stubs")
        out[target] = (archive, work / "stubs", libs)
    return out


def _by_name(libs: list) -> dict:
    return {lib.link_name: lib for lib in libs}


@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_plan_assigns_julia_split(built: dict, target: Target) -> None:
    libs = _by_name(built[target][2])
    assert list(libs) == LINK_NAMES[target.os]  # one stub per -l, in order, empty ones included
    assert libs["julia"].data == ("jl_nothing",) and libs["julia"].functions == ()
    assert libs["julia-internal"].functions == ("ijl_apply_generic",)
    assert libs["julia-internal"].data == ("jl_small_typeof",)
    if target.os == "linux":
        assert libs["openlibm"].functions == ("sin",)
        assert set(libs["c"].functions) == {"memcpy", "strlen"}
    elif target.os == "windows":
        assert libs["openlibm"].functions == ("sin",)
        assert set(libs["msvcrt"].functions) == {"memcpy", "strlen"}
        assert libs["gcc"].kind == "static"


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.os == "linux"], ids=str)
def test_elf_link_with_z_defs(built: dict, target: Target, tmp_path: Path) -> None:
    import lief

    archive, stubdir, _ = built[target]
    out = tmp_path / "pkg.so"
    run_tool(_link(target, archive, stubdir, out, LINUX_LIBS))
    b = lief.parse(str(out))
    # --as-needed drops libgcc_s/libatomic (nothing used); libc is the real soname.
    assert b.libraries == ["libjulia.so.1", "libjulia-internal.so.1", "libopenlibm.so.4", "libc.so.6"]
    undefined = {s.name for s in b.dynamic_symbols if s.name and s.shndx == 0}
    assert {"ijl_apply_generic", "jl_nothing", "jl_small_typeof", "sin", "memcpy", "strlen"} <= undefined
    # The stubs themselves: typed, sized symbols under the right soname.
    stub = lief.parse(str(stubdir / "libjulia-internal.so"))
    syms = {s.name: s for s in stub.dynamic_symbols if s.exported}
    assert syms["ijl_apply_generic"].type == lief.ELF.Symbol.TYPE.FUNC
    assert syms["jl_small_typeof"].type == lief.ELF.Symbol.TYPE.OBJECT
    assert syms["jl_small_typeof"].size == 1024
    assert [e.name for e in stub.dynamic_entries if e.tag == lief.ELF.DynamicEntry.TAG.SONAME] == \
        ["libjulia-internal.so.1"]
    # Written under the soname too (for the loader), but never for the system C library.
    assert (stubdir / "libjulia.so.1").is_file() and not (stubdir / "libc.so.6").exists()


def test_elf_link_fails_without_stub_symbol(built: dict, tmp_path: Path) -> None:
    """-z defs really checks: a stub set missing a symbol makes LLD fail."""
    target = Target("linux", "x86_64")
    archive, _, _ = built[target]
    libs = plan_stub_libraries(target, ["ijl_apply_generic"], [], LINUX_LIBS)
    assert LLD is not None
    build_stub_libraries(libs, target, LLD, tmp_path / "partial")
    argv = _link(target, archive, tmp_path / "partial", tmp_path / "x.so", LINUX_LIBS)
    done = run_process(argv, timeout=60)
    assert done.returncode != 0 and "undefined symbol: jl_nothing" in done.output


_LOADER = textwrap.dedent("""
    import sys, cffi
    ffi = cffi.FFI()
    ffi.cdef("size_t pkg_copy(char *, const char *); void *pkg_nothing(void);"
             "void *pkg_call(void *, void *, int);")
    lib = ffi.dlopen(sys.argv[1], ffi.RTLD_NOW)
    buf = ffi.new("char[16]")
    n = lib.pkg_copy(buf, b"julia")
    print(n, ffi.string(buf).decode(), lib.pkg_nothing() == ffi.NULL, flush=True)
    if sys.argv[2] == "call-stub":
        lib.pkg_call(ffi.NULL, ffi.NULL, 0)  # only the libjulia-internal stub has it: it traps
""")


def _load(library: Path, mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the loader script in a child Python (a trap or a failed load must not kill the test run)."""
    return subprocess.run([sys.executable, "-c", _LOADER, str(library), mode], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.mark.skipif(sys.platform != "linux", reason="loads an ELF library")
def test_host_elf_loads_with_rtld_now(built: dict, tmp_path: Path) -> None:
    target = host_target()
    archive, stubdir, _ = built[target]
    out = tmp_path / "pkg.so"
    run_tool(_link(target, archive, stubdir, out, LINUX_LIBS))
    env = {**os.environ, "LD_LIBRARY_PATH": str(stubdir)}
    ok = _load(out, "load", env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["5", "julia", "True"]  # real libc, stub libjulia's zeroed data
    trap = _load(out, "call-stub", env)
    assert trap.stdout.split() == ["5", "julia", "True"]
    assert trap.returncode < 0  # killed by SIGILL/SIGTRAP: calling a stub stops the process
    # Without the stub directory the loader cannot find libjulia.so.1.
    env.pop("LD_LIBRARY_PATH")
    missing = _load(out, "load", env)
    assert missing.returncode != 0 and "libjulia.so.1" in missing.stderr


def _binds(dylib: Path) -> dict[str, str]:
    """symbol -> dylib short name (or flat-namespace), from llvm-objdump's bind tables."""
    table = {}
    for line in run_tool([LLVM_OBJDUMP, "--macho", "--bind", "--lazy-bind", str(dylib)]).splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].startswith("__"):
            table[parts[-1]] = parts[-2]
    return table


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.os == "macos"], ids=str)
def test_macho_link_binds_two_level(built: dict, target: Target, tmp_path: Path) -> None:
    import lief

    archive, stubdir, _ = built[target]
    out = tmp_path / "pkg.dylib"
    run_tool(_link(target, archive, stubdir, out, MACOS_LIBS))
    b = lief.parse(str(out))
    loads = [lib.name for lib in b.libraries if lib.command == lief.MachO.LoadCommand.TYPE.LOAD_DYLIB]
    assert loads == ["@rpath/libjulia.1.dylib", "@rpath/libjulia-internal.dylib"]
    table = _binds(out)
    assert table["_jl_nothing"] == "libjulia"  # llvm-objdump drops the ".1.dylib"
    assert table["_jl_small_typeof"] == "libjulia-internal"
    assert table["_ijl_apply_generic"] == "libjulia-internal"
    # The C library and libm are not on macOS's line: bound at load time by -undefined dynamic_lookup.
    assert table["_sin"] == table["_strlen"] == "flat-namespace"


def test_macho_versions_and_system(tmp_path: Path) -> None:
    """1.11-style names (libjulia.1.11.dylib, current 1.11.7) and a libSystem stub binding the C library."""
    import lief

    target = Target("macos", "aarch64")
    obj = _compile(DATA / "pkg.c", target, tmp_path / "pkg.o")
    archive = tmp_path / "pkg.a"
    run_tool([LLVM_AR, "rcs", str(archive), str(obj)])
    libs = plan_stub_libraries(target, _undefined(obj), [], MACOS_LIBS + ["System"], soname_version="1.11",
                               julia_version="1.11.7")
    assert LLD is not None
    build_stub_libraries(libs, target, LLD, tmp_path / "stubs")
    out = tmp_path / "pkg.dylib"
    run_tool(_link(target, archive, tmp_path / "stubs", out, MACOS_LIBS + ["System"]))
    b = lief.parse(str(out))
    loads = {lib.name: (lib.current_version, lib.compatibility_version) for lib in b.libraries
             if lib.command == lief.MachO.LoadCommand.TYPE.LOAD_DYLIB}
    assert loads["@rpath/libjulia.1.11.dylib"] == ([1, 11, 7], [1, 11, 0])
    assert "/usr/lib/libSystem.B.dylib" in loads
    table = _binds(out)
    assert table["_strlen"] == table["_sin"] == table["dyld_stub_binder"] == "libSystem"
    assert table["_jl_nothing"] == "libjulia.1.11"


WINDOWS = [t for t in ALL_TARGETS if t.os == "windows"]
STRICT = ["--disable-auto-import", "--disable-runtime-pseudo-reloc"]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "auto-import"])
@pytest.mark.parametrize("target", WINDOWS, ids=str)
def test_windows_link_imports_from_the_right_dlls(built: dict, target: Target, strict: bool,
                                                  tmp_path: Path) -> None:
    import lief

    archive, stubdir, _ = built[target]
    out = tmp_path / "pkg.dll"
    run_tool(_link(target, archive, stubdir, out, WINDOWS_LIBS, STRICT if strict else []))
    b = lief.parse(str(out))
    imports = {i.name: sorted(e.name for e in i.entries) for i in b.imports}
    assert imports == {
        "libjulia.dll": ["jl_nothing"],
        "libjulia-internal.dll": ["ijl_apply_generic", "jl_small_typeof"],
        "libopenlibm.dll": ["sin"],
        "msvcrt.dll": ["memcpy", "strlen"],
    }
    assert sorted(e.name for e in b.get_export().entries) == \
        ["pkg_call", "pkg_copy", "pkg_nothing", "pkg_sin", "pkg_typeof"]


@pytest.mark.parametrize("target", [t for t in WINDOWS if t.arch != "i686"], ids=str)
def test_windows_data_is_imported_as_data(target: Target, tmp_path: Path) -> None:
    """Data without dllimport links only through auto-import, which needs the DATA import (no thunk)."""
    import lief

    obj = _compile(DATA / "autoimport.c", target, tmp_path / "auto.o")
    libs = plan_stub_libraries(target, _undefined(obj), [], WINDOWS_LIBS)
    assert _by_name(libs)["julia"].data == ("jl_true",)
    assert LLD is not None
    build_stub_libraries(libs, target, LLD, tmp_path / "stubs")
    out = tmp_path / "auto.dll"
    run_tool(_link(target, obj, tmp_path / "stubs", out, WINDOWS_LIBS))
    b = lief.parse(str(out))
    assert {i.name: [e.name for e in i.entries] for i in b.imports} == {"libjulia.dll": ["jl_true"]}
    argv = _link(target, obj, tmp_path / "stubs", tmp_path / "strict.dll", WINDOWS_LIBS, STRICT)
    strict = run_process(argv, timeout=60)
    assert strict.returncode != 0 and "jl_true" in strict.output


def test_windows_i686_stdcall_imports_undecorated(tmp_path: Path) -> None:
    """i686 Win32 API calls (``_GetProcAddress@8``) import the undecorated name from kernel32."""
    import lief

    target = Target("windows", "i686")
    src = tmp_path / "k.c"
    src.write_text(textwrap.dedent("""
        __declspec(dllimport) void *__stdcall GetProcAddress(void *, const char *);
        int __stdcall lstrlenA(const char *);
        __declspec(dllexport) void *f(void *h) { return (char *)GetProcAddress(h, "x") + lstrlenA("y"); }
        int __stdcall _DllMainCRTStartup(void *a, int b, void *c) { return 1; }
    """))
    obj = _compile(src, target, tmp_path / "k.o")
    libs = plan_stub_libraries(target, _undefined(obj), [], ["julia", "kernel32", "msvcrt"])
    assert _by_name(libs)["kernel32"].functions == ("GetProcAddress@8", "lstrlenA@4")
    assert LLD is not None
    build_stub_libraries(libs, target, LLD, tmp_path / "stubs")
    out = tmp_path / "k.dll"
    run_tool(_link(target, obj, tmp_path / "stubs", out, ["julia", "kernel32", "msvcrt"], STRICT))
    b = lief.parse(str(out))
    assert {i.name: sorted(e.name for e in i.entries) for i in b.imports} == \
        {"KERNEL32.dll": ["GetProcAddress", "lstrlenA"]}


def test_lld_failure_is_a_link_error(tmp_path: Path) -> None:
    """A failing LLD surfaces as LinkError (argv, output); nothing half-built is left behind."""
    target = Target("windows", "x86_64")
    libs = plan_stub_libraries(target, ["memcpy"], [], ["msvcrt"])
    bad_def = tmp_path / "fake-lld"  # an "lld" that rejects everything
    bad_def.write_text("#!/bin/sh\necho 'lld: error: no'; exit 1\n")
    bad_def.chmod(0o755)
    with pytest.raises(LinkError) as info:
        build_stub_libraries(libs, target, str(bad_def), tmp_path / "stubs")
    assert info.value.argv[:3] == [str(bad_def), "-flavor", "link"] and "lld: error: no" in info.value.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-lld"]  # no stubs/, no temporary directory
    with pytest.raises(LldNotFoundError):
        build_stub_libraries(libs, target, str(tmp_path / "missing-lld"), tmp_path / "stubs")
