"""Batch relinking: ``pylinkjl relink -j 1`` vs ``-j N`` (N = the CPU count) on 16 inputs.

The inputs are 16 copies of the medium ELF archive (see :mod:`bench.inputs`). Measured side by side in
one run, medians of interleaved runs, whole commands as a build tool runs them. Next to them, the floor:
the same 16 LLD commands run directly, one at a time and N at a time (with the ``--threads`` that
``-j 1`` / ``-j N`` give each LLD), which shows how far this machine lets parallel links scale at all.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import inputs
from bench.common import (
    OUT,
    child_env,
    fresh_dir,
    peak_mb,
    pylinkjl_argv,
    row,
    run_checked,
    side_by_side,
    timed,
)

COUNT = 16
TARGET = "linux-x86_64"


def _direct_plans(sources: list[Path], out: Path, threads: int) -> list[Any]:
    from pylinkjl.link.api import link_request
    from pylinkjl.link.plan import plan_link

    return [plan_link(link_request(src, out / f"{src.stem}.so", target=TARGET, threads=threads,
                                   staging_token="direct")) for src in sources]


def _run_plans(plans: list[Any], jobs: int) -> float:
    for plan in plans:
        plan.staging_dir.mkdir(parents=True, exist_ok=True)

    def one(plan: Any) -> float:
        return run_checked(plan.argv, {**os.environ, **plan.env})

    def all_of_them() -> None:
        with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(one, plans))

    return timed(all_of_them)


def run(quick: bool = False) -> list[dict[str, Any]]:
    from pylinkjl.batch import cpu_count, lld_threads

    cpus = cpu_count()
    runs = 3 if quick else 5
    source = inputs.archive("medium", TARGET, quick=quick)
    sources = inputs.copies(source, OUT / "relink" / "in", COUNT)
    out = fresh_dir(OUT / "relink" / "out")
    env = child_env()

    def relink(jobs: int) -> float:
        return run_checked([*pylinkjl_argv(), "relink", *map(str, sources), "--out-dir", str(out), "--target",
                            TARGET, "-j", str(jobs)], env)

    relink(cpus)  # warm: stub libraries, bytecode and page caches
    serial_plans = _direct_plans(sources, OUT / "relink" / "direct", lld_threads(1, cpus))
    parallel_plans = _direct_plans(sources, OUT / "relink" / "direct", lld_threads(cpus, cpus))
    medians = side_by_side({
        "j1": lambda: relink(1),
        "jN": lambda: relink(cpus),
        "lld1": lambda: _run_plans(serial_plans, 1),
        "lldN": lambda: _run_plans(parallel_plans, cpus),
    }, runs)
    shutil.rmtree(OUT / "relink" / "direct", ignore_errors=True)
    peak = peak_mb([*pylinkjl_argv(), "relink", *map(str, sources), "--out-dir", str(out), "--target", TARGET,
                    "-j", str(cpus)], env)

    j1, jn, l1, ln = medians["j1"], medians["jN"], medians["lld1"], medians["lldN"]
    what = f"{COUNT} x {inputs.describe(inputs.spec_for('medium', inputs.parse_target(TARGET)))} ({TARGET})"
    goal = "goal (2 cores): >= 1.7x" if cpus == 2 else f"{cpus} CPUs"
    return [
        row("relink 16: pylinkjl relink -j 1", j1, "s", f"{what}; median of {runs}"),
        row(f"relink 16: pylinkjl relink -j {cpus}", jn, "s", f"LLD --threads={lld_threads(cpus, cpus)} each"),
        row(f"relink 16: speed-up -j {cpus} over -j 1", j1 / jn, "x", goal),
        row("relink 16: LLD alone, one at a time", l1, "s", "the same 16 LLD commands run directly"),
        row(f"relink 16: LLD alone, {cpus} at a time", ln, "s", ""),
        row(f"relink 16: LLD alone speed-up ({cpus} at a time)", l1 / ln, "x",
            "the ceiling this machine allows parallel links"),
        row("relink 16: -j 1 added over LLD alone", (j1 - l1) * 1e3 / COUNT, "ms",
            "per item: start-up once, planning (reads every symbol), bookkeeping"),
        row(f"relink 16: peak memory -j {cpus}", peak, "MB", "largest single process"),
    ]


if __name__ == "__main__":  # pragma: no cover - python -m bench.relink [--quick]
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['name']:<52} {r['value']:>9} {r['unit']:<3} {r['note']}")
