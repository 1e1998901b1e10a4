"""Building the judge's loader program (``loader.c``, shipped with pylinkjl) with clang and LLD.

One C file serves three platforms, built on demand and kept in pylinkjl's cache folder under a key made
of everything that goes into it (source, platform, clang and LLD versions, the C library linked against),
so a second judge reuses it and a changed source or toolchain builds a new one:

- ``linux-x86_64`` / ``linux-aarch64``: no crt files and no libc headers are needed (there are none for
  aarch64 on an x86_64 host): the program has its own ``_start`` and links against the C library itself
  (the host's, or the arm64 cross C library in ``/usr/aarch64-linux-gnu`` for qemu-aarch64).
- ``windows-x86_64``: imports only KERNEL32 (an import library LLD writes from a .def file) and runs under
  Wine; the MinGW driver of LLD links it (``-m i386pep``), so no MinGW gcc is needed.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.errors import LldNotFoundError, PylinkjlError
from pylinkjl.link.cachedir import default_cache_root
from pylinkjl.process import run_process

log = logging.getLogger("pylinkjl.images.judge.loader")

SOURCE = Path(__file__).with_name("loader.c")
PLATFORMS = ("linux-x86_64", "linux-aarch64", "windows-x86_64")
_TRIPLE = {"linux-x86_64": "x86_64-linux-gnu", "linux-aarch64": "aarch64-linux-gnu",
           "windows-x86_64": "x86_64-w64-mingw32"}
_INTERP = {"linux-x86_64": "/lib64/ld-linux-x86-64.so.2", "linux-aarch64": "/lib/ld-linux-aarch64.so.1"}
_LIBC_DIRS = {"linux-x86_64": ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"),
              "linux-aarch64": ("/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64")}
CROSS_SYSROOT = {"linux-aarch64": "/usr/aarch64-linux-gnu"}
_KERNEL32 = ("LoadLibraryExA", "SetDllDirectoryA", "GetProcAddress", "GetLastError", "FormatMessageA",
             "GetEnvironmentVariableA", "GetStdHandle", "WriteFile", "ExitProcess", "SetErrorMode", "CreateFileA",
             "SetStdHandle")
_CFLAGS = ("-O1", "-ffreestanding", "-fno-builtin", "-fno-stack-protector", "-fno-pic", "-funwind-tables", "-Wall",
           "-Werror")
# --eh-frame-hdr: the fault handler's backtrace() unwinds through the loader's own frames too
_LINUX_LDFLAGS = ("--eh-frame-hdr", "-z", "noexecstack")
_WINDOWS_LDFLAGS = ("-m", "i386pep", "--entry=start", "--subsystem=console", "--stack=16777216")


class ToolchainMissing(LldNotFoundError):
    """clang (or LLD, or the C library to link against) is not there to build the judge's loader."""


@dataclass(frozen=True)
class Loader:
    platform: str
    path: Path
    built: bool  # False: taken from the cache


def find_clang(environ: Mapping[str, str] = os.environ) -> Path:
    """``$PYLINKJL_CLANG``, else ``clang`` / ``clang-NN`` (newest first) on PATH, else the LLVM folders."""
    if environ.get("PYLINKJL_CLANG"):
        return Path(environ["PYLINKJL_CLANG"])
    names: list[tuple[int, Path]] = []
    for folder in environ.get("PATH", "").split(os.pathsep):
        for path in glob.glob(os.path.join(folder, "clang-[0-9]*")) + [os.path.join(folder, "clang")]:
            m = re.fullmatch(r"clang(?:-(\d+))?", os.path.basename(path))
            if m and os.access(path, os.X_OK):
                names.append((int(m.group(1) or 0), Path(path)))
    for path in glob.glob("/usr/lib/llvm-*/bin/clang"):
        m = re.search(r"llvm-(\d+)", path)
        names.append((int(m.group(1)) if m else 0, Path(path)))
    if not names:
        raise ToolchainMissing("no clang found to build the runtime judge's loader program",
                               hint="install clang (e.g. apt-get install clang-19) or set PYLINKJL_CLANG")
    names.sort(key=lambda item: (item[1].name != "clang", -item[0]))  # plain clang, then newest clang-NN
    return names[0][1]


