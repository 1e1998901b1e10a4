"""Running a LinkPlan: stub libraries, response file, LLD, and the atomic rename of the output.

Never lose data: LLD writes into a staging folder beside the output, and only a successful link is
renamed over the output. After a failure, a timeout or Ctrl-C nothing new is left behind and an
existing output is untouched.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylinkjl.commandline import quote_command
from pylinkjl.errors import Interrupted, LinkError
from pylinkjl.link.plan import LinkPlan
from pylinkjl.link.stubs.libraries import ensure_stub_set
from pylinkjl.process import run_process

log = logging.getLogger("pylinkjl.link.run")

# Longest command line we pass directly; longer ones go through a response file. Windows caps a
# command line at 32767 UTF-16 units; POSIX systems allow far more, but the environment shares it.
RSP_THRESHOLD = 30_000 if sys.platform == "win32" else 1_000_000


@dataclass(frozen=True)
class LinkResult:
    plan: LinkPlan
    output: Path
    size: int
    seconds: float
    lld_output: str
    response_file: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "output": str(self.output), "size": self.size, "seconds": round(self.seconds, 4),
                "lld_output": self.lld_output, "response_file": self.response_file, "plan": self.plan.to_dict()}


def _rsp_quote_posix(arg: str) -> str:
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rsp_quote_windows(arg: str) -> str:
    import subprocess

    return subprocess.list2cmdline([arg]) if arg else '""'


def response_file_argv(plan: LinkPlan, rsp_path: Path) -> list[str]:
    """Write everything after ``lld -flavor X`` into ``rsp_path`` and return the short argv.

    The ELF driver takes an explicit ``--rsp-quoting=posix``; ld64.lld always reads GNU (POSIX) quoting;
    LLD's MinGW driver has no such option and uses the host's convention (Windows quoting on Windows)."""
    argv = list(plan.argv)
    head = 3 if len(argv) > 2 and argv[1] == "-flavor" else 1
    rest = argv[head:]
    windows_quoting = plan.target.os == "windows" and sys.platform == "win32"
    quote = _rsp_quote_windows if windows_quoting else _rsp_quote_posix
    rsp_path.write_text("\n".join(quote(a) for a in rest) + "\n", encoding="utf-8")
    quoting = ["--rsp-quoting=posix"] if plan.target.os == "linux" else []
    return [*argv[:head], *quoting, f"@{rsp_path}"]


def _replace(staged: Path, output: Path) -> None:
    """Rename the new image over the output. Freeing a large old image takes tens of milliseconds, so,
    like LLD's own unlinkAsync, keep it open across the rename and let it go in a background thread."""
    try:
        old = os.open(output, os.O_RDONLY)
    except OSError:
        old = None
    os.replace(staged, output)
    if old is not None:
        import threading

        threading.Thread(target=os.close, args=(old,), daemon=True).start()


def _discard(staging: Path) -> None:
    """Remove the staging folder (flat: the staged output and maybe a response file)."""
    try:
        entries = list(os.scandir(staging))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            os.unlink(entry.path)
        except IsADirectoryError:  # LLD never makes one; be thorough anyway
            import shutil

            shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(staging)
    except OSError:
        pass


def execute(plan: LinkPlan, *, force_response_file: bool = False) -> LinkResult:
    """Run the plan. Raises LinkError (LLD failed or timed out), Interrupted (Ctrl-C), or the errors of
    stub-library generation; MissingLibraryError for a plan made with ``allow_missing`` that lacks some."""
    if plan.missing:
        from pylinkjl.errors import MissingLibraryError

        where = plan.julia.home if plan.julia is not None else "the Julia install"
        raise MissingLibraryError(f"the Julia install at {where} lacks what the Julia {plan.line} link command "
                                  f"needs: {', '.join(plan.missing)}",
                                  hint="pass --stub-missing to link against generated stubs instead")
    if plan.stubs is not None:
        started = time.perf_counter()
        ensure_stub_set(plan.stubs, str(plan.lld.candidate.path))
        log.info("stub libraries ready in %s (%.0f ms): %s", plan.stub_dir, (time.perf_counter() - started) * 1e3,
                 ", ".join(lib.file_name for lib in plan.stub_libraries))
    env = dict(os.environ)
    env.update(plan.env)
    plan.output.parent.mkdir(parents=True, exist_ok=True)
    plan.staging_dir.mkdir(exist_ok=False)
    try:
        argv = list(plan.argv)
        use_rsp = force_response_file or sum(len(a) + 1 for a in argv) > RSP_THRESHOLD
        if use_rsp:
            argv = response_file_argv(plan, plan.staging_dir / "link.rsp")
            log.info("command line goes through a response file: %s", argv[-1][1:])
        log.info("running: %s", quote_command(argv))
        if plan.env:
            log.info("environment: %s", " ".join(f"{k}={shlex.quote(v)}" for k, v in plan.env.items()))
        try:
            done = run_process(argv, env=env, timeout=plan.timeout)
        except OSError as err:
            raise LinkError(f"could not start {argv[0]}: {err.strerror or err}", argv=argv) from err
        if done.output.strip():
            log.info("LLD said:\n%s", done.output.rstrip())
        log.info("LLD finished with exit code %s in %.3f s", done.returncode, done.seconds)
        if done.timed_out:
            raise LinkError(f"LLD did not finish within {plan.timeout:g} s and was stopped; no output was written",
                            argv=list(plan.argv), output=done.output, returncode=None)
        if done.returncode != 0:
            from pylinkjl.link.advice import advise  # only failures need the advice table

            raise LinkError(f"LLD failed with exit code {done.returncode} linking {plan.output.name}",
                            argv=list(plan.argv), output=done.output, returncode=done.returncode,
                            advice=advise(done.output, plan.target.os))
        if not plan.staged_output.is_file():
            raise LinkError("LLD reported success but wrote no output", argv=list(plan.argv), output=done.output,
                            returncode=0)
        size = plan.staged_output.stat().st_size
        _replace(plan.staged_output, plan.output)
        log.info("wrote %s (%d bytes)", plan.output, size)
        return LinkResult(plan, plan.output, size, done.seconds, done.output, use_rsp)
    except KeyboardInterrupt:
        raise Interrupted("interrupted; the linker was stopped and no output was written") from None
    finally:
        _discard(plan.staging_dir)
