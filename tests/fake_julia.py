"""Fake Julia installs for golden command-line tests: the folder layout and file names of a real
install for each OS, with empty files (nothing is linked against them)."""

from __future__ import annotations

from pathlib import Path

from pylinkjl.target import Target

HEADER = '#define JULIA_VERSION_STRING "{version}"\n'

LIBS = {
    "linux": {
        "lib": ["libjulia.so", "libjulia.so.1", "libjulia.so.1.12"],
        "lib/julia": ["libjulia-internal.so", "libjulia-internal.so.1", "libopenlibm.so", "libgcc_s.so.1",
                      "libgcc_s.so", "libatomic.so", "libgcc.a", "crti.o", "crtbeginS.o", "crtendS.o", "crtn.o"],
        "bin": ["julia"],
    },
    "macos": {
        "lib": ["libjulia.dylib", "libjulia.1.12.dylib"],
        "lib/julia": ["libjulia-internal.dylib", "libjulia-internal.1.12.dylib", "libopenlibm.dylib",
                      "libclang_rt.osx.a", "libSystem.tbd"],
        "bin": ["julia"],
    },
    "windows": {
        "bin": ["julia.exe", "libjulia.dll", "libjulia-internal.dll", "libopenlibm.dll"],
        "lib/julia": ["libssp.dll.a", "libgcc_s.a", "libgcc.a", "libmsvcrt.a", "libmingw32.a", "libmoldname.a",
                      "libmingwex.a", "libmsvcrt-os.a", "libkernel32.a", "libpthread.a", "libadvapi32.a",
                      "libshell32.a", "libuser32.a", "dllcrt2.o", "crtbegin.o", "crtend.o"],
        "lib": [],
    },
}


def make_fake_julia(home: Path, target: Target, version: str, *, drop: tuple[str, ...] = (),
                    debug: bool = False) -> Path:
    """Create a fake install of Julia ``version`` for ``target.os`` at ``home``; ``drop`` leaves files out."""
    (home / "include/julia").mkdir(parents=True, exist_ok=True)
    (home / "include/julia/julia_version.h").write_text(HEADER.format(version=version))
    for folder, names in LIBS[target.os].items():
        (home / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            if name in drop:
                continue
            if debug and name.startswith("libjulia"):
                name = name.replace("libjulia-internal", "libjulia-internal-debug").replace("libjulia.", "libjulia-debug.")
            (home / folder / name).write_bytes(b"")
    return home
