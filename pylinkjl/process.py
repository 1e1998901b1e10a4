"""The one place in pylinkjl that starts a process.

No shell, ever: argv is a list. Output is captured (stdout and stderr merged, as a user would see
them), a timeout kills the whole process group (a linker wrapper that forks cannot outlive it, nor keep
the pipe open), and Ctrl-C kills the child before it propagates. On Linux the child also dies with us
(PR_SET_PDEATHSIG: set by a pre-exec hook the first time a program starts, by util-linux's setpriv after
that), so even SIGKILL of pylinkjl leaves no orphaned linker.

Ctrl-C reaches only the main thread, so children started from worker threads (batch relinking) are
tracked: :func:`kill_running` kills them from any thread, and their ``run_process`` returns as killed.

SIGTERM, SIGHUP and SIGQUIT are handled exactly like Ctrl-C inside :func:`signals_as_interrupt` (the
command line runs every command inside it): the first one raises :class:`Signalled`, a KeyboardInterrupt,
so the same clean-up runs (the child's group is killed, staging is removed) and the command exits 128+n.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("pylinkjl.process")

# Running children -> ident of the thread that started them (for kill_running).
_running: dict[subprocess.Popen[bytes], int] = {}
_running_lock = threading.Lock()


# The signals pylinkjl turns into a clean stop (SIGKILL cannot be caught: PR_SET_PDEATHSIG covers it).
CATCHABLE_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


class Signalled(KeyboardInterrupt):
    """A catchable signal arrived; it unwinds exactly as Ctrl-C does (every ``except KeyboardInterrupt``
    clean-up runs). ``signum`` says which, for the exit code 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_number(exc: BaseException) -> int:
    """The signal behind an interrupt: ``Signalled.signum``, else SIGINT (a plain Ctrl-C)."""
    return int(getattr(exc, "signum", signal.SIGINT))


def _handle_catchable(handler: Callable[[int, object], None]) -> dict[signal.Signals, Any]:
    """Install ``handler`` for every catchable signal; returns the handlers it replaced."""
    previous: dict[signal.Signals, Any] = {}
    for sig in CATCHABLE_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handler)
        except (OSError, ValueError):  # pragma: no cover - a platform without it
            continue
    return previous


def _restore(previous: dict[signal.Signals, Any]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, signal.SIG_DFL if old is None else old)


@contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within this block the first SIGINT, SIGTERM, SIGHUP or SIGQUIT raises :class:`Signalled` in the
    main thread; later ones are ignored, so a second signal cannot cut the clean-up short (it is bounded:
    killing a group and removing a folder). The previous handlers come back afterwards. Outside the main
    thread (signals cannot be handled there) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal fired
        if fired:
            log.debug("ignoring %s during clean-up", signal.Signals(signum).name)
            return
        fired = True
        raise Signalled(signum)

    previous = _handle_catchable(handler)
    # A signal recorded while the program was still starting up (pylinkjl/__main__.py defers them) counts
    # as arriving now.
    early = next((p for old in previous.values() for p in getattr(old, "pending", ())), None)
    try:
        if early is not None:
            fired = True
            raise Signalled(early)
        yield
    finally:
        _restore(previous)


@contextmanager
def signals_held() -> Iterator[None]:
    """Within this block catchable signals are recorded, not raised, so that a commit (the renames that put
    an image and its ``.ji`` in place together) runs to its end; the first one recorded is raised again, to
    whatever handler is then in place, as the block ends. Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []

    def record(signum: int, _frame: object) -> None:
        held.append(signum)

    previous = _handle_catchable(record)
    try:
        yield
    finally:
        _restore(previous)
        if held:
            log.debug("%s arrived during a commit; delivered after it", signal.Signals(held[0]).name)
            signal.raise_signal(held[0])


def which(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The program ``name`` on ``environ['PATH']`` (an executable file), as ``shutil.which`` finds it, without
    importing shutil (and with it zlib, bz2 and lzma) into every link's start-up."""
    suffixes = [""] + [s for s in environ.get("PATHEXT", ".EXE;.BAT;.CMD").split(";") if s] if os.name == "nt" else [""]
    for folder in environ.get("PATH", "").split(os.pathsep):
        for suffix in suffixes:
            candidate = os.path.join(folder, name + suffix) if folder else ""
            if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


@dataclass(frozen=True)
class Completed:
    """A finished child process: its argv, exit status, output and run time."""

    argv: tuple[str, ...]
    returncode: int
    output: str  # stdout + stderr, interleaved
    seconds: float
    timed_out: bool = False


# After the group is killed, output still held by a stray descendant is not waited for longer than this.
_DRAIN_SECONDS = 2.0


