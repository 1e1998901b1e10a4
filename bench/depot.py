"""Benchmark of ``pylinkjl depot``: scan a generated depot of 1,000 caches; CRC-32C throughput.

The depot is made of copies of the real Linux pkgimage pairs in ``shared/fixtures/real``: each
copy gets a few unique bytes appended to its image and its ``.ji`` trailer fixed up, so every
cache is distinct and valid. ``run(quick)`` returns rows ``{"name", "value", "unit", "note"}``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import struct
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import crc32c

from pylinkjl.caches.depot import scan_depot
from pylinkjl.caches.verdict import Session
from tests.realdata import REAL

FIXTURES = REAL / "alexwjung__dot_julia" / "linux-x86_64"


def _fixture_root() -> Path:
    env = os.environ.get("PYLINKJL_FIXTURES")
    if env:
        return Path(env) / "alexwjung__dot_julia" / "linux-x86_64"
    if FIXTURES.is_dir():  # tests.realdata: beside the repository, or PYLINKJL_SHARED
        return FIXTURES
    raise FileNotFoundError("real fixtures not found (set PYLINKJL_FIXTURES to shared/fixtures/real)")


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    out = []
    for ji in sorted(root.rglob("*.ji")):
        so = ji.with_suffix(".so")
        if so.is_file():
            out.append((ji, so))
    return out


def make_depot(dest: Path, ncaches: int) -> int:
    """Write ``ncaches`` valid cache pairs under ``dest/compiled/v1.9``; returns the bytes written."""
    pairs = _pairs(_fixture_root())
    total = 0
    for i in range(ncaches):
        ji_src, so_src = pairs[i % len(pairs)]
        pkg_dir = dest / "compiled" / "v1.9" / f"{ji_src.parent.name}{i // len(pairs)}"
        pkg_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{ji_src.stem[:5]}_{i:05d}"
        so_bytes = so_src.read_bytes() + struct.pack("<Q", i)  # unique, still a valid ELF
        (pkg_dir / f"{stem}.so").write_bytes(so_bytes)
        body = ji_src.read_bytes()[:-8] + struct.pack("<I", crc32c.crc32c(so_bytes))
        ji_bytes = body + struct.pack("<I", crc32c.crc32c(body))
        (pkg_dir / f"{stem}.ji").write_bytes(ji_bytes)
        total += len(so_bytes) + len(ji_bytes)
    return total


def _crc_throughput(repeats: int) -> float:
    buf = os.urandom(64 << 20)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        crc32c.crc32c(buf)
        times.append(time.perf_counter() - t0)
    return len(buf) / statistics.median(times) / 1e9


def run(quick: bool) -> list[dict[str, Any]]:
    ncaches = 1000
    repeats = 3 if quick else 7
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pylinkjl-bench-depot-") as tmp:
        depot = Path(tmp) / "depot"
        written = make_depot(depot, ncaches)
        session = Session(cpu="skylake")  # host-independent verdicts
        scan_depot([depot], session)  # warm the page cache and the tables
        times = []
        report = None
        for _ in range(repeats):
            t0 = time.perf_counter()
            report = scan_depot([depot], session)
            times.append(time.perf_counter() - t0)
        assert report is not None
        tracemalloc.start()
        scan_depot([depot], session)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        median = statistics.median(times)
        summary = report.summary
        rows.append({"name": f"depot scan, {ncaches} caches", "value": round(median, 3), "unit": "s",
                     "note": f"median of {repeats}; {written / 2**20:.0f} MiB of .ji+.so, every CRC checked, "
                             f"{summary['loads']} load / {summary['rejected']} rejected (--cpu skylake)"})
        rows.append({"name": "depot scan throughput", "value": round(report.bytes_hashed / median / 1e9, 2),
                     "unit": "GB/s", "note": "bytes hashed / wall time (page cache warm)"})
        rows.append({"name": "depot scan per cache", "value": round(median / ncaches * 1e3, 3), "unit": "ms",
                     "note": "header parse + target match + both CRCs"})
        rows.append({"name": "depot scan peak Python heap", "value": round(peak / 2**20, 1), "unit": "MiB",
                     "note": "tracemalloc; files are memory-mapped, not read into the heap"})
        shutil.rmtree(depot, ignore_errors=True)
    rows.append({"name": "crc32c throughput", "value": round(_crc_throughput(repeats), 2), "unit": "GB/s",
                 "note": f"crc32c package, hardware_based={crc32c.hardware_based}, 64 MiB buffer, median of {repeats}"})
    return rows


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
