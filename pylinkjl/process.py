"""The one place in pylinkjl that starts a process.

No shell, ever: argv is a list. Output is captured (stdout and stderr merged, as a user would see
them), a timeout kills the whole process, and Ctrl-C kills the child before it propagates.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger("pylinkjl.process")


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout + stderr, interleaved
    seconds: float
    timed_out: bool = False


def run_process(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
                cwd: str | os.PathLike[str] | None = None) -> Completed:
    """Run ``argv`` to completion and return what happened. Raises FileNotFoundError/PermissionError
    (OSError) when the program cannot be started; KeyboardInterrupt after killing the child."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=None if env is None else dict(env), cwd=cwd,
    )
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        timed_out = True
    except BaseException:  # KeyboardInterrupt included: never leave an orphaned linker behind
        proc.kill()
        proc.wait()
        raise
    seconds = time.perf_counter() - start
    text = out.decode("utf-8", errors="replace")
    log.debug("ran %s -> %s in %.3fs", argv[0], proc.returncode, seconds)
    return Completed(tuple(argv), proc.returncode if not timed_out else -9, text, seconds, timed_out)
