"""The one process runner: a timeout holds even when the program forks a child that keeps the pipe open,
and no descendant outlives it."""

from __future__ import annotations

import errno
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.process import _elf_identity, _setpriv_prefix, _setpriv_program, run_process, which


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


def _started_through_setpriv(argv: list[str]) -> bool:
    return bool(_setpriv_prefix(_elf_identity(argv[0], None)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("run", ["first", "again"])
def test_the_child_dies_with_a_sigkilled_parent_either_way(run: str, tmp_path: Path) -> None:
    """The first run of a program starts through the pre-exec hook, a later one through setpriv (Python can
    vfork); both die when pylinkjl is SIGKILLed, and the later one is the program itself (setpriv exec'd it in
    place, argv unchanged)."""
    if _setpriv_program() is None:
        pytest.skip("util-linux's setpriv is not installed (.ci/install installs it)")
    sleep = str(Path(which("sleep") or "/bin/sleep").resolve())
    argv = [sleep, "300"]
    code = ("import sys; from pylinkjl.process import run_process\n"
            "if sys.argv[1] == 'again': run_process([sys.argv[2], '0'])\n"
            "run_process(sys.argv[2:])")
    parent = subprocess.Popen([sys.executable, "-c", code, run, *argv])
    try:
        deadline = time.monotonic() + 30
        child = 0
        while time.monotonic() < deadline:  # the long sleep: the first one of "again" has to end first
            kids = [k for k in _children(parent.pid)
                    if Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")[:-1] == [a.encode() for a in argv]]
            if kids:
                (child,) = kids
                break
            time.sleep(0.02)
        assert child, "the program never ran with its own argv"
        assert Path(f"/proc/{child}/exe").resolve() == Path(sleep)  # not setpriv, not a shell
    finally:
        parent.kill()
        parent.wait()
    for _ in range(100):
        if not _alive(child):
            break
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its SIGKILLed parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="setpriv is Linux's")
def test_setpriv_only_starts_a_file_the_kernel_started_unchanged(tmp_path: Path) -> None:
    if _setpriv_program() is None:
        pytest.skip("util-linux's setpriv is not installed (.ci/install installs it)")
    program = tmp_path / "tool"
    true = Path(which("true") or "/bin/true").resolve().read_bytes()
    program.write_bytes(true)
    program.chmod(0o755)
    argv = [str(program)]
    assert not _started_through_setpriv(argv)
    assert run_process(argv).returncode == 0
    assert _started_through_setpriv(argv)
    assert run_process(argv).returncode == 0  # through setpriv now
    # Rewritten in place with as many bytes and its mtime set back: the ctime still tells.
    before = program.stat()
    program.write_bytes(_bad_interpreter_elf().ljust(len(true), b"\0"))
    os.utime(program, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not _started_through_setpriv(argv)
    with pytest.raises(OSError) as refused:
        run_process(argv, cwd=tmp_path)
    assert refused.value.errno == errno.ENOEXEC
    # A bare name is searched on PATH by the child (setpriv's execvp has rules of its own): never setpriv.
    assert run_process(["true"]).returncode == 0
    assert _setpriv_prefix(_elf_identity("true", None)) == []
    # A relative path is the file in cwd, as the child resolves it.
    good = tmp_path / "good"
    good.write_bytes(true)
    good.chmod(0o755)
    assert run_process(["./good"], cwd=tmp_path).returncode == 0
    assert _setpriv_prefix(_elf_identity("./good", tmp_path)) and not _elf_identity("./good", None)
    # ".." after a symbolic link is resolved by the kernel, not by the text: sl/../good is other/good.
    (tmp_path / "other" / "sub").mkdir(parents=True)
    (tmp_path / "other" / "good").write_bytes(_bad_interpreter_elf())
    (tmp_path / "other" / "good").chmod(0o755)
    (tmp_path / "sl").symlink_to(tmp_path / "other" / "sub")
    assert not _setpriv_prefix(_elf_identity(f"{tmp_path}/sl/../good", None))
    with pytest.raises(OSError) as refused:
        run_process([f"{tmp_path}/sl/../good"], cwd=tmp_path)
    assert refused.value.errno == errno.ENOEXEC
    # A script never goes through setpriv: its #! interpreter (perhaps relative to cwd) is not in the identity.
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    for _ in range(2):
        assert run_process([str(script)]).returncode == 0
    assert _elf_identity(str(script), None) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good", "other", "script", "sl", "tool"]


def test_a_setpriv_that_cannot_start_falls_back_to_the_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """setpriv itself failing to start (an argv within its own few bytes of E2BIG; here, gone) is no failure
    of the program: the run goes the first-run way."""
    from pylinkjl import process

    program = tmp_path / "tool"
    program.write_bytes(Path(which("true") or "/bin/true").resolve().read_bytes())
    program.chmod(0o755)
    assert run_process([str(program)]).returncode == 0
    monkeypatch.setattr(process, "_setpriv_program", lambda: str(tmp_path / "no-setpriv"))
    assert _setpriv_prefix(_elf_identity(str(program), None))  # it would go through the missing setpriv
    done = run_process([str(program), "x"])
    assert (done.returncode, done.argv) == (0, (str(program), "x"))


def _native_header(e_type: int) -> bytes:
    """The first 64 bytes of our own interpreter (a native ELF) with its e_type replaced."""
    head = bytearray(Path(sys.executable).resolve().read_bytes()[:64])
    head[16:18] = e_type.to_bytes(2, "little" if head[5] == 1 else "big")
    return bytes(head)


def _bad_interpreter_elf() -> bytes:
    """A native-looking x86_64 executable whose PT_INTERP is one byte long: the kernel refuses it (ENOEXEC)
    only after the header checks, the case a header check cannot see."""
    header = (b"\x7fELF\x02\x01\x01\0" + b"\0" * 8
              + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x400000, 64, 0, 0, 64, 56, 1, 64, 0, 0))
    return header + struct.pack("<IIQQQQQQ", 3, 4, 200, 0, 0, 1, 1, 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ELF and setpriv are Linux's")
def test_a_program_the_kernel_refuses_fails_as_popen_fails_and_never_reaches_a_shell(tmp_path: Path) -> None:
    """setpriv's execvp would hand a file the kernel refuses (ENOEXEC) to /bin/sh; a file that never started
    never goes through setpriv, so the caller gets Python's OSError, every time, and the file's "shell text"
    never runs."""
    marker = tmp_path / "ran"
    payload = f"\ntouch {marker}\n".encode()
    damaged = {"object file": _native_header(1) + payload,  # ET_REL
               "truncated header": _native_header(3)[:40] + payload,
               "program headers beyond the end": _native_header(3) + payload,
               "one-byte interpreter": _bad_interpreter_elf() + payload}
    for name, data in damaged.items():
        program = tmp_path / name.replace(" ", "-")
        program.write_bytes(data)
        program.chmod(0o755)
        for _ in range(2):
            with pytest.raises(OSError) as refused:
                run_process([str(program)], cwd=tmp_path)
            assert refused.value.errno == errno.ENOEXEC, name
        assert not marker.exists(), f"{name} was run by a shell"
    # dash reading an x86_64 header would also have made a file of the bytes after e_machine's ">"
    assert {p.name for p in tmp_path.iterdir()} == {n.replace(" ", "-") for n in damaged}, "a shell wrote into cwd"
    # A native executable whose ELF interpreter is missing: FileNotFoundError, as Popen raises it.
    true = Path(which("true") or "/bin/true").resolve().read_bytes()
    interp = next(p for p in (b"/lib64/ld-linux-x86-64.so.2", b"/lib/ld-linux-aarch64.so.1") if p in true)
    lost = tmp_path / "lost-interpreter"
    lost.write_bytes(true.replace(interp, interp[:-1] + b"X"))
    lost.chmod(0o755)
    for _ in range(2):
        with pytest.raises(FileNotFoundError) as missing:
            run_process([str(lost)])
        assert missing.value.filename == str(lost)
