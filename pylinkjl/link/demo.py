"""The sample job: link the pkgimage-shaped sample archive shipped with pylinkjl for all seven targets
from this host, against generated stub libraries, and read each output back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.link.api import link_image
from pylinkjl.resources import package_path
from pylinkjl.target import ALL_TARGETS, Target

SAMPLES = package_path("samples")
SAMPLE_LAYOUT = "1.11"  # the image layout of the default Julia line (1.12)


@dataclass(frozen=True)
class DemoRow:
    target: Target
    output: Path
    format: str
    arch: str
    size: int
    julia_exports: tuple[str, ...]
    seconds: float


def sample_archive(target: Target) -> Path:
    return SAMPLES / f"pkgimage-{SAMPLE_LAYOUT}-{target.name}.a"


def run_demo(out_dir: Path, *, targets: tuple[Target, ...] = ALL_TARGETS, julia_version: str | None = None,
             lld: Path | None = None) -> list[DemoRow]:
    """Link the sample for each target into ``out_dir`` and describe the results."""
    from pylinkjl.binfmt.lief import open_binary

    rows: list[DemoRow] = []
    for target in targets:
        out = out_dir / f"sample-{target.name}.{target.dlext}"
        started = time.perf_counter()
        link_image(sample_archive(target), out, target=target, julia_version=julia_version, lld=lld)
        seconds = time.perf_counter() - started
        with open_binary(out) as image:
            exports = tuple(sorted(n for n in image.exported_symbols() if "jl_" in n))
            rows.append(DemoRow(target, out, image.format, image.arch, out.stat().st_size, exports, seconds))
    return rows
