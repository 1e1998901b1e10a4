"""Benchmark of ``pylinkjl verify`` on a large generated image, side by side with ``llvm-readobj``.

The image: the fixture generator's 1.11 layout for linux-x86_64, 150,000 functions in 2 shards, 3
targets (generic; sandybridge,clone_all; haswell,base(1)), linked with pylinkjl's link_image: about
50 MB and 375,000 dynamic relocations. It is cached under ``bench/out/``.

Measured in one run, median of several: ``verify`` as a command (a fresh Python: start-up, LIEF import,
parse, decode, checks), ``verify_image`` in a warm process, and ``llvm-readobj-19 --dyn-syms`` (the
goal's yardstick; it only lists the dynamic symbols, of which a Julia 1.10+ image has a dozen) and
``--dyn-syms --relocations`` (which, like verify, reads every dynamic relocation). Peak memory is the
high-water mark (VmHWM, else ru_maxrss) of a child process that runs only the verification. ``run(quick)`` returns rows
``{"name", "value", "unit", "note"}``; ``quick`` uses a 15,000-function image and fewer repetitions.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pylinkjl.process import run_process
from tests.toolnames import LLVM_READOBJ

OUT = Path(__file__).resolve().parent / "out"
CPU_TARGETS = ("generic", "sandybridge,-xsaveopt,clone_all", "haswell,-rdrnd,base(1)")

# The child reports its own peak. Linux carries a parent's high-water mark into ru_maxrss across fork+exec
# (a child of this big benchmark process would report this process' size), so VmHWM, which belongs to the
# child's own address space, is read first; ru_maxrss is the fallback off Linux.
_MEMORY_CHILD = """
import json, re, resource, sys
from pylinkjl.images.verify import verify_image
report = verify_image(sys.argv[1])
try:
    kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
except (OSError, AttributeError):
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ok": report.ok, "maxrss_kb": kb}))
"""
_CLI_CHILD = "import sys; from pylinkjl.cli.verify import verify_command; verify_command(sys.argv[1:])"


def _readobj() -> str:
    for name in (LLVM_READOBJ, "llvm-readobj"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("llvm-readobj(-19) is not installed")


def build_image(nfuncs: int) -> Path:
    """The big image, generated and linked once (cached by its parameters)."""
    from fixturegen.build import generate_archive
    from fixturegen.spec import FixtureSpec
    from pylinkjl.link.api import link_image
    from pylinkjl.target import parse_target

    OUT.mkdir(parents=True, exist_ok=True)
    blob = 4_000_000 if nfuncs >= 100_000 else 400_000
    stem = f"verify-1.11-linux-x86_64-{nfuncs}f-{blob}b"
    image = OUT / f"{stem}.so"
    if image.is_file():
        return image
    target = parse_target("linux-x86_64")
    spec = FixtureSpec(target, layout="1.11", cpu_targets=CPU_TARGETS, nshards=2, nfuncs=nfuncs,
                       ngvars=max(2, nfuncs // 3), blob_size=blob)
    archive = generate_archive(spec, OUT / f"{stem}.a")
    link_image(archive, image, target=target, julia_version="1.11.7")
    return image


def _median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        done = run_process(argv, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.output[-2000:]}")
        times.append(done.seconds)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict[str, Any]]:
    nfuncs = 15_000 if quick else 150_000
    runs = 3 if quick else 7
    image = build_image(nfuncs)
    size_mb = image.stat().st_size / 1e6
    readobj = _readobj()

    cli = _median_seconds([sys.executable, "-c", _CLI_CHILD, str(image)], runs)
    dyn = _median_seconds([readobj, "--dyn-syms", str(image)], runs)
    dynrel = _median_seconds([readobj, "--dyn-syms", "--relocations", str(image)], runs)

    from pylinkjl.images.verify import verify_image

    verify_image(image)  # warm: imports, page cache
    warm = []
    for _ in range(runs):
        start = time.perf_counter()
        report = verify_image(image)
        warm.append(time.perf_counter() - start)
        assert report.ok, report.render()
    inproc = statistics.median(warm)

    done = run_process([sys.executable, "-c", _MEMORY_CHILD, str(image)], timeout=600)
    mem = json.loads(done.output.strip().splitlines()[-1])
    peak_mb = mem["maxrss_kb"] / 1024
    limit_mb = 2 * image.stat().st_size / 2**20 + 100

    note = f"{nfuncs} functions, 3 targets, 2 shards, {size_mb:.1f} MB"
    return [
        {"name": "verify image size", "value": round(size_mb, 1), "unit": "MB", "note": note},
        {"name": "verify (command, fresh process)", "value": round(cli * 1e3), "unit": "ms",
         "note": "goal < 1000 ms; includes Python start-up and the LIEF import (~265 ms)"},
        {"name": "verify_image (warm process)", "value": round(inproc * 1e3), "unit": "ms", "note": note},
        {"name": "llvm-readobj --dyn-syms", "value": round(dyn * 1e3), "unit": "ms",
         "note": "lists the image's few dynamic symbols; reads no relocation"},
        {"name": "llvm-readobj --dyn-syms --relocations", "value": round(dynrel * 1e3), "unit": "ms",
         "note": "also prints every dynamic relocation (what verify has to read)"},
        {"name": "verify command / readobj --dyn-syms", "value": round(cli / dyn, 2), "unit": "x",
         "note": "goal <= 2x"},
        {"name": "verify command / readobj --dyn-syms --relocations", "value": round(cli / dynrel, 2), "unit": "x",
         "note": "same amount of relocation reading"},
        {"name": "verify_image (warm) / readobj --dyn-syms --relocations", "value": round(inproc / dynrel, 2),
         "unit": "x", "note": "the decoding and checks alone, without the LIEF import"},
        {"name": "verify peak memory", "value": round(peak_mb), "unit": "MB",
         "note": f"peak RSS of a child that only verifies; goal < {limit_mb:.0f} MB (2x file + 100 MB)"},
    ]


if __name__ == "__main__":  # pragma: no cover - manual use: python bench/verify.py [--quick]
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['name']:<52} {row['value']:>10} {row['unit']:<3} {row['note']}")