def _libc(platform: str) -> list[Path]:
    """The C library files the Linux loader links against (libc.so.6, and libdl.so.2 for older glibc)."""
    from pylinkjl.target import host_target

    host = host_target()
    dirs = [Path(d) for d in _LIBC_DIRS[platform]]
    if host.name != platform and platform in CROSS_SYSROOT:
        dirs = [Path(CROSS_SYSROOT[platform]) / "lib"]
    for folder in dirs:
        if (folder / "libc.so.6").is_file():
            return [folder / "libc.so.6"] + ([folder / "libdl.so.2"] if (folder / "libdl.so.2").is_file() else [])
    hint = ("install the arm64 cross C library (apt-get install libc6-arm64-cross)" if platform == "linux-aarch64"
            else "install the C library for this platform")
    raise ToolchainMissing(f"no {platform} libc.so.6 in {', '.join(map(str, dirs))} to link the judge's loader",
                           hint=hint)


def _version(tool: Path) -> str:
    done = run_process([str(tool), "--version"], timeout=30)
    return done.output.splitlines()[0] if done.output else ""


def _run(argv: list[str], what: str) -> None:
    done = run_process(argv, timeout=120)
    if done.returncode != 0:
        raise PylinkjlError(f"building the runtime judge's loader failed ({what}, exit {done.returncode}):\n"
                            f"{' '.join(argv)}\n{done.output.strip()}")


def build_loader(platform: str) -> Loader:
    """The loader for ``platform`` (one of :data:`PLATFORMS`), from the cache or built now."""
    from pylinkjl.link.lld import find_lld, flavor_args

    if platform not in PLATFORMS:
        raise PylinkjlError(f"the runtime judge has no loader for {platform}")
    clang = find_clang()
    lld = find_lld(flavor="gnu")
    lld_path = str(lld.candidate.path)
    libs = [] if platform.startswith("windows") else _libc(platform)
    key_parts = [SOURCE.read_bytes(), platform.encode(), _version(clang).encode(), (lld.version_text or "").encode(),
                 " ".join(_CFLAGS + _LINUX_LDFLAGS + _WINDOWS_LDFLAGS).encode()] + [str(p).encode() for p in libs]
    key = hashlib.sha256(b"\0".join(key_parts)).hexdigest()[:24]
    folder = default_cache_root() / "judge" / f"{platform}-{key}"
    exe = folder / ("judge.exe" if platform.startswith("windows") else "judge")
    if exe.is_file():
        return Loader(platform, exe, built=False)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{platform}-", dir=folder.parent))
    try:
        obj = work / "loader.o"
        _run([str(clang), f"--target={_TRIPLE[platform]}", *_CFLAGS, "-c", str(SOURCE), "-o", str(obj)], "clang")
        out = work / exe.name
        prefix = [lld_path, *flavor_args(lld.candidate, "gnu")]
        if platform.startswith("windows"):
            deffile = work / "kernel32.def"
            deffile.write_text("LIBRARY KERNEL32.dll\nEXPORTS\n" + "\n".join(_KERNEL32) + "\n")
            implib = work / "libkernel32.a"
            lib = find_lld(flavor="link")  # lld-link writes import libraries (/lib /def:)
            _run([str(lib.candidate.path), *flavor_args(lib.candidate, "link"), "/lib", f"/def:{deffile}",
                  "/machine:x64", f"/out:{implib}"], "import library")
            _run(prefix + [*_WINDOWS_LDFLAGS, "-o", str(out), str(obj), str(implib)], "LLD")
        else:
            _run(prefix + ["-o", str(out), f"--dynamic-linker={_INTERP[platform]}", *_LINUX_LDFLAGS, str(obj),
                           *map(str, libs)], "LLD")
        (work / "key.txt").write_text(b"\n".join(key_parts[1:]).decode(errors="replace") + "\n")
        try:
            os.replace(work, folder)
        except OSError:  # another process built the same loader meanwhile: use theirs
            if not exe.is_file():
                raise
        log.info("built the %s judge loader: %s", platform, exe)
        return Loader(platform, exe, built=True)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
