"""Linking against the real Julia 1.13.1 runtime trees (tests/realruntime.py): juliac bundles packed into
wheels, with no include/julia/julia_version.h, grafted library names (``ICl90UHn_libjulia.so.1.13.1``)
and, on Windows, nothing but ``bin/*.dll``. The generated 1.13-layout archives (the only layout the 1.13
runtime accepts) are linked with every Julia line that makes that layout; the ELF is dlopen'ed with
RTLD_NOW against the real libraries and passes Julia's RTLD-handle consistency check; the DLL is loaded
by Wine's PE loader next to the real DLLs and passes the same check."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from pylinkjl.binfmt.loadname import install_name_slot, soname_slot
from pylinkjl.errors import MissingLibraryError
from pylinkjl.link.api import link_image, link_request
from pylinkjl.link.plan import plan_link
from pylinkjl.process import run_process
from pylinkjl.target import host_target, parse_target

from .realruntime import require_runtime
from .toolnames import CLANG, LLD, LLVM_OBJDUMP, LLVM_READOBJ, run_tool

ARCHIVES = Path(__file__).parent / "data" / "archives"
# The Julia lines whose images have the 1.13 layout (jl_image_unpack, 6-entry jl_image_pointers).
LINES_1_13 = ["1.13.0-rc1", "release-1.13", "master"]
WINE64 = shutil.which("wine64") or ("/usr/lib/wine/wine64" if Path("/usr/lib/wine/wine64").exists() else None)


def _home(platform: str) -> Path:
    info = require_runtime(platform)
    return Path(info["libjulia"]).parents[1] if platform != "win_amd64" else Path(info["bindir"]).parent


def _needed(image: Path) -> list[str]:
    out = run_tool([LLVM_READOBJ, "--needed-libs", str(image)])
    return [line.strip() for line in out.splitlines()[out.splitlines().index("NeededLibraries [") + 1:]
            if line.strip() and line.strip() != "]"]


# The child: dlopen the image (RTLD_NOW), then Julia's consistency check of restore_package_image:
# get_jl_RTLD_DEFAULT_handle_addr() must be &jl_RTLD_DEFAULT_handle of the loaded libjulia-internal.
_ELF_CHILD = r"""
import ctypes, json, os, sys
import cffi
ffi = cffi.FFI()
ffi.cdef("void *get_jl_RTLD_DEFAULT_handle_addr(void);")
try:
    image = ffi.dlopen(sys.argv[1], ffi.RTLD_NOW)
except OSError as err:
    print(json.dumps({"loaded": False, "error": str(err)})); sys.exit(0)
