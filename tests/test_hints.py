"""Every row of the advice table, matched against the output of a real LLD failing that way."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pylinkjl.link.advice import HINTS, advise
from pylinkjl.process import run_process

from .toolnames import CLANG, LLD, LLVM_MC

LLD = shutil.which(LLD)
CLANG = shutil.which(CLANG)
LLVM_MC = shutil.which(LLVM_MC)
pytestmark = pytest.mark.skipif(not (LLD and CLANG and LLVM_MC), reason="needs lld-19, clang-19, llvm-mc-19")

SOURCE = """
extern int ijl_apply_generic(int);
extern void *jl_nothing;
extern int jl_some_data;
int *jl_data_ptr = &jl_some_data;
int pkg_entry(int x) { return ijl_apply_generic(x); }
void *pkg_getptr(void) { return jl_nothing; }
"""


@pytest.fixture(scope="module")
def objs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("hints")
    (d / "pkg.c").write_text(SOURCE)
    out = {}
    for name, triple in {"elf64": "x86_64-linux-gnu", "elfarm": "aarch64-linux-gnu", "coff64": "x86_64-w64-mingw32",
                         "macho": "arm64-apple-macos11"}.items():
        out[name] = d / f"{name}.o"
        done = run_process([CLANG, f"--target={triple}", "-c", "-O2", "-fPIC", "-ffreestanding",
                            str(d / "pkg.c"), "-o", str(out[name])])
        assert done.returncode == 0, done.output
    (d / "empty.s").write_text(".text\n")
    out["empty_elf"] = d / "empty.o"
    assert run_process([LLVM_MC, "-triple=x86_64-linux-gnu", "-filetype=obj", str(d / "empty.s"), "-o",
                        str(out["empty_elf"])]).returncode == 0
    out["dir"] = d
    return out


def lld(*args: str | Path) -> str:
    done = run_process([str(LLD), *map(str, args)])
    assert done.returncode != 0, done.output
    return done.output


def ids(output: str, os: str | None = None) -> list[str]:
    return [a.split("]")[0].lstrip("[") for a in advise(output, os)]


def test_generic_driver() -> None:
    assert ids(lld("--version"))[0] == "generic-driver"


def test_unknown_flavor() -> None:
    assert ids(lld("-flavor", "bogus", "--version"))[0] == "unknown-flavor"


def test_missing_library_elf_and_darwin(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "gnu", "-shared", "-o", objs["dir"] / "x.so", objs["elf64"], "-lssp")
    assert ids(out)[0] == "missing-library" and "-lssp" in advise(out)[0]
    out = lld("-flavor", "darwin", "-arch", "arm64", "-platform_version", "macos", "11.0", "11.0", "-dylib",
              "-undefined", "dynamic_lookup", "-o", objs["dir"] / "x.dylib", objs["macho"], "-ljulia")
    assert ids(out)[0] == "missing-library"


def test_missing_entry(objs: dict[str, Path]) -> None:
    implib = _implib(objs["dir"])
    out = lld("-flavor", "gnu", "-m", "i386pep", "-shared", "-o", objs["dir"] / "x.dll", objs["coff64"], implib)
    assert ids(out)[0] == "missing-entry"


def test_arch_mismatch(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "gnu", "-m", "i386pe", "-shared", "-o", objs["dir"] / "x.dll", objs["coff64"])
    assert ids(out)[0] == "arch-mismatch"
    out = lld("-flavor", "gnu", "-shared", "-o", objs["dir"] / "x.so", objs["elf64"], objs["elfarm"])
    assert ids(out)[0] == "arch-mismatch"


def test_unknown_emulation(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "gnu", "-mi386pep", "-shared", "-o", objs["dir"] / "x.dll", objs["coff64"])
    assert "unknown-emulation" in ids(out)


def test_platform_version_and_darwin_arch(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "darwin", "-arch", "arm64", "-dylib", "-o", objs["dir"] / "x.dylib", objs["macho"])
    assert ids(out)[0] == "platform-version"
    out = lld("-flavor", "darwin", "-arch", "aarch64", "-platform_version", "macos", "11.0", "11.0", "-dylib",
              "-o", objs["dir"] / "x.dylib", objs["macho"])
    assert "darwin-arch" in ids(out)


def test_too_many_exports(objs: dict[str, Path]) -> None:
    d = objs["dir"]
    asm = ["\t.text"] + [f"\t.globl f{i}\nf{i}:\n\tret" for i in range(65600)]
    asm += ["\t.globl _DllMainCRTStartup\n_DllMainCRTStartup:\n\tret"]
    (d / "many.s").write_text("\n".join(asm) + "\n")
    assert run_process([str(LLVM_MC), "-triple=x86_64-w64-mingw32", "-filetype=obj", str(d / "many.s"), "-o",
                        str(d / "many.o")]).returncode == 0
    out = lld("-flavor", "gnu", "-m", "i386pep", "-shared", "-o", d / "many.dll", d / "many.o")
    assert ids(out)[0] == "too-many-exports"


def _implib(d: Path) -> Path:
    (d / "julia.def").write_text("LIBRARY libjulia.dll\nEXPORTS\nijl_apply_generic\njl_nothing DATA\n"
                                 "jl_some_data DATA\n")
    out = d / "libjulia.dll.a"
    done = run_process([str(LLD), "-flavor", "link", "/lib", f"/def:{d / 'julia.def'}", "/machine:x64", f"/out:{out}"])
    assert done.returncode == 0, done.output
    return out


def test_pseudo_relocs_and_missing_dllimport(objs: dict[str, Path]) -> None:
    d = objs["dir"]
    implib = _implib(d)
    base = ["-flavor", "gnu", "-m", "i386pep", "-shared", "--entry=pkg_entry", "-o", d / "p.dll", objs["coff64"],
            implib]
    out = lld(*base)  # auto-import on: &jl_some_data needs a runtime relocator
    assert ids(out)[0] == "pseudo-relocs"
    out = lld(*base, "--disable-auto-import", "--disable-runtime-pseudo-reloc")
    assert ids(out)[0] == "data-without-dllimport" and "undefined-symbol" not in ids(out)


def test_julia_data_without_dllimport(objs: dict[str, Path]) -> None:
    d = objs["dir"]
    (d / "rtld.c").write_text("extern void *jl_RTLD_DEFAULT_handle; void **jl_RTLD_DEFAULT_handle_pointer = "
                              "&jl_RTLD_DEFAULT_handle; int _DllMainCRTStartup(void) { return 1; }\n")
    assert run_process([str(CLANG), "--target=x86_64-w64-mingw32", "-c", str(d / "rtld.c"), "-o",
                        str(d / "rtld.o")]).returncode == 0
    (d / "internal.def").write_text("LIBRARY libjulia-internal.dll\nEXPORTS\njl_RTLD_DEFAULT_handle DATA\n")
    done = run_process([str(LLD), "-flavor", "link", "/lib", f"/def:{d / 'internal.def'}", "/machine:x64",
                        f"/out:{d / 'libinternal.dll.a'}"])
    assert done.returncode == 0, done.output
    out = lld("-flavor", "gnu", "-m", "i386pep", "-shared", "--disable-auto-import", "--disable-runtime-pseudo-reloc",
              "-o", d / "r.dll", d / "rtld.o", d / "libinternal.dll.a")
    assert ids(out, "windows") == ["julia-data-without-dllimport"]


def test_undefined_symbol_with_z_defs(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "gnu", "-shared", "-z", "defs", "-o", objs["dir"] / "x.so", objs["elf64"])
    assert ids(out, "linux") == ["undefined-symbol"] and "ijl_apply_generic" in advise(out, "linux")[0]


def test_unknown_argument(objs: dict[str, Path]) -> None:
    out = lld("-flavor", "gnu", "--no-such-option", "-shared", "-o", objs["dir"] / "x.so", objs["empty_elf"])
    assert ids(out)[0] == "unknown-argument"


def test_every_row_has_a_test() -> None:
    tested = {"julia-data-without-dllimport", "generic-driver", "unknown-flavor", "missing-library", "missing-entry", "arch-mismatch",
              "unknown-emulation", "platform-version", "darwin-arch", "too-many-exports", "pseudo-relocs",
              "data-without-dllimport", "undefined-symbol", "unknown-argument"}
    assert {h.id for h in HINTS} == tested


def test_clean_output_gives_no_advice() -> None:
    assert advise("") == [] and advise("lld-19: warning: something harmless") == []
