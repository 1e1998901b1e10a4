"""What pylinkjl adds to a link, against the floor it cannot beat: the same LLD command run directly.

For each format (ELF, Mach-O, COFF) and size (small, large; see :mod:`bench.inputs`), side by side in
one run, medians of several interleaved runs:

- ``pylinkjl link`` as a user runs it (a whole process: Python start-up, imports, planning, LLD) vs
  the plan's argv (``plan_link(link_request(...)).argv``) run directly: the ratio and the added milliseconds;
- ``link_image`` in a warm Python (planning + running; LLD probed once per process) vs the same argv
  run directly from that Python;
- peak memory: the largest process of ``pylinkjl link`` vs LLD alone, and the Python process of
  ``link_image`` in a fresh interpreter.

Both sides do the same work: the stub libraries are built before measuring (a warm cache, as on every
link after the first), and LLD writes its output into a staging folder beside the output either way.
A one-off breakdown of the command's fixed cost follows (interpreter, click, pylinkjl's imports).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from bench import inputs
from bench.common import (
    OUT,
    child_env,
    fresh_dir,
    library_peak_mb,
    peak_mb,
    pylinkjl_argv,
    row,
    run_checked,
    side_by_side,
    timed,
)
from pylinkjl.process import _die_with_parent_hook, run_process
from pylinkjl.target import parse_target
from tests.toolnames import LLD

SIZES = ("small", "large")
GOALS = {"small": "goal: CLI < 50 ms over LLD", "large": "goal: CLI / LLD < 1.05"}
READ_RATE = 1e9  # bytes/s: link_image may add 5 ms plus reading its inputs' symbol tables at this rate


def _measure(fmt: str, target: str, size: str, runs: int, quick: bool) -> list[dict[str, Any]]:
    from pylinkjl.link.api import link_image, link_request
    from pylinkjl.link.plan import plan_link

    archive = inputs.archive(size, target, quick=quick)
    spec = inputs.spec_for(size, parse_target(target), quick=quick)
    work = fresh_dir(OUT / "link" / f"{size}-{target}")
    dlext = parse_target(target).dlext
    out_cli, out_lib, out_direct = (work / f"{side}.{dlext}" for side in ("cli", "lib", "direct"))
    env = child_env()
    cli = [*pylinkjl_argv(), "link", str(archive), "-o", str(out_cli), "--target", target]

    run_checked(cli, env)  # warm: stub libraries, bytecode cache, page cache
    link_image(archive, out_lib, target=target)  # warm this process: imports, LLD probe
    plan = plan_link(link_request(archive, out_direct, target=target, staging_token="direct"))
    direct_env = {**os.environ, **plan.env}

    def direct() -> float:
        plan.staging_dir.mkdir(exist_ok=True)
        return run_checked(plan.argv, direct_env)

    medians = side_by_side({
        "direct": direct,
        "cli": lambda: run_checked(cli, env),
        "library": lambda: timed(lambda: link_image(archive, out_lib, target=target)),
    }, runs)
    shutil.rmtree(plan.staging_dir, ignore_errors=True)

    plan.staging_dir.mkdir()
    lld_peak = peak_mb(plan.argv, direct_env)
    cli_peak = peak_mb(cli, env)
    lib_self, lib_children = library_peak_mb(archive, out_lib, target)
    shutil.rmtree(plan.staging_dir, ignore_errors=True)

    d, c, lib = medians["direct"] * 1e3, medians["cli"] * 1e3, medians["library"] * 1e3
    allowance = 5 + archive.stat().st_size / READ_RATE * 1e3
    verdict = "met" if lib - d < allowance else "missed"
    label = f"{fmt} {size}"
    what = (f"{target}: {inputs.describe(spec)}; archive {archive.stat().st_size / 1e6:.3g} MB, "
            f"image {out_lib.stat().st_size / 1e6:.3g} MB; median of {runs}")
    return [
        row(f"{label}: LLD alone", d, "ms", what),
        row(f"{label}: pylinkjl link (CLI)", c, "ms", f"{c / d:.2f}x LLD, +{c - d:.0f} ms; {GOALS[size]}"),
        row(f"{label}: CLI added", c - d, "ms", ""),
        row(f"{label}: CLI / LLD", c / d, "x", "" if size == "small" else
            f"at this added cost, 1.05x needs a link where LLD takes >= {20 * (c - d):.0f} ms"),
        row(f"{label}: link_image (library)", lib, "ms", f"+{lib - d:.1f} ms over LLD; goal: < {allowance:.1f} ms "
            f"(5 ms + the inputs read at 1 GB/s): {verdict}"),
        row(f"{label}: library added", lib - d, "ms", ""),
        row(f"{label}: peak memory, LLD alone", lld_peak, "MB", "largest resident set"),
        row(f"{label}: peak memory, pylinkjl link", cli_peak, "MB", "largest process: Python or LLD"),
        row(f"{label}: peak memory, link_image Python", lib_self, "MB",
            f"the Python process itself (its LLD: {lib_children:.0f} MB)"),
    ]


# Where the command's fixed cost goes: each line adds one step to the one before.
_STEPS = [
    ("python start-up", "pass"),
    ("+ import click", "import click"),
    ("+ pylinkjl link's imports",
     "import pylinkjl.cli, pylinkjl.cli.link, pylinkjl.link.plan, pylinkjl.link.run, pylinkjl.link.api"),
    ("+ planning (LLD probe included)",
     ("import sys; from pylinkjl.link.api import link_request; from pylinkjl.link.plan import plan_link; "
     "plan_link(link_request(sys.argv[1], sys.argv[2], target='linux-x86_64'))")),
]

# The share of those imports spent building dataclasses (Python 3.11 compiles each generated method at
# import, a few tenths of a ms a method on this machine): the child prints it.
_DATACLASS_SHARE = (
    "import dataclasses, time\n"
    "build, spent = dataclasses._process_class, [0.0, 0]\n"
    "def timed(cls, *a, **k):\n"
    "    t = time.perf_counter(); made = build(cls, *a, **k)\n"
    "    spent[0] += time.perf_counter() - t; spent[1] += 1; return made\n"
    "dataclasses._process_class = timed\n"
    + dict(_STEPS)["+ pylinkjl link's imports"] + "\n"
    "print(spent[0], spent[1])\n")


def _dataclass_share(env: dict[str, str]) -> tuple[float, int]:
    done = run_process([sys.executable, "-c", _DATACLASS_SHARE], env=env, timeout=120)
    seconds, count = done.output.split()
    return float(seconds), int(count)


def _breakdown(runs: int, quick: bool) -> list[dict[str, Any]]:
    archive = inputs.archive("small", "linux-x86_64", quick=quick)
    out = OUT / "link" / "breakdown.so"
    env = child_env()
    for _, code in _STEPS:  # warm the bytecode cache
        run_checked([sys.executable, "-c", code, str(archive), str(out)], env)
    lld = shutil.which(LLD) or "lld"
    measures: dict[str, Callable[[], float]] = {
        name: partial(run_checked, [sys.executable, "-c", code, str(archive), str(out)], env) for name, code in _STEPS}
    probe = [lld, "-flavor", "gnu", "--version"]
    measures["LLD --version (the probe)"] = partial(run_checked, probe, env)
    # How pylinkjl starts an LLD it started before (run_process: its own session, PR_SET_PDEATHSIG set by
    # setpriv) against a plain subprocess.run and against the pre-exec hook of a first run (it makes Python
    # fork where it would vfork).
    measures["spawn: run_process"] = partial(timed, partial(run_process, probe, env=env))
    measures["spawn: subprocess.run"] = partial(timed, partial(subprocess.run, probe, env=env, capture_output=True))
    measures["spawn: pre-exec hook"] = partial(timed, partial(subprocess.run, probe, env=env, capture_output=True,
                                                               preexec_fn=_die_with_parent_hook()))
    classes = 0

    def dataclass_seconds() -> float:
        nonlocal classes
        seconds, classes = _dataclass_share(env)
        return seconds

    measures["dataclasses"] = dataclass_seconds
    medians = side_by_side(measures, runs)
    rows = []
    previous = 0.0
    for name, _ in _STEPS:
        ms = medians[name] * 1e3
        rows.append(row(f"fixed cost: {name}", ms, "ms", f"+{ms - previous:.1f} ms" if previous else
                        "this machine's site-packages run a .pth hook at every start-up"))
        previous = ms
    rows.append(row("fixed cost: building dataclasses (part of the imports)", medians["dataclasses"] * 1e3, "ms",
                    f"pylinkjl's {classes} dataclasses on the link path, each generated method compiled at import"))
    rows.append(row("fixed cost: LLD --version (the probe)", medians["LLD --version (the probe)"] * 1e3, "ms",
                    "run once per pylinkjl process"))
    spawn, plain, hook = (medians[f"spawn: {how}"] * 1e3 for how in ("run_process", "subprocess.run",
                                                                      "pre-exec hook"))
    rows.append(row("fixed cost: starting LLD the pylinkjl way", spawn - plain, "ms",
                    f"run_process {spawn:.1f} ms vs subprocess.run {plain:.1f} ms (LLD --version), paid on "
                    f"every link; with the pre-exec hook of a first run: {hook:.1f} ms"))
    return rows


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fmt, target in inputs.FORMATS.items():
        for size in SIZES:
            runs = (5 if quick else 15) if size == "small" else (3 if quick else 7)
            rows += _measure(fmt, target, size, runs, quick)
    rows += _breakdown(5 if quick else 15, quick)
    return rows


if __name__ == "__main__":  # pragma: no cover - python -m bench.link [--quick]
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['name']:<52} {r['value']:>9} {r['unit']:<3} {r['note']}")
