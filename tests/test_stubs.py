"""The committed _DllMainCRTStartup objects: reproducible, the right symbol, and a real DLL entry point."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from pylinkjl.errors import TargetError
from pylinkjl.link.stubs.objects import dll_entry_stub
from pylinkjl.process import run_process
from pylinkjl.target import ALL_TARGETS, Target

from .toolnames import LLD, LLVM_MC, LLVM_NM

REPO = Path(__file__).resolve().parent.parent
LLVM_MC = shutil.which(LLVM_MC) or shutil.which("llvm-mc")
LLVM_NM = shutil.which(LLVM_NM)
LLD = shutil.which(LLD)
WINDOWS = [t for t in ALL_TARGETS if t.os == "windows"]

# What the stub's code must be: return TRUE (stdcall on i686 pops its 12 argument bytes).
STUB_CODE = {
    "x86_64": bytes.fromhex("b801000000c3"),  # mov $1,%eax; ret
    "i686": bytes.fromhex("b801000000c20c00"),  # mov $1,%eax; ret $12
    "aarch64": bytes.fromhex("20008052c0035fd6"),  # mov w0,#1; ret
}

# A tiny object that exports one function, so the DLL has something besides the entry point.
TINY_ASM = {
    "x86_64": ".text\n.globl pkg_answer\npkg_answer:\n movl $42, %eax\n retq\n",
    "i686": ".text\n.globl _pkg_answer\n_pkg_answer:\n movl $42, %eax\n retl\n",
    "aarch64": ".text\n.globl pkg_answer\npkg_answer:\n mov w0, #42\n ret\n",
}
DRECTVE = '.section .drectve,"yn"\n.ascii " -export:pkg_answer"\n'


def _load_build_script():
    spec = importlib.util.spec_from_file_location("stubs_build", REPO / "stubs" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(LLVM_MC is None, reason="llvm-mc is not installed")
def test_check_mode_reproduces_committed_bytes() -> None:
    build = _load_build_script()
    assert build.check(LLVM_MC) == []
    assert build.main(["--check"]) == 0


@pytest.mark.parametrize("target", WINDOWS, ids=str)
def test_stub_path_is_the_committed_object(target: Target) -> None:
    path = dll_entry_stub(target)
    assert path.name == f"dllmain-{target.arch}.o"
    assert path.read_bytes()[:2] == {"x86_64": b"\x64\x86", "i686": b"\x4c\x01", "aarch64": b"\x64\xaa"}[target.arch]


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.os != "windows"], ids=str)
def test_non_windows_targets_have_no_stub(target: Target) -> None:
    with pytest.raises(TargetError, match="only Windows"):
        dll_entry_stub(target)


@pytest.mark.skipif(LLVM_NM is None, reason="llvm-nm-19 is not installed")
@pytest.mark.parametrize("target", WINDOWS, ids=str)
def test_stub_defines_exactly_the_entry_symbol(target: Target) -> None:
    done = run_process([LLVM_NM, "--defined-only", str(dll_entry_stub(target))], timeout=60)
    assert done.returncode == 0, done.output
    symbols = [line.split()[-2:] for line in done.output.splitlines() if line.strip()]
    assert symbols == [["T", target.dll_entry_symbol]]


@pytest.mark.skipif(LLD is None or LLVM_MC is None, reason="lld-19 / llvm-mc not installed")
@pytest.mark.parametrize("target", WINDOWS, ids=str)
def test_mingw_link_uses_the_stub_as_entry_point(target: Target, tmp_path: Path) -> None:
    import lief

    asm = tmp_path / "tiny.s"
    asm.write_text(TINY_ASM[target.arch] + DRECTVE)
    tiny = tmp_path / "tiny.o"
    done = run_process([LLVM_MC, f"-triple={target.triple}", "-filetype=obj", str(asm), "-o", str(tiny)], timeout=60)
    assert done.returncode == 0, done.output
    dll = tmp_path / "tiny.dll"
    # No --entry: LLD-19's MinGW default entry is exactly the stub's name, as Julia relies on (1.9 - 1.13.0-rc1).
    done = run_process([LLD, "-flavor", "gnu", "-m", target.mingw_emulation, "-shared", "-o", str(dll),
                        str(tiny), str(dll_entry_stub(target))], timeout=60)
    assert done.returncode == 0, done.output

    binary = lief.parse(str(dll))
    assert binary is not None
    entry = binary.optional_header.addressof_entrypoint
    assert entry != 0
    code = bytes(binary.get_content_from_virtual_address(entry, len(STUB_CODE[target.arch]),
                                                           lief.Binary.VA_TYPES.RVA))
    assert code == STUB_CODE[target.arch]
    assert [e.name for e in binary.get_export().entries] == ["pkg_answer"]
