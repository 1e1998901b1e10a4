"""Rebuild the committed stub objects from their assembly: the ``_DllMainCRTStartup`` stubs and the C
runtime stand-ins of ``crt/<target>/`` (used by the release-1.13 link line when no Julia install is given).

    python stubs/build.py            # rewrite stubs/dllmain-<arch>.o and stubs/crt/<target>/*
    python stubs/build.py --check    # rebuild into a temporary directory, compare with the committed files

llvm-mc writes COFF objects without a timestamp, so the output is byte-identical from run to run; the
check mode relies on that. Exit status: 0 ok, 1 mismatch, 4 no llvm-mc.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from pylinkjl.process import run_process

HERE = Path(__file__).resolve().parent
ARCHES = ("x86_64", "i686", "aarch64")
LLVM_MC_NAMES = ("llvm-mc-19", "llvm-mc")

log = logging.getLogger("pylinkjl.link.stubs.objects.build")


def find_llvm_mc() -> str | None:
    explicit = os.environ.get("LLVM_MC")
    if explicit:
        return explicit
    for name in LLVM_MC_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


# (assembly source, triple, output path relative to stubs/)
RECIPES: list[tuple[str, str, str]] = [(f"dllmain-{a}.s", f"{a}-w64-mingw32", f"dllmain-{a}.o") for a in ARCHES]
RECIPES += [(f"pseudo-reloc-{a}.s", f"{a}-w64-mingw32", f"pseudo-reloc-{a}.o") for a in ARCHES]
for _arch in ("x86_64", "aarch64"):
    RECIPES += [("crt/empty.s", f"{_arch}-linux-gnu", f"crt/linux-{_arch}/{name}")
                for name in ("crti.o", "crtbeginS.o", "crtendS.o", "crtn.o")]
for _arch in ARCHES:
    RECIPES += [(f"crt/dllcrt2-{_arch}.s", f"{_arch}-w64-mingw32", f"crt/windows-{_arch}/dllcrt2.o")]
    RECIPES += [("crt/empty.s", f"{_arch}-w64-mingw32", f"crt/windows-{_arch}/{name}")
                for name in ("crtbegin.o", "crtend.o")]
# An empty static archive stands in for compiler-rt's libclang_rt.osx.a (master's macOS line).
ARCHIVES = [f"crt/macos-{arch}/libclang_rt.osx.a" for arch in ("x86_64", "aarch64")]


def build(out_dir: Path, llvm_mc: str) -> list[Path]:
    """Assemble every stub into ``out_dir``; returns the object paths. Raises RuntimeError on failure."""
    outputs = []
    for source, triple, rel in RECIPES:
        obj = out_dir / rel
        obj.parent.mkdir(parents=True, exist_ok=True)
        done = run_process([llvm_mc, f"-triple={triple}", "-filetype=obj", str(HERE / source), "-o", str(obj)],
                           timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"llvm-mc failed on {source}:\n{done.output}")
        outputs.append(obj)
    for rel in ARCHIVES:
        archive = out_dir / rel
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(b"!<arch>\n")
        outputs.append(archive)
    return outputs


def check(llvm_mc: str) -> list[str]:
    """Rebuild in a temporary directory; return the names of objects that differ from the committed ones."""
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = [obj.relative_to(tmp) for obj in build(Path(tmp), llvm_mc)]
        return [str(rel) for rel in rebuilt
                if not (HERE / rel).is_file() or (HERE / rel).read_bytes() != (Path(tmp) / rel).read_bytes()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the committed objects")
    args = parser.parse_args(argv)
    llvm_mc = find_llvm_mc()
    if llvm_mc is None:
        sys.stderr.write(f"error: none of {', '.join(LLVM_MC_NAMES)} found on PATH (or set LLVM_MC)\n")
        return 4
    if args.check:
        stale = check(llvm_mc)
        if stale:
            sys.stderr.write(f"stale stub objects: {', '.join(stale)}; run python stubs/build.py\n")
            return 1
        sys.stdout.write("stub objects are up to date\n")
        return 0
    for obj in build(HERE, llvm_mc):
        sys.stdout.write(f"wrote {obj}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