_prctl: Callable[..., int] | None = None


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGKILL the child when its parent dies (PR_SET_PDEATHSIG), for the
    runs :func:`_setpriv_prefix` does not take. prctl is resolved here, in the parent, so the forked child
    only makes one foreign call: no import, no lock a batch worker thread could hold at fork time. (The death
    signal follows the forking thread, which waits for the child anyway.)"""
    global _prctl
    if not sys.platform.startswith("linux"):
        return None
    if _prctl is None:
        import ctypes

        try:
            _prctl = ctypes.CDLL(None).prctl
        except (OSError, AttributeError):
            return None
    prctl = _prctl

    def hook() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return hook


@functools.cache
def _setpriv_program() -> str | None:
    """util-linux's setpriv in the system folders (not the caller's PATH); None off Linux."""
    return which("setpriv", {"PATH": os.defpath}) if sys.platform.startswith("linux") else None


# An ELF file as os.fstat sees it: device, inode, size, mode, mtime and ctime (which no utime call can set
# back), so a file rewritten or replaced since is a new identity.
FileIdentity = tuple[int, int, int, int, int, int]

# The ELF files the kernel has started in this process: only these start through setpriv.
_started: set[FileIdentity] = set()


def _elf_identity(program: str, cwd: str | os.PathLike[str] | None) -> FileIdentity | None:
    """The identity of the ELF file a program path names, opened as the child's execve will find it
    (joined to ``cwd``, not normalised: ``..`` after a symbolic link is the kernel's business); None for a
    bare name (the child searches PATH), a script (its ``#!`` interpreter is not part of the identity) or
    anything that is not a readable regular ELF file."""
    if not os.path.dirname(program):
        return None
    from pylinkjl.binfmt.files import open_regular  # here: most commands never start a process
    from pylinkjl.errors import InputError

    try:
        with open_regular(os.path.join(cwd, program) if cwd is not None else program, "program") as handle:
            if handle.read(4) != b"\x7fELF":
                return None
            st = os.fstat(handle.fileno())
    except (InputError, OSError):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns


def _setpriv_prefix(identity: FileIdentity | None) -> list[str]:
    """``[setpriv, --pdeathsig, KILL, --]`` for an ELF file the kernel has already started in this process
    and that has not changed since, else [] (the pre-exec hook). Any pre-exec hook makes Python fork()
    (copying the page tables of the whole caller, 15-30 ms in a large build tool) where it would vfork(),
    and is unsafe with threads (batch uses them); setpriv sets the same death signal and execs the program
    in place (same pid, same argv). But setpriv's execvp hands a file the kernel refuses (ENOEXEC, which no
    header check can rule out) to /bin/sh, and searches PATH by rules of its own: so it only ever gets a
    path to an ELF file known to start. (Should its exec fail all the same, say the file is open for
    writing or its ELF interpreter went away, setpriv's message and exit 126/127 are the run's result.) A
    long-lived caller pays fork() once per linker; a command-line link, a small process, pays ~1 ms."""
    setpriv = _setpriv_program()
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv and identity in _started else []


def _spawn(argv: Sequence[str], wrapper: list[str], env: Mapping[str, str] | None,
           cwd: str | os.PathLike[str] | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*wrapper, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=None if env is None else dict(env), cwd=cwd, start_new_session=True,
        preexec_fn=None if wrapper else _die_with_parent_hook(),  # noqa: PLW1509
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except OSError:  # already reaped
        pass


def _drain(proc: subprocess.Popen[bytes]) -> bytes:
    """What the killed child wrote, without hanging on a pipe a descendant still holds."""
    try:
        out, _ = proc.communicate(timeout=_DRAIN_SECONDS)
        return out or b""
    except subprocess.TimeoutExpired:
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()
        return b""


def run_process(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float | None = None,
                cwd: str | os.PathLike[str] | None = None) -> Completed:
    """Run ``argv`` to completion and return what happened. Raises FileNotFoundError/PermissionError
    (OSError) when the program cannot be started; KeyboardInterrupt after killing the child."""
    start = time.perf_counter()
    identity = _elf_identity(argv[0], cwd)
    wrapper = _setpriv_prefix(identity)
    try:
        proc = _spawn(argv, wrapper, env, cwd)
    except OSError:
        if not wrapper:
            raise
        proc = _spawn(argv, [], env, cwd)  # setpriv itself did not start (its argv near E2BIG): as on a first run
    if identity is not None:
        _started.add(identity)  # Popen returned: the kernel started this file
    with _running_lock:
        _running[proc] = threading.get_ident()
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out = _drain(proc)
        timed_out = True
    except BaseException:  # KeyboardInterrupt included: never leave an orphaned linker behind
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        with _running_lock:
            _running.pop(proc, None)
    seconds = time.perf_counter() - start
    text = out.decode("utf-8", errors="replace")
    log.debug("ran %s -> %s in %.3fs", argv[0], proc.returncode, seconds)
    return Completed(tuple(argv), proc.returncode if not timed_out else -9, text, seconds, timed_out)


def kill_running(thread_ids: Collection[int] | None = None) -> int:
    """Kill the children that ``run_process`` is waiting for in the threads ``thread_ids`` (None: in any
    thread). Safe from any thread; each killed child's ``run_process`` returns with returncode -9.
    Returns how many were killed."""
    with _running_lock:
        victims = [p for p, tid in _running.items() if thread_ids is None or tid in thread_ids]
    for proc in victims:
        _kill_group(proc)
    if victims:
        log.debug("killed %d running child process(es)", len(victims))
    return len(victims)
