"""The real Julia 1.13.1 runtime for tests: PyPI's ace-jax-coupling 0.2.0 wheels ship a juliac library
(``libetcouple``, a system image) with libjulia, libjulia-internal and their dependencies for Linux
x86_64/aarch64, macOS arm64 and Windows x86_64. Their names are grafted by auditwheel/delocate
(``ICl90UHn_libjulia.so.1.13.1``, symbol version ``JL_ICl90UHn_1.13``).

    python tests/realruntime.py [CACHE_DIR] [--platform P ...]     (.ci/install runs it)

Idempotent: a second run only checks the recorded sha256. CACHE_DIR defaults to PYLINKJL_RUNTIME_CACHE or
~/.cache/pylinkjl-tests. Layout: CACHE_DIR/wheels/*.whl, CACHE_DIR/runtime/<P>/ (the unpacked wheel, with
runtime.json naming libjulia, libjulia-internal and the image).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile

PROJECT = "ace-jax-coupling"
VERSION = "0.2.0"
WHEEL_SHA256 = {
    "manylinux_2_28_x86_64": "2836159161d650e8fa463794d744660187ce4b08e50a4506630424b4a2cda8f9",
    "manylinux_2_28_aarch64": "3bbd0350fa4cd460b844782de2b324342224500acbaeb33a87403111dc38ec1b",
    "macosx_11_0_arm64": "772dac1a04afa70bc50e01de9ec89ecd97de4af6958467a88867d51180eafb68",
    "win_amd64": "d051117b6e4bf6984772471cf448f6f1ddd97c6e6938d650bc01a30bfb3e9edd",
}
WHEEL_SIZE = {
    "manylinux_2_28_x86_64": 25560173,
    "manylinux_2_28_aarch64": 23212122,
    "macosx_11_0_arm64": 17049086,
    "win_amd64": 21920141,
}
# Paths inside the unpacked wheel (checked after unpacking).
_L = "ace_jax_coupling/_lib"
LAYOUT = {
    "manylinux_2_28_x86_64": {
        "libjulia": f"{_L}/lib/ICl90UHn_libjulia.so.1.13.1",
        "libjulia_internal": f"{_L}/lib/julia/ICl90UHn_libjulia-internal.so.1.13",
        "image": f"{_L}/lib/libetcouple.so",
        "bindir": f"{_L}/bin",
    },
    "manylinux_2_28_aarch64": {
        "libjulia": f"{_L}/lib/ICl90UHn_libjulia.so.1.13.1",
        "libjulia_internal": f"{_L}/lib/julia/ICl90UHn_libjulia-internal.so.1.13",
        "image": f"{_L}/lib/libetcouple.so",
        "bindir": f"{_L}/bin",
    },
    "macosx_11_0_arm64": {
        "libjulia": f"{_L}/lib/JXacdAlp_libjulia.1.13.1.dylib",
        "libjulia_internal": f"{_L}/lib/julia/JXacdAlp_libjulia-internal.1.13.dylib",
        "image": f"{_L}/lib/libetcouple.dylib",
        "bindir": f"{_L}/bin",
    },
    "win_amd64": {
        "libjulia": f"{_L}/bin/libjulia.dll",
        "libjulia_internal": f"{_L}/bin/libjulia-internal.dll",
        "image": f"{_L}/bin/libetcouple.dll",
        "bindir": f"{_L}/bin",
    },
}


def sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_name(platform: str) -> str:
    return f"{PROJECT.replace('-', '_')}-{VERSION}-py3-none-{platform}.whl"


def ensure_wheel(cache: pathlib.Path, platform: str, pip: list[str]) -> pathlib.Path:
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    whl = wheels / wheel_name(platform)
    want = WHEEL_SHA256[platform]
    if whl.is_file() and sha256(whl) == want:
        return whl
    if whl.exists():
        print(f"[fetch] {whl.name}: sha256 mismatch, downloading again", file=sys.stderr)
        whl.unlink()
    with tempfile.TemporaryDirectory(dir=wheels) as tmp:
        cmd = pip + ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
                     "--platform", platform, f"{PROJECT}=={VERSION}", "-d", tmp]
        print("[fetch] " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        got = pathlib.Path(tmp) / whl.name
        if not got.is_file():
            raise SystemExit(f"pip did not produce {whl.name}: {os.listdir(tmp)}")
        digest = sha256(got)
        if digest != want:
            raise SystemExit(f"{whl.name}: sha256 {digest} != expected {want}")
        os.replace(got, whl)
    return whl


def unpack(cache: pathlib.Path, platform: str, whl: pathlib.Path) -> pathlib.Path:
    dest = cache / "runtime" / platform
    marker = dest / ".complete"
    want = WHEEL_SHA256[platform]
    if marker.is_file() and marker.read_text().strip() == want:
        return dest
    parent = dest.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{platform}.", dir=parent))
    os.chmod(tmp, 0o755)
    try:
        with zipfile.ZipFile(whl) as z:
            for info in z.infolist():
                target = tmp / info.filename
                if not str(target.resolve()).startswith(str(tmp.resolve())):
                    raise SystemExit(f"unsafe path in wheel: {info.filename}")
                z.extract(info, tmp)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    os.chmod(target, mode)
        # shared libraries must be readable/executable regardless of recorded modes
        for p in tmp.rglob("*"):
            if p.is_file() and (".so" in p.name or p.suffix in (".dylib", ".dll", ".exe")):
                os.chmod(p, 0o755)
        info: dict[str, str] = {"platform": platform, "wheel": whl.name, "wheel_sha256": want}
        for key, rel in LAYOUT[platform].items():
            p = tmp / rel
            if key != "bindir" and not p.is_file():
                raise SystemExit(f"{platform}: expected {rel} in the wheel")
            info[key] = str(dest / rel)
        (tmp / "runtime.json").write_text(json.dumps(info, indent=2) + "\n")
        (tmp / ".complete").write_text(want + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("cache", type=pathlib.Path, nargs="?", default=default_cache())
    ap.add_argument("--platform", action="append", choices=sorted(WHEEL_SHA256),
                    help="repeatable; default: all four")
    ap.add_argument("--pip", default=f"{shlex.quote(sys.executable)} -m pip",
                    help="pip command line (default: this python's -m pip)")
    a = ap.parse_args(argv)
    cache = a.cache.resolve()
    pip = shlex.split(a.pip)
    out = {}
    for platform in a.platform or sorted(WHEEL_SHA256):
        whl = ensure_wheel(cache, platform, pip)
        dest = unpack(cache, platform, whl)
        out[platform] = json.loads((dest / "runtime.json").read_text())
    json.dump(out, sys.stdout, indent=2)
    print()


def default_cache() -> pathlib.Path:
    env = os.environ.get("PYLINKJL_RUNTIME_CACHE")
    return pathlib.Path(env) if env else pathlib.Path.home() / ".cache" / "pylinkjl-tests"


def runtime(platform: str) -> dict[str, str] | None:
    """runtime.json of an unpacked platform, or None when the runtime has not been fetched."""
    dest = default_cache() / "runtime" / platform
    marker = dest / ".complete"
    if not marker.is_file() or marker.read_text().strip() != WHEEL_SHA256[platform]:
        return None
    info: dict[str, str] = json.loads((dest / "runtime.json").read_text())
    return info


def require_runtime(platform: str) -> dict[str, str]:
    """runtime(platform), or skip the calling test (a failure in CI, which fetches it)."""
    import pytest

    info = runtime(platform)
    if info is None:
        pytest.skip(f"the real Julia 1.13.1 runtime for {platform} is not fetched: python tests/realruntime.py")
    return info


if __name__ == "__main__":
    main()
