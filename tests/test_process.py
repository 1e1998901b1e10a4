"""The one process runner: a timeout holds even when the program forks a child that keeps the pipe open,
and no descendant outlives it."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.process import _setpriv_prefix, _setpriv_program, run_process, which


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


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("kind", ["native", "script"])
def test_the_child_dies_with_a_sigkilled_parent_either_way(kind: str, tmp_path: Path) -> None:
    """A native program starts through setpriv (Python can vfork), anything else through the pre-exec hook;
    both die when pylinkjl is SIGKILLed, and the native one is the program itself (setpriv exec'd it in place,
    argv unchanged)."""
    sleep = which("sleep")
    assert sleep is not None
    if kind == "script":
        script = tmp_path / "linker"
        script.write_text(f"#!/bin/sh\nexec {sleep} 300\n")
        script.chmod(0o755)
        argv = [str(script)]
    else:
        argv = [sleep, "300"]
        if _setpriv_program() is None:
            pytest.skip("util-linux's setpriv is not installed (.ci/install installs it)")
        assert _setpriv_prefix(argv, None, None), "a native program should start through setpriv"
    code = "import sys; from pylinkjl.process import run_process; run_process(sys.argv[1:])"
    parent = subprocess.Popen([sys.executable, "-c", code, *argv])
    try:
        deadline = time.monotonic() + 30
        while not (kids := _children(parent.pid)) and time.monotonic() < deadline:
            time.sleep(0.02)
        (child,) = kids
        while Path(f"/proc/{child}/exe").resolve() != Path(sleep).resolve() and time.monotonic() < deadline:
            time.sleep(0.02)  # setpriv (or the script's shell) is still on its way to exec
        if kind == "native":
            assert Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:-1] == [a.encode() for a in argv]
    finally:
        parent.kill()
        parent.wait()
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its SIGKILLed parent"


def _native_header(e_type: int) -> bytes:
    """The first 64 bytes of our own interpreter (a native ELF) with its e_type replaced."""
    head = bytearray(Path(sys.executable).resolve().read_bytes()[:64])
    head[16:18] = e_type.to_bytes(2, "little" if head[5] == 1 else "big")
    return bytes(head)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF and setpriv are Linux's")
def test_a_program_the_kernel_refuses_fails_as_popen_fails_and_never_reaches_a_shell(tmp_path: Path) -> None:
    """setpriv's execvp would hand a file the kernel refuses (ENOEXEC) to /bin/sh; such files keep the
    hook, so the caller gets Python's OSError and the file's "shell text" never runs."""
    marker = tmp_path / "ran"
    payload = f"\ntouch {marker}\n".encode()
    damaged = {"object file": _native_header(1) + payload,  # ET_REL
               "truncated header": _native_header(3)[:40] + payload,
               "program headers beyond the end": _native_header(3) + payload}
    for name, data in damaged.items():
        program = tmp_path / name.replace(" ", "-")
        program.write_bytes(data)
        program.chmod(0o755)
        with pytest.raises(OSError) as refused:
            run_process([str(program)])
        assert refused.value.errno == errno.ENOEXEC, name
        assert not marker.exists(), f"{name} was run by a shell"
    # A native executable whose ELF interpreter is missing: the kernel says ENOENT after setpriv took it.
    true = Path(which("true") or "/bin/true").resolve().read_bytes()
    interp = next(p for p in (b"/lib64/ld-linux-x86-64.so.2", b"/lib/ld-linux-aarch64.so.1") if p in true)
    lost = tmp_path / "lost-interpreter"
    lost.write_bytes(true.replace(interp, interp[:-1] + b"X"))
    lost.chmod(0o755)
    with pytest.raises(FileNotFoundError) as missing:
        run_process([str(lost)])
    assert missing.value.filename == str(lost)
