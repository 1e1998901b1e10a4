"""What the link and relink benchmarks share: child environments, timing, peak memory.

Every process is started through :func:`pylinkjl.process.run_process`, like pylinkjl itself does, so
both sides of a comparison pay the same cost to start a child.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pylinkjl.process import run_process

OUT = Path(__file__).resolve().parent / "out"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of measured Python children: bytecode caching on (as after ``pip install``,
    which compiles every module), even where the machine sets PYTHONDONTWRITEBYTECODE; the cache goes
    to ``bench/out/pycache`` rather than next to the sources."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    env.update(extra or {})
    return env


def pylinkjl_argv() -> list[str]:
    """How a user runs pylinkjl: the installed console script beside this Python, else ``-m``."""
    script = Path(sys.executable).with_name("pylinkjl")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "pylinkjl"]


def run_checked(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Run ``argv`` and return its wall time in seconds; fail loudly if it fails."""
    done = run_process(list(argv), env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.output[-3000:]}")
    return done.seconds


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(measures: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Median seconds of each measure, run interleaved (a, b, c, a, b, c, ...) so that drift in the
    machine's load touches all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}


# A fresh, small Python that runs one command as its child and reports the largest resident set of
# any process below it (ru_maxrss of RUSAGE_CHILDREN covers grandchildren too). Linux copies the
# parent's high-water mark into a child started by fork/vfork + exec, so the reporter must be small:
# its own ~10 MB is the floor of what it can report.
_PEAK_CHILD = """
import json, resource, sys
from pylinkjl.process import run_process
done = run_process(json.loads(sys.argv[1]), timeout=1800)
print(json.dumps({"rc": done.returncode, "kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
                  "output": done.output[-2000:]}))
"""

# The library in a fresh Python: peak of the Python process itself (VmHWM) and of its children (LLD).
_LIBRARY_PEAK_CHILD = """
import json, re, resource, sys
from pylinkjl.link.api import link_image
link_image(sys.argv[1], sys.argv[2], target=sys.argv[3])
status = open("/proc/self/status").read()
own = int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1))
print(json.dumps({"self_kb": own, "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak_mb(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Largest resident set (MB) of any process of ``argv``'s tree, measured in a fresh child."""
    done = run_process([sys.executable, "-c", _PEAK_CHILD, json.dumps(list(argv))], env=env, timeout=1800)
    data = json.loads(done.output.strip().splitlines()[-1])
    if data["rc"] != 0:
        raise RuntimeError(f"{argv[0]} failed ({data['rc']}): {data['output']}")
    return float(data["kb"]) / 1024


def library_peak_mb(archive: Path, out: Path, target: str) -> tuple[float, float]:
    """(Python process, largest child) peak resident sets (MB) of ``link_image`` in a fresh Python."""
    done = run_process([sys.executable, "-c", _LIBRARY_PEAK_CHILD, str(archive), str(out), target],
                       env=child_env(), timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"link_image failed: {done.output[-3000:]}")
    data = json.loads(done.output.strip().splitlines()[-1])
    return data["self_kb"] / 1024, data["children_kb"] / 1024


def row(name: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    digits = 2 if unit == "x" or (unit in ("ms", "s", "MB") and abs(value) < 10) else 1 if abs(value) < 100 else 0
    return {"name": name, "value": round(value, digits) if digits else round(value), "unit": unit, "note": note}


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
