"""Real LLD links for all seven targets, read back, and loaded by real loaders: dlopen (RTLD_NOW, in a
subprocess) for the host ELF image, Wine's PE loader for the Windows DLLs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pylinkjl.link.api import link_image
from pylinkjl.process import run_process
from pylinkjl.target import ALL_TARGETS, Target, host_target, parse_target

from .toolnames import CLANG, LLD, LLVM_DLLTOOL

lief = pytest.importorskip("lief")
DATA = Path(__file__).parent / "data" / "loaders"
CLANG = shutil.which(CLANG)
LLD = shutil.which(LLD)
WINE64 = shutil.which("wine64") or ("/usr/lib/wine/wine64" if Path("/usr/lib/wine/wine64").exists() else None)
WINE32 = shutil.which("wine") or next((p for p in ("/usr/lib/wine/wine",) if os.access(p, os.X_OK)), None)


def exported(binary: object) -> set[str]:
    if isinstance(binary, lief.ELF.Binary):
        return {s.name for s in binary.dynamic_symbols if s.exported}
    if isinstance(binary, lief.MachO.Binary):
        return {s.name.lstrip("_") for s in binary.exported_symbols}
    return {e.name.lstrip("_") for e in binary.get_export().entries}


@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_link_every_target(target: Target, clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    out = tmp_path / f"pkg.{target.dlext}"
    result = link_image(clang_objects[target], out, target=target)
    assert result.output == out and out.stat().st_size == result.size > 0
    assert not list(tmp_path.glob(".pylinkjl-*")), "the staging folder must be gone"
    binary = lief.parse(str(out))
    assert binary is not None
    assert {"pkg_answer", "pkg_entry", "jl_image_data"} <= exported(binary)
    arch = {"x86_64": ("X86_64", "AMD64"), "aarch64": ("AARCH64", "ARM64"), "i686": ("I386",)}[target.arch]
    if target.os == "linux":
        assert binary.header.machine_type.name in arch
        assert {"libjulia.so.1.12", "libjulia-internal.so.1.12"} <= set(binary.libraries)  # the default line
    elif target.os == "macos":
        assert binary.header.cpu_type.name in arch
        assert binary.build_version.platform.name == "MACOS"
        assert binary.build_version.minos == ([11, 0, 0] if target.arch == "aarch64" else [10, 14, 0])
        ids = [c for c in binary.commands if c.command.name == "ID_DYLIB"]
        assert ids and ids[0].name == f"@rpath/{out.name}"
        loads = {lib.name for lib in binary.libraries if lib.command.name == "LOAD_DYLIB"}
        assert {"@rpath/libjulia.1.12.dylib", "@rpath/libjulia-internal.dylib"} <= loads
        assert binary.has_code_signature == (target.arch == "aarch64")
    else:
        assert binary.header.machine.name in arch
        assert binary.header.has_characteristic(lief.PE.Header.CHARACTERISTICS.DLL)
        # The entry point is pylinkjl's injected stub: "return TRUE".
        rva = binary.optional_header.addressof_entrypoint
        code = bytes(binary.get_content_from_virtual_address(rva + binary.optional_header.imagebase, 8))
        stub = {"x86_64": b"\xb8\x01\x00\x00\x00\xc3", "i686": b"\xb8\x01\x00\x00\x00\xc2\x0c\x00",
                "aarch64": b"\x20\x00\x80\x52\xc0\x03\x5f\xd6"}[target.arch]
        assert code.startswith(stub)
        dlls = {imp.name for imp in binary.imports}
        assert {"libjulia.dll", "libjulia-internal.dll"} <= dlls


LOAD_SCRIPT = r"""
import sys, cffi
ffi = cffi.FFI()
ffi.cdef("int pkg_answer(void); extern int jl_image_data[4];")
lib = ffi.dlopen(sys.argv[1], ffi.RTLD_NOW)
print(lib.pkg_answer(), list(lib.jl_image_data))
"""


@pytest.mark.skipif(host_target() != parse_target("linux-x86_64"), reason="dlopen needs an x86_64 Linux host")
def test_elf_image_loads_with_rtld_now(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    target = host_target()
    result = link_image(clang_objects[target], tmp_path / "pkg.so", target=target)
    stub_dir = result.plan.stub_dir
    assert stub_dir is not None and (stub_dir / "libjulia.so.1.12").is_file()
    env = dict(os.environ, LD_LIBRARY_PATH=str(stub_dir))
    done = subprocess.run(check=False, args=[sys.executable, "-c", LOAD_SCRIPT, str(result.output)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "[1,", "2,", "3,", "4]"]
    # Without the runtime the loader must refuse it (RTLD_NOW): proves the check is real.
    env.pop("LD_LIBRARY_PATH")
    done = subprocess.run(check=False, args=[sys.executable, "-c", LOAD_SCRIPT, str(result.output)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "libjulia" in done.stderr


def _windows_runtime(target: Target, folder: Path) -> None:
    """Real libjulia.dll / libjulia-internal.dll (tiny C stand-ins) and the loader program."""
    m = target.mingw_emulation
    for name, src in (("libjulia.dll", "runtime_julia.c"), ("libjulia-internal.dll", "runtime_internal.c")):
        obj = folder / f"{src}.o"
        assert run_process([str(CLANG), f"--target={target.triple}", "-c", "-O2", "-ffreestanding",
                            str(DATA / src), "-o", str(obj)]).returncode == 0
        done = run_process([str(LLD), "-flavor", "gnu", "-m", m, "-shared", "-Xlink=-noentry", "-o",
                            str(folder / name), str(obj)])
        assert done.returncode == 0, done.output
    (folder / "k32.def").write_text("LIBRARY KERNEL32.dll\nEXPORTS\nLoadLibraryA@4\nGetProcAddress@8\n"
                                    "ExitProcess@4\n" if target.arch == "i686" else
                                    "LIBRARY KERNEL32.dll\nEXPORTS\nLoadLibraryA\nGetProcAddress\nExitProcess\n")
    if target.arch == "i686":
        # stdcall imports: the objects ask for _LoadLibraryA@4, kernel32 exports LoadLibraryA. llvm-dlltool -k
        # keeps the decorated symbol and drops the @N from the import name (LLD's /lib /kill-at cannot).
        done = run_process([LLVM_DLLTOOL, "-m", "i386", "-d", str(folder / "k32.def"), "-l",
                            str(folder / "libk32.a"), "-k"])
    else:
        done = run_process([str(LLD), "-flavor", "link", "/lib", f"/def:{folder / 'k32.def'}",
                            f"/machine:{target.coff_machine}", f"/out:{folder / 'libk32.a'}"])
    assert done.returncode == 0, done.output
    obj = folder / "winloader.o"
    assert run_process([str(CLANG), f"--target={target.triple}", "-c", "-O2", "-ffreestanding",
                        str(DATA / "winloader.c"), "-o", str(obj)]).returncode == 0
    entry = "_start@0" if target.arch == "i686" else "start"
    done = run_process([str(LLD), "-flavor", "gnu", "-m", m, f"--entry={entry}", "-o", str(folder / "loader.exe"),
                        str(obj), str(folder / "libk32.a")])
    assert done.returncode == 0, done.output


@pytest.fixture(scope="module")
def wineprefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wineprefix")


@pytest.mark.parametrize("arch,wine", [("x86_64", WINE64), ("i686", WINE32)])
def test_windows_dll_loads_under_wine(arch: str, wine: str | None, clang_objects: dict[Target, Path],
                                      tmp_path: Path, wineprefix: Path) -> None:
    if wine is None:
        pytest.skip(f"no Wine for {arch} (wine64 runs x86_64 DLLs; i686 needs Debian's wine32:i386)")
    if not (CLANG and LLD):
        pytest.skip("needs clang-19 and lld-19")
    target = parse_target(f"windows-{arch}")
    link_image(clang_objects[target], tmp_path / "pkg.dll", target=target)
    _windows_runtime(target, tmp_path)
    env = dict(os.environ, WINEDEBUG="-all", WINEPREFIX=str(wineprefix), WINEDLLOVERRIDES="mscoree,mshtml=")
    done = subprocess.run(check=False, args=[wine, "loader.exe"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    # The same loader without the package DLL fails with its own code: the check can fail.
    (tmp_path / "pkg.dll").unlink()
    done = subprocess.run(check=False, args=[wine, "loader.exe"], cwd=tmp_path, env=env, capture_output=True, timeout=300)
    assert done.returncode == 101
