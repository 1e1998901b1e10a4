"""Running a LinkPlan, from start to finish, in this order:

    stage      a fresh folder beside the output (``.pylinkjl-XXXX``), locked while this process lives;
               what killed links left in that folder is removed first (pylinkjl.fs.leftovers); stub
               libraries made if needed
    LLD        writes into the staging folder (through a response file when the line is too long)
    output     the staged file must be a complete image of the target's format and architecture
               (an LLD that exits 0 with a truncated or foreign file is caught: LinkOutputError)
    verify     with ``verify=True``: the staged image is verified (a failed check: VerificationError)
    reseal     with ``ji=``: the .ji must belong to the staged image; its new copy is staged beside it
    rename     the image over the output, then the staged .ji over the .ji: the last step, taken only
               when everything above succeeded

Never lose data: after a failure of any step, a timeout or Ctrl-C nothing new is left behind and an
existing output (and .ji) is untouched. ``pylinkjl link`` and ``pylinkjl relink`` both call
:func:`execute`; nothing of this sequence lives in the CLI.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pylinkjl.commandline import quote_command
from pylinkjl.errors import (
    InputError,
    Interrupted,
    LinkError,
    LinkOutputError,
    VerificationError,
    filesystem_error,
    no_space,
)
from pylinkjl.fs.folders import folders_for
from pylinkjl.fs.leftovers import clean_stale, make_staging, release, remove_flat
from pylinkjl.fs.space import free_bytes
from pylinkjl.link.plan import LinkPlan
from pylinkjl.link.stubs.libraries import ensure_stub_set
from pylinkjl.process import run_process, signal_number, signals_held

if TYPE_CHECKING:
    from pylinkjl.caches.reseal import ResealPlan, ResealResult, StagedJi
    from pylinkjl.images.report import Report

log = logging.getLogger("pylinkjl.link.run")

# Longest command line we pass directly; longer ones go through a response file. Windows caps a
# command line at 32767 UTF-16 units; POSIX systems allow far more, but the environment shares it.
RSP_THRESHOLD = 30_000 if sys.platform == "win32" else 1_000_000


@dataclass(frozen=True)
class LinkResult:
    """What a link did: its plan, the image written, and what LLD said."""

    plan: LinkPlan
    output: Path
    size: int
    seconds: float
    lld_output: str
    response_file: bool
    verify: Report | None = None  # with verify=True: the report on the image (it passed)
    reseal: ResealResult | None = None  # with ji=: what was rewritten in the .ji
    warnings: tuple[str, ...] = ()  # about the result, e.g. a DLL too big for Windows to load

    def to_dict(self) -> dict[str, Any]:
        data = {"ok": True, "output": str(self.output), "size": self.size, "seconds": round(self.seconds, 4),
                "lld_output": self.lld_output, "response_file": self.response_file, "warnings": list(self.warnings),
                "plan": self.plan.to_dict()}
        if self.verify is not None:
            data["verify"] = self.verify.to_dict()
        if self.reseal is not None:
            data["reseal"] = self.reseal.to_dict()
        return data


DLL_SIZE_LIMIT = 1 << 31


def result_warnings(plan: LinkPlan, size: int) -> tuple[str, ...]:
    """PackageCompiler's warning for a DLL of 2 GiB or more, which Windows refuses to load."""
    if plan.target.os == "windows" and size >= DLL_SIZE_LIMIT:
        hint = ("compress the heap (--compress-sysimage, Julia >= 1.13) or put fewer packages into it"
                if plan.profile.kind != "pkgimage" else "split the package")
        text = (f"{plan.output} is {size / (1 << 30):.2f} GiB: Windows does not load a DLL of 2 GiB or more "
                f"('%1 is not a valid Win32 application'); {hint}")
        return (text,)
    return ()


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


def _check_ji(plan: LinkPlan, ji: Path) -> None:
    """The .ji to reseal is neither the output nor an input (the link would overwrite it, or reseal its input)."""
    from pylinkjl.fs.identity import how_same

    for other, what in [(plan.output, "the output"), *((p, "an input") for p in plan.request.inputs)]:
        same = how_same(ji, other)
        if same is not None:
            raise InputError(ji, f"the .ji to reseal (--ji) is {what} ({other}: {same})",
                             hint="--ji names the package's cache file, beside the image")


def _run_lld(plan: LinkPlan, force_response_file: bool) -> tuple[str, bool, float]:
    """Run LLD into the staging folder: (its output, whether a response file was used, seconds).
    Raises LinkError when it cannot start, fails or times out."""
    env = dict(os.environ)
    env.update(plan.env)
    argv = list(plan.argv)
    use_rsp = force_response_file or sum(len(a) + 1 for a in argv) > RSP_THRESHOLD
    if use_rsp:
        try:
            argv = response_file_argv(plan, plan.staging_dir / "link.rsp")
        except OSError as err:
            raise filesystem_error(err, "write the response file", plan.staging_dir / "link.rsp") from None
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
        _check_disk_full(plan, done.returncode, done.output)
        from pylinkjl.link.advice import advise  # only failures need the advice table

        raise LinkError(f"LLD failed with exit code {done.returncode} linking {plan.output.name}",
                        argv=list(plan.argv), output=done.output, returncode=done.returncode,
                        advice=advise(done.output, plan.target.os))
    return done.output, use_rsp, done.seconds


