"""The one process runner: a timeout holds even when the program forks a child that keeps the pipe open,
and no descendant outlives it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from pylinkjl.process import run_process, which


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its (re)parent counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_timeout_kills_a_forking_wrapper_and_its_child(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The "linker" forks a child that inherits stdout and sleeps; the parent waits for it.
    script = ("import os, sys, time\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    time.sleep(300)\n"
              "    sys.exit(0)\n"
              f"open({str(pidfile)!r}, 'w').write(str(pid))\n"
              "print('started', flush=True)\n"
              "os.waitpid(pid, 0)\n")
    done = run_process([sys.executable, "-c", script], timeout=2)
    assert done.timed_out and done.returncode == -9
    child = int(pidfile.read_text())
    for _ in range(100):  # SIGKILL is delivered asynchronously: give the kernel a moment
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the forked child outlived the timeout"


def test_a_normal_run_is_unchanged() -> None:
    done = run_process([sys.executable, "-c", "print('hi'); import sys; sys.exit(3)"])
    assert (done.returncode, done.output.strip(), done.timed_out) == (3, "hi", False)


def test_child_is_in_its_own_process_group() -> None:
    done = run_process([sys.executable, "-c", "import os; print(os.getpgrp() == os.getpid())"])
    assert done.output.strip() == "True"  # the group is what a timeout or Ctrl-C kills


def test_which_finds_what_shutil_which_finds(tmp_path: Path) -> None:
    import shutil

    plain, runnable, folder = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for d in (plain, runnable, folder):
        d.mkdir()
    (plain / "tool").write_text("not executable")
    (runnable / "tool").write_text("#!/bin/sh\n")
    (runnable / "tool").chmod(0o755)
    (folder / "tool").mkdir()  # an executable folder is no program
    path = os.pathsep.join(["", str(folder), str(plain), str(runnable)])
    assert which("tool", {"PATH": path}) == str(runnable / "tool") == shutil.which("tool", path=path)
    assert which("tool", {"PATH": str(plain)}) is None
    assert which("tool", {}) is None