internal = ctypes.CDLL(sys.argv[2], mode=os.RTLD_NOLOAD | os.RTLD_NOW)  # already loaded as the image's dependency
expected = ctypes.addressof(ctypes.c_void_p.in_dll(internal, "jl_RTLD_DEFAULT_handle"))
got = int(ffi.cast("uintptr_t", image.get_jl_RTLD_DEFAULT_handle_addr()))
print(json.dumps({"loaded": True, "rtld_ok": got == expected, "got": got, "expected": expected}))
"""


def _load_elf(image: Path, home: Path, internal: Path, *, library_path: bool = True) -> dict[str, object]:
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)
    if library_path:
        env["LD_LIBRARY_PATH"] = f"{home / 'lib'}{os.pathsep}{home / 'lib' / 'julia'}"
    done = run_process([sys.executable, "-c", _ELF_CHILD, str(image), str(internal)], env=env, timeout=120)
    assert done.returncode == 0, done.output
    answer: dict[str, object] = json.loads(done.output.strip().splitlines()[-1])
    return answer


def test_the_linux_tree_is_what_these_tests_say() -> None:
    """The facts the linking relies on (docs/julia-linking.md §1.8): no header, grafted names, and a
    libjulia-internal whose soname names no file of the tree."""
    home = _home("manylinux_2_28_x86_64")
    assert not (home / "include").exists() and not (home / "share/julia/base").exists()
    internal = home / "lib/julia/ICl90UHn_libjulia-internal.so.1.13"
    slot = soname_slot(internal.read_bytes(), str(internal))
    assert slot is not None and slot[0] == "ICl90UHn_libjulia-internal.so.1.13.1"
    assert not (internal.parent / slot[0]).exists()


@pytest.mark.skipif(host_target() != parse_target("linux-x86_64"), reason="dlopen needs an x86_64 Linux host")
@pytest.mark.parametrize("archive", ["1.13-linux-x86_64.a", "mv-1.13-linux-x86_64.a"])
@pytest.mark.parametrize("line", [None, *LINES_1_13])
def test_elf_linked_against_the_real_tree_loads_and_passes_the_rtld_check(tmp_path: Path, archive: str,
                                                                         line: str | None) -> None:
    home = _home("manylinux_2_28_x86_64")
    internal = home / "lib/julia/ICl90UHn_libjulia-internal.so.1.13"
    result = link_image(ARCHIVES / archive, tmp_path / "pkg.so", julia_home=home, julia_version=line,
                        stub_missing=True)
    assert result.plan.julia is not None and result.plan.julia.version == "1.13.1"
    assert result.plan.line == (line or "release-1.13")  # 1.13.1 from lib/ICl90UHn_libjulia.so.1.13.1
    needed = _needed(result.output)
    assert {"ICl90UHn_libjulia.so.1.13.1", "ICl90UHn_libjulia-internal.so.1.13"} <= set(needed)
    tree_files = {p.name for p in (home / "lib").iterdir()} | {p.name for p in (home / "lib/julia").iterdir()}
    assert [n for n in needed if n not in tree_files and not n.startswith(("libc.", "libm."))] == []
    answer = _load_elf(result.output, home, internal)
    assert answer["loaded"] is True, answer
    assert answer["rtld_ok"] is True, answer
    # Without the tree on the search path the loader must refuse it: the load check is real.
    refused = _load_elf(result.output, home, internal, library_path=False)
    assert refused["loaded"] is False and "ICl90UHn_libjulia" in str(refused["error"])


@pytest.mark.parametrize("platform,target,archive", [
    ("manylinux_2_28_aarch64", "linux-aarch64", "mv-1.13-linux-aarch64.a"),
    ("macosx_11_0_arm64", "macos-arm64", "mv-1.13-macos-aarch64.a"),
])
def test_cross_links_name_the_files_the_tree_has(tmp_path: Path, platform: str, target: str, archive: str) -> None:
    """No loader for these here: the image must at least ask for libraries by names the tree has (as the
    tree's own juliac library does), not by the sonames / install names that name no file."""
    home = _home(platform)
    out = tmp_path / ("pkg.dylib" if target.startswith("macos") else "pkg.so")
    result = link_image(ARCHIVES / archive, out, target=target, julia_home=home, stub_missing=True)
    assert result.plan.line == "release-1.13"
    if target.startswith("macos"):
        text = run_tool([LLVM_OBJDUMP, "--macho", "--dylibs-used", str(out)])
        wanted = {line.split()[0] for line in text.splitlines()[1:] if line.strip()}
        assert {"@rpath/JXacdAlp_libjulia.1.13.1.dylib", "@rpath/JXacdAlp_libjulia-internal.1.13.dylib"} <= wanted
        own = run_tool([LLVM_OBJDUMP, "--macho", "--dylibs-used", str(home / "lib/libetcouple.dylib")])
        assert "@rpath/JXacdAlp_libjulia-internal.1.13.dylib" in own  # what the tree's own product asks for
        real = install_name_slot((home / "lib/julia/JXacdAlp_libjulia-internal.1.13.dylib").read_bytes(), "x")
        assert real is not None and real[0] == "@rpath/JXacdAlp_libjulia-internal.1.13.1.dylib"  # names no file
    else:
        needed = _needed(out)
        assert {"ICl90UHn_libjulia.so.1.13.1", "ICl90UHn_libjulia-internal.so.1.13"} <= set(needed)
        assert "ICl90UHn_libjulia-internal.so.1.13" in _needed(home / "lib/libetcouple.so")


def test_real_tree_without_crt_files_is_refused_unless_stubbed(tmp_path: Path) -> None:
    home = _home("manylinux_2_28_x86_64")
    with pytest.raises(MissingLibraryError) as err:
        plan_link(link_request(ARCHIVES / "1.13-linux-x86_64.a", tmp_path / "pkg.so", target="linux-x86_64",
                               julia_home=home))
    assert "crti.o" in str(err.value) and "-ljulia " not in str(err.value) + " "  # libjulia is found


def _winloader(folder: Path) -> Path:
    """``loader.exe BINDIR DLL...``: puts the real runtime's bin/ on the DLL search path, then for each DLL
    LoadLibrary and compare get_jl_RTLD_DEFAULT_handle_addr() with libjulia-internal.dll's
    jl_RTLD_DEFAULT_handle. Exit 0 when all pass, else 10 * (index of the first failing DLL + 1) + reason."""
    source = folder / "rtldloader.c"
    source.write_text(r"""
typedef void *HMODULE;
typedef void *(*getter_t)(void);
__declspec(dllimport) int __stdcall SetDllDirectoryA(const char *);
__declspec(dllimport) HMODULE __stdcall LoadLibraryA(const char *);
__declspec(dllimport) HMODULE __stdcall GetModuleHandleA(const char *);
__declspec(dllimport) void *__stdcall GetProcAddress(HMODULE, const char *);
__declspec(dllimport) char *__stdcall GetCommandLineA(void);
__declspec(dllimport) void __stdcall ExitProcess(unsigned);

static char *next_word(char *p) {  /* words are separated by single spaces; no quoting */
    while (*p && *p != ' ') p++;
    if (*p) *p++ = 0;
    return p;
}

void __stdcall start(void) {
    char *arg = next_word(GetCommandLineA());
    char *rest = next_word(arg);
    if (!*arg || !SetDllDirectoryA(arg)) ExitProcess(1);
    for (unsigned i = 1; *rest; i++) {
        char *name = rest;
        rest = next_word(rest);
        HMODULE image = LoadLibraryA(name);
        if (!image) ExitProcess(10 * i + 1);
        getter_t getter = (getter_t)GetProcAddress(image, "get_jl_RTLD_DEFAULT_handle_addr");
        HMODULE internal = GetModuleHandleA("libjulia-internal.dll");
        if (!getter || !internal) ExitProcess(10 * i + 2);
        void *expected = GetProcAddress(internal, "jl_RTLD_DEFAULT_handle");
        if (!expected) ExitProcess(10 * i + 3);
        if (getter() != expected) ExitProcess(10 * i + 4);
    }
    ExitProcess(0);
}
""")
    obj = folder / "rtldloader.o"
    run_tool([CLANG, "--target=x86_64-w64-mingw32", "-c", "-O1", "-ffreestanding", "-fno-stack-protector",
              str(source), "-o", str(obj)])
    (folder / "k32.def").write_text("LIBRARY KERNEL32.dll\nEXPORTS\nSetDllDirectoryA\nLoadLibraryA\n"
                                    "GetModuleHandleA\nGetProcAddress\nGetCommandLineA\nExitProcess\n")
    run_tool([LLD, "-flavor", "link", "/lib", f"/def:{folder / 'k32.def'}", "/machine:x64",
              f"/out:{folder / 'libk32.a'}"])
    exe = folder / "loader.exe"
    run_tool([LLD, "-flavor", "gnu", "-m", "i386pep", "--entry=start", "--subsystem=console", "-o", str(exe),
              str(obj), str(folder / "libk32.a")])
    return exe


def _wine_path(path: Path) -> str:
    return "Z:" + str(path).replace("/", "\\")


WINDOWS_CASES = [(line, archive) for line in LINES_1_13
                 for archive in ("1.13-windows-x86_64.a", "mv-1.13-windows-x86_64.a")]


class WineRun:
    def __init__(self, folder: Path, exe: Path, wine: str, env: dict[str, str]) -> None:
        self.folder, self.exe, self.wine, self.env = folder, exe, wine, env

    def run(self, bindir: Path, dlls: list[str]) -> int:
        done = run_process([self.wine, str(self.exe), _wine_path(bindir), *dlls], cwd=self.folder, env=self.env,
                           timeout=300)
        return done.returncode


@pytest.fixture(scope="module")
def wine_dlls(tmp_path_factory: pytest.TempPathFactory) -> tuple[WineRun, list[str], int]:
    """Every (line, archive) linked against the real DLLs, then all loaded by one Wine process (Wine's
    start-up costs seconds): the runner, the DLL names in order, and the loader's exit code."""
    if WINE64 is None:
        pytest.skip("no wine64 (.ci/install installs it)")
    home = _home("win_amd64")
    folder = tmp_path_factory.mktemp("realdlls")
    names = []
    for line, archive in WINDOWS_CASES:
        name = f"pkg-{line}-{archive.removesuffix('.a')}.dll"
        link_image(ARCHIVES / archive, folder / name, target="windows-x86_64", julia_home=home,
                   julia_version=line, stub_missing=True)
        names.append(name)
    prefix = tmp_path_factory.mktemp("wineprefix-realtree")
    env = dict(os.environ, WINEDEBUG="-all", WINEPREFIX=str(prefix), WINEDLLOVERRIDES="mscoree,mshtml=")
    wine = WineRun(folder, _winloader(folder), WINE64, env)
    return wine, names, wine.run(home / "bin", names)


@pytest.mark.parametrize("platform,os_,arch,source", [
    ("manylinux_2_28_x86_64", "linux", "x86_64", "lib/ICl90UHn_libjulia.so.1.13.1"),
    ("manylinux_2_28_aarch64", "linux", "aarch64", "lib/ICl90UHn_libjulia.so.1.13.1"),
    ("macosx_11_0_arm64", "macos", "aarch64", "lib/JXacdAlp_libjulia.1.13.1.dylib"),
    ("win_amd64", "windows", "x86_64", "bin/libjulia-internal.dll"),
])
def test_version_os_and_arch_of_every_real_tree(platform: str, os_: str, arch: str, source: str) -> None:
    """None of the four has a version header, version_git.jl or VERSION: Linux and macOS tell it by their
    (grafted) file names, the Windows DLL folder only by the code of ijl_ver_string."""
    from pylinkjl.link.juliatree import open_tree

    home = _home(platform)
    assert not any((home / p).exists() for p in ("include", "VERSION", "share/julia/base"))
    tree = open_tree(home)
    assert (tree.version, tree.version_source, tree.os, tree.arch) == ("1.13.1", source, os_, arch)


def test_the_windows_tree_links_without_a_version_given(tmp_path: Path) -> None:
    home = _home("win_amd64")
    assert not (home / "lib").exists() and (home / "bin/libjulia.dll").is_file()  # a folder of DLLs
    plan = plan_link(link_request(ARCHIVES / "1.13-windows-x86_64.a", tmp_path / "pkg.dll", target="windows-x86_64",
                                  julia_home=home, stub_missing=True))
    assert plan.line == "release-1.13" and f"-L{home / 'bin'}" in plan.argv


def test_the_aarch64_getter_decoder_on_real_code() -> None:
    """The adrp/add/ret shape binfmt/runtimeversion.py decodes for Windows on Arm, checked on the real
    aarch64 ijl_ver_string (ELF: the same instructions)."""
    import lief

    from pylinkjl.binfmt.runtimeversion import _target_of_getter

    internal = Path(require_runtime("manylinux_2_28_aarch64")["libjulia_internal"])
    binary = lief.parse(str(internal))
    assert isinstance(binary, lief.ELF.Binary)
    symbol = next(s for s in binary.dynamic_symbols if s.name == "ijl_ver_string")
    code = bytes(binary.get_content_from_virtual_address(symbol.value, 12))
    target = _target_of_getter(0xAA64, symbol.value, code)
    assert target is not None
    assert bytes(binary.get_content_from_virtual_address(target, 7)) == b"1.13.1\0"
    assert _target_of_getter(0xAA64, symbol.value, code[4:] + code[:4]) is None  # another shape: no guess


@pytest.mark.parametrize("line,archive", WINDOWS_CASES)
def test_dll_linked_against_the_real_dlls_loads_under_wine(wine_dlls: tuple[WineRun, list[str], int],
                                                           line: str, archive: str) -> None:
    wine, names, code = wine_dlls
    index = WINDOWS_CASES.index((line, archive))
    dll = wine.folder / names[index]
    imports = run_tool([LLVM_READOBJ, "--coff-imports", str(dll)])
    assert "Name: libjulia.dll" in imports and "Name: libjulia-internal.dll" in imports
    assert code == 0 or code // 10 > index + 1, f"loader exit {code}: DLL {code // 10} failed (reason {code % 10})"


def test_wine_loader_refuses_without_the_runtime(wine_dlls: tuple[WineRun, list[str], int]) -> None:
    """Without the runtime's folder on the search path the DLLs' imports are not found: the check is real."""
    wine, names, _ = wine_dlls
    assert wine.run(wine.folder, names[:1]) == 11


def test_dry_run_against_the_real_tree_prints_the_command(tmp_path: Path) -> None:
    """clang -### style: the whole command (the tree's own library names in it), exit 0, and a warning
    naming the C runtime files the juliac bundle does not ship."""
    home = _home("manylinux_2_28_x86_64")
    done = run_process([sys.executable, "-m", "pylinkjl", "link", str(ARCHIVES / "1.13-linux-x86_64.a"), "-o",
                        str(tmp_path / "pkg.so"), "--target", "linux-x86_64", "--julia-home", str(home), "--dry-run"],
                       timeout=120)
    assert done.returncode == 0, done.output
    command = next(line for line in done.output.splitlines() if line.startswith("/") and " -shared " in line)
    assert "-l:ICl90UHn_libjulia.so.1.13.1" in command and "-z defs" in command
    assert f"{home / 'lib' / 'crti.o'}" in command  # where Julia's _find_static would look
    warning = next(line for line in done.output.splitlines() if "LLD would fail" in line)
    assert "crti.o" in warning and "-lgcc" in warning and "-ljulia" not in warning
    assert not (tmp_path / "pkg.so").exists()


def test_token_privatised_tree(tmp_path: Path) -> None:
    """Newer JuliaC replaces the "libjulia" token by the salt (Xy12-_Ab.so.1.13.1; read in its source, no
    such real tree here): made from the real libraries by copying them under those names. The version comes
    from the name, -ljulia / -ljulia-internal find the salted files, and DT_NEEDED names them."""
    from pylinkjl.link.juliatree import open_tree

    real = _home("manylinux_2_28_x86_64")
    home = tmp_path / "bundle"
    (home / "lib/julia").mkdir(parents=True)
    shutil.copyfile(real / "lib/ICl90UHn_libjulia.so.1.13.1", home / "lib/Xy12-_Ab.so.1.13.1")
    shutil.copyfile(real / "lib/julia/ICl90UHn_libjulia-internal.so.1.13", home / "lib/julia/Xy12-_Ab-internal.so.1.13")
    tree = open_tree(home)
    assert (tree.version, tree.os, tree.arch, tree.token_salt) == ("1.13.1", "linux", "x86_64", "Xy12-_Ab")
    result = link_image(ARCHIVES / "1.13-linux-x86_64.a", tmp_path / "pkg.so", target="linux-x86_64", julia_home=home,
                        stub_missing=True)
    assert {"Xy12-_Ab.so.1.13.1", "Xy12-_Ab-internal.so.1.13"} <= set(_needed(result.output))