def check_staged_output(plan: LinkPlan, lld_output: str) -> int:
    """The staged file must be a complete image of the target's format and architecture: LLD's exit
    code alone is not trusted (a wrapper, a full disk or a bug can leave a short or foreign file).
    Returns its size; raises LinkOutputError."""
    from pylinkjl.binfmt.extent import image_problem

    def refuse(problem: str) -> LinkOutputError:
        return LinkOutputError(f"LLD reported success, but {problem}; nothing was renamed over {plan.output}",
                               argv=list(plan.argv), output=lld_output, returncode=0)

    staged = plan.staged_output
    try:
        st = os.lstat(staged)
    except FileNotFoundError:
        raise refuse("it wrote no output") from None
    if not stat.S_ISREG(st.st_mode):  # a symlink or a special file would be renamed over the output as such
        raise refuse("what it left at the output path is not a regular file")
    try:
        problem = image_problem(staged, plan.target.format, plan.target.arch)
    except InputError as err:
        raise refuse(f"its output cannot be read ({err.problem})") from None
    if problem is not None:
        raise refuse(f"the file it wrote {problem}")
    return st.st_size


_VERIFY_LOCK = threading.Lock()  # LIEF's thread safety is not documented: one verification at a time


def _check_disk_full(plan: LinkPlan, returncode: int, output: str) -> None:
    """Raise NoSpaceError when LLD failed for want of disk space: it says ENOSPC ("No space left on device",
    e.g. when it reserves the file), or it died of SIGBUS writing its memory-mapped output (what a full
    tmpfs gives) while the output's file system has less room left than the inputs take."""
    says = "no space left on device" in output.lower() or "disk quota exceeded" in output.lower()
    bus = returncode == -getattr(signal, "SIGBUS", 7)
    if not says and bus:
        free = free_bytes(plan.staging_dir)
        inputs = sum(f.path.stat().st_size for f in plan.inputs.files if f.path.is_file())
        says = free is not None and free < max(inputs, 1 << 20)
    if says:
        how = "LLD said so" if not bus else "LLD was killed by SIGBUS writing its memory-mapped output"
        err = no_space(plan.output, f"write {plan.output.name}", details=[
            f"{how} (exit code {returncode}); nothing was written and an existing output is untouched"])
        err.program_output = output
        raise err


# What verify must find for each link --kind: a system image linked from a package image's archive (or the
# other way round) is not what was asked for. A juliac library is a system image with @ccallable exports.
IMAGE_KINDS_OF_LINK = {"pkgimage": ("package-image",), "sysimage": ("system-image", "juliac-library"),
                       "juliac-library": ("juliac-library", "system-image")}


def _verify_staged(plan: LinkPlan) -> Report:
    """Verify the staged image (it must be of the kind linked); the report names the output it will become."""
    from pylinkjl.images.verify import verify_image

    with _VERIFY_LOCK:
        report = verify_image(plan.staged_output, object=plan.request.inputs[0], target=plan.target,
                              julia_version=plan.julia_version, kind=IMAGE_KINDS_OF_LINK[plan.profile.kind])
    report.path = plan.output
    if not report.ok:
        raise VerificationError(f"{plan.output} failed verification: the new image was discarded", verify=report)
    return report


def _replace(staged: Path, output: Path) -> None:
    """Rename the new image over the output. Freeing a large old image takes tens of milliseconds, so,
    like LLD's own unlinkAsync, keep it open across the rename and let it go in a background thread."""
    try:
        old = os.open(output, os.O_RDONLY)
    except OSError:
        old = None
    try:
        os.replace(staged, output)
    except OSError as err:  # an immutable or busy (mounted-over) output, a read-only file system, ...
        if old is not None:
            os.close(old)
        raise filesystem_error(err, "replace the output with the new image", output) from None
    if old is not None:
        threading.Thread(target=os.close, args=(old,), daemon=True).start()


