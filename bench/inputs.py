"""Benchmark inputs: pkgimage-shaped archives from pylinkjl's fixture generator, cached in ``bench/out/``.

- small: the generator's defaults (6 functions, a 4 KB heap, one CPU target): a few KB, like a tiny
  package.
- large: 150,000 functions in 2 shards, a 30 MB heap blob and 3 CPU targets (generic; a clone_all
  target; a base(1) target), like a big package image (``quick``: 15,000 functions and 3 MB).
- medium: 15,000 functions, a 2 MB heap, 3 CPU targets: the unit of the batch benchmark.

One target per output format: ELF ``linux-x86_64``, Mach-O ``macos-arm64``, COFF ``windows-x86_64``.
Archives are named after a digest of their full spec, so a changed spec is regenerated, never reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

from fixturegen.catalog import mv_cpu_targets
from fixturegen.spec import FixtureSpec
from pylinkjl.target import Target, parse_target

log = logging.getLogger("bench.inputs")

OUT = Path(__file__).resolve().parent / "out"
FORMATS: dict[str, str] = {"elf": "linux-x86_64", "macho": "macos-arm64", "coff": "windows-x86_64"}
JULIA_VERSION = "1.12"  # the default line; the archives have its (1.11) layout


def spec_for(size: str, target: Target, *, quick: bool = False) -> FixtureSpec:
    """The generator spec of a benchmark input ("small", "medium" or "large")."""
    if size == "small":
        return FixtureSpec(target, "1.11")
    if size == "medium" or (size == "large" and quick):
        nfuncs, blob = (15_000, 3 * 2**20) if size == "large" else (15_000, 2 * 2**20)
    elif size == "large":
        nfuncs, blob = 150_000, 30 * 2**20
    else:
        raise ValueError(f"unknown input size {size!r}")
    return FixtureSpec(target, "1.11", cpu_targets=mv_cpu_targets(target), nshards=2, nfuncs=nfuncs,
                       ngvars=nfuncs // 3, blob_size=blob)


def describe(spec: FixtureSpec) -> str:
    return (f"{spec.nfuncs:,} functions, {spec.blob_size / 2**20:.2g} MiB heap, {spec.ntargets} CPU target(s), "
            f"{spec.nshards} shard(s)")


def archive(size: str, target: Target | str, *, quick: bool = False) -> Path:
    """The archive of ``size`` for ``target``, generated on first use."""
    from fixturegen.build import generate_archive

    target = parse_target(target) if isinstance(target, str) else target
    spec = spec_for(size, target, quick=quick)
    digest = hashlib.sha256(json.dumps(dataclasses.asdict(spec), default=str, sort_keys=True).encode()).hexdigest()
    path = OUT / f"{size}-{target.name}-{spec.nfuncs}f-{digest[:10]}.a"
    if not path.is_file():
        log.info("generating %s (%s)", path.name, describe(spec))
        generate_archive(spec, path)
    return path


def copies(source: Path, folder: Path, count: int) -> list[Path]:
    """``count`` copies of ``source`` named ``jl_0000.a`` ... in ``folder`` (a depot's worth of caches)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        dest = folder / f"jl_{i:04d}.a"
        if not dest.is_file() or dest.stat().st_size != source.stat().st_size:
            shutil.copyfile(source, dest)
        out.append(dest)
    return out