def _install(plan: LinkPlan, reseal: ResealPlan | None, staged_ji: StagedJi | None) -> ResealResult | None:
    """The last step: rename the image over the output, then the staged .ji over the .ji. Should the
    second rename fail, the first is undone (the old image was kept as a hard link in the staging folder)."""
    if reseal is None:
        _replace(plan.staged_output, plan.output)
        return None
    from pylinkjl.caches.reseal import commit_reseal

    backup: Path | None = plan.staging_dir / ".previous"
    existed = True
    try:
        os.link(plan.output, plan.staging_dir / ".previous")
    except FileNotFoundError:
        backup, existed = None, False  # no old image: undoing means removing the new one
    except OSError as err:  # no hard links on this file system: the rename cannot be undone
        log.info("cannot keep the old %s for an undo: %s", plan.output, err.strerror or err)
        backup = None
    _replace(plan.staged_output, plan.output)
    try:
        return commit_reseal(reseal, staged_ji)
    except BaseException:
        if backup is not None:
            os.replace(backup, plan.output)
        elif not existed:
            plan.output.unlink(missing_ok=True)
        raise


def execute(plan: LinkPlan, *, force_response_file: bool = False, verify: bool = False,
            ji: str | os.PathLike[str] | None = None, clean: bool = True) -> LinkResult:
    """Run the plan (see the module docstring): with ``verify`` the image is verified, with ``ji`` that
    cache is resealed for it, both before anything is renamed. ``clean``: first remove what killed
    pylinkjl processes left in the output folder (:func:`pylinkjl.fs.leftovers.clean_stale`; a batch does
    that once per folder). Raises LinkError (LLD failed or timed out),
    LinkOutputError (LLD's output is not a complete image), VerificationError, InputError (the .ji does
    not belong to the image), Interrupted (Ctrl-C), or the errors of stub-library generation;
    MissingLibraryError for a plan made with ``allow_missing`` that lacks some; TargetError for ``ji`` with a
    system image or juliac library (only a package image has a .ji), before anything runs."""
    if ji is not None and plan.profile.kind != "pkgimage":
        from pylinkjl.errors import TargetError

        raise TargetError(f"--ji {ji} reseals a package image's cache; a {plan.profile.kind} has no .ji "
                          "(link it without --ji, or with --kind pkgimage)")
    if plan.missing:
        from pylinkjl.errors import MissingLibraryError

        where = plan.julia.home if plan.julia is not None else "the Julia install"
        raise MissingLibraryError(f"the Julia install at {where} lacks what the Julia {plan.line} link command "
                                  f"needs: {', '.join(plan.missing)}",
                                  hint="pass --stub-missing to link against generated stubs instead")
    if ji is not None:
        _check_ji(plan, Path(ji))
    if plan.stubs is not None:
        started = time.perf_counter()
        ensure_stub_set(plan.stubs, str(plan.lld.candidate.path))
        log.info("stub libraries ready in %s (%.0f ms): %s", plan.stub_dir, (time.perf_counter() - started) * 1e3,
                 ", ".join(lib.file_name for lib in plan.stub_libraries))
    with folders_for(plan.output):  # folders made for the output are removed again if the command fails
        return _execute_staged(plan, force_response_file, verify, ji, clean)


def _execute_staged(plan: LinkPlan, force_response_file: bool, verify: bool,
                    ji: str | os.PathLike[str] | None, clean: bool) -> LinkResult:
    if clean:
        for folder in dict.fromkeys([plan.output.parent, *([Path(ji).absolute().parent] if ji is not None else [])]):
            clean_stale(folder)
    try:
        held = make_staging(plan.staging_dir)  # locked while this process lives: never taken for a leftover
    except OSError as err:
        raise filesystem_error(err, "create the staging folder beside the output", plan.staging_dir) from None
    staged_ji: StagedJi | None = None
    committed = False
    try:
        lld_output, use_rsp, seconds = _run_lld(plan, force_response_file)
        size = check_staged_output(plan, lld_output)
        report = _verify_staged(plan) if verify else None
        reseal: ResealPlan | None = None
        if ji is not None:
            from pylinkjl.caches.reseal import plan_reseal, stage_reseal

            reseal = plan_reseal(ji, plan.staged_output, lands_at=plan.output)
            staged_ji = stage_reseal(reseal)
        with signals_held():  # a signal between the renames would leave a half-installed pair
            resealed = _install(plan, reseal, staged_ji)
            staged_ji, committed = None, True
        log.info("wrote %s (%d bytes)", plan.output, size)
        if resealed is not None and not resealed.written:
            log.info("%s already matched the new image: nothing to reseal", resealed.ji_path)
        warnings = result_warnings(plan, size)
        for text in warnings:
            log.warning("%s", text)
        return LinkResult(plan, plan.output, size, seconds, lld_output, use_rsp, report, resealed, warnings)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP/SIGQUIT under process.signals_as_interrupt
        if committed:
            raise Interrupted(f"interrupted after {plan.output} was written: the new image is complete and in place"
                              + (" with its resealed .ji" if ji is not None else ""),
                              signum=signal_number(err)) from None
        raise Interrupted("interrupted; the linker was stopped and no output was written",
                          signum=signal_number(err)) from None
    finally:
        if staged_ji is not None:
            staged_ji.discard()
        remove_flat(plan.staging_dir)
        release(held)
