"""The error hierarchy: every failure pylinkjl reports is one of these.

Each class has its own exit code so that scripts can tell "fix your input" from "install LLD" from
"the link itself failed". Messages say what went wrong and, where we know, what to do about it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pylinkjl.commandline import condensed_command, quote_command


class PylinkjlError(Exception):
    """Base class. ``str(err)`` is the full user-facing message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.report(verbose=True)

    def details(self, *, verbose: bool) -> list[str]:
        """Lines between the message and the hint (subclasses add what they carry)."""
        return []

    def report(self, *, verbose: bool = False) -> str:
        """The failure as a person reads it: message, details, hint. The CLI prints exactly this."""
        lines = [self.message, *self.details(verbose=verbose)]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The one error shape in every JSON output (CLI, batch items)."""
        return {"type": type(self).__name__, "exit_code": self.exit_code, "message": self.message,
                "hint": self.hint}


class InputError(PylinkjlError):
    """A file given to pylinkjl is missing, unreadable, malformed or of the wrong kind."""

    exit_code = 3

    def __init__(self, path: str | Path | None, problem: str, *, offset: int | None = None,
                 hint: str | None = None) -> None:
        where = "" if path is None else f"{path}"
        if offset is not None:
            where += f" (at offset {offset:#x})"
        super().__init__(f"{where}: {problem}" if where else problem, hint=hint)
        self.path = None if path is None else Path(path)
        self.problem = problem
        self.offset = offset

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": None if self.path is None else str(self.path), "offset": self.offset}


class TargetError(PylinkjlError):
    """An unknown target, Julia version or option combination."""

    exit_code = 2


class LldNotFoundError(PylinkjlError):
    """No usable LLD was found (or the one named explicitly is unusable)."""

    exit_code = 4


class LinkError(PylinkjlError):
    """LLD ran and failed (or timed out, or was interrupted)."""

    exit_code = 5

    def __init__(self, message: str, *, argv: list[str] | None = None, output: str = "",
                 returncode: int | None = None, advice: list[str] | None = None) -> None:
        super().__init__(message)
        self.argv = argv or []
        self.output = output
        self.returncode = returncode
        self.advice = advice or []

    def details(self, *, verbose: bool) -> list[str]:
        lines: list[str] = []
        if self.argv:
            lines.append("command" + (":" if verbose else " (condensed; -v shows it whole):"))
            lines.append("  " + (quote_command(self.argv) if verbose else condensed_command(self.argv)))
        if self.output.strip():
            lines.append("LLD output:")
            lines += ["  " + line for line in self.output.rstrip().splitlines()]
        lines += [f"advice: {advice}" for advice in self.advice]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "argv": self.argv, "lld_output": self.output, "returncode": self.returncode,
                "advice": self.advice}


class LinkOutputError(LinkError):
    """LLD reported success, but what it wrote is not a complete image of the target's format and
    architecture (nothing was renamed over the output). Exit code 5, as any failed link."""


class MissingLibraryError(PylinkjlError):
    """A real Julia tree lacks libraries that the link line names."""

    exit_code = 6


class VerificationError(PylinkjlError):
    """A produced image failed one or more verification checks; ``verify`` (pylinkjl.images.report.Report)
    has them all when there is one."""

    exit_code = 7

    def __init__(self, message: str, *, verify: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.verify = verify

    def details(self, *, verbose: bool) -> list[str]:
        return [] if self.verify is None else str(self.verify.render(verbose=verbose)).splitlines()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "verify": None if self.verify is None else self.verify.to_dict()}


class Interrupted(PylinkjlError):
    """Ctrl-C (SIGINT), SIGTERM, SIGHUP or SIGQUIT stopped the command; nothing half-done was left behind
    (the message says whether the output was written: a signal during the final renames waits for them). The
    exit code is 128 + the signal number, as a shell reports a process killed by it (130 for Ctrl-C)."""

    exit_code = 130

    def __init__(self, message: str, *, signum: int = 2, hint: str | None = None) -> None:
        import signal

        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(message if signum == 2 else f"{message} (by {name})", hint=hint)
        self.signum = signum
        self.exit_code = 128 + signum

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "signal": self.signum}


class FileSystemError(PylinkjlError):
    """The system refused to create, write or rename something pylinkjl needed (an output, its folder, the
    staging folder, the stub cache, a resealed .ji). Subclasses name the cause, each with its own exit code;
    this base class covers the rest (I/O errors, symbolic-link loops, ...). ``path`` is the path involved,
    ``cause`` the system's words, ``errno`` its number."""

    exit_code = 8
    advice = ""

    def __init__(self, path: str | Path | None, doing: str, cause: str, *, errno: int | None = None,
                 hint: str | None = None, details: list[str] | None = None) -> None:
        where = f"{path}: " if path is not None else ""
        super().__init__(f"{where}cannot {doing}: {cause}", hint=hint or self.advice or None)
        self.path = None if path is None else Path(path)
        self.doing = doing
        self.cause = cause
        self.errno = errno
        self.extra = details or []

        self.program_output = ""  # what a program that hit the problem said (LLD's backtrace): with -v

    def details(self, *, verbose: bool) -> list[str]:
        lines = list(self.extra)
        if verbose and self.program_output.strip():
            lines.append("LLD output:")
            lines += ["  " + line for line in self.program_output.rstrip().splitlines()]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": None if self.path is None else str(self.path), "cause": self.cause,
                "errno": self.errno}


class NoSpaceError(FileSystemError):
    """No space left on the device (ENOSPC), or the disk quota is used up (EDQUOT)."""

    exit_code = 9
    advice = "free some space there or write the output to another file system"


class ReadOnlyError(FileSystemError):
    """The file system is mounted read-only (EROFS)."""

    exit_code = 10
    advice = "write the output to a writable file system"


class NotPermittedError(FileSystemError):
    """Permission denied (EACCES) or operation not permitted (EPERM: e.g. an immutable file, chattr +i)."""

    exit_code = 11
    advice = "check the permissions and attributes (lsattr) of the file and its folder"


class BusyError(FileSystemError):
    """The path is in use and cannot be replaced (EBUSY: e.g. a mount point; ETXTBSY)."""

    exit_code = 12
    advice = "the output is in use (a mount point or a running program): choose another output path"


class NameTooLongError(FileSystemError):
    """A file name or the whole path is longer than the file system allows (ENAMETOOLONG)."""

    exit_code = 13
    advice = "use a shorter name or a shorter folder"


class NotAFolderError(FileSystemError):
    """A path that must be a folder is a file (ENOTDIR, or EEXIST when a folder is to be made there)."""

    exit_code = 14
    advice = "a component of the path is a file, not a folder"


_ERRNO_CLASSES: dict[str, type[FileSystemError]] = {
    "ENOSPC": NoSpaceError, "EDQUOT": NoSpaceError, "EROFS": ReadOnlyError, "EACCES": NotPermittedError,
    "EPERM": NotPermittedError, "EBUSY": BusyError, "ETXTBSY": BusyError, "ENAMETOOLONG": NameTooLongError,
    "ENOTDIR": NotAFolderError, "EEXIST": NotAFolderError,
}


def filesystem_error(err: OSError, doing: str, path: str | os.PathLike[str] | None = None, *,
                     hint: str | None = None) -> FileSystemError:
    """The named error for an OSError raised while pylinkjl wrote ``path`` (default: the error's own file
    name). ENOSPC also names the file system and its free space."""
    import errno as errnos

    code = err.errno
    name = errnos.errorcode.get(code, "") if code is not None else ""
    cls = _ERRNO_CLASSES.get(name, FileSystemError)
    where = path if path is not None else err.filename
    cause = err.strerror or str(err)
    if cls is NoSpaceError and where is not None:
        return no_space(Path(where), doing, cause=cause, errno=code)
    return cls(None if where is None else Path(os.fsdecode(where)), doing, cause, errno=code, hint=hint)


def no_space(path: Path, doing: str, *, cause: str = "No space left on device", errno: int | None = 28,
             details: list[str] | None = None) -> NoSpaceError:
    """A NoSpaceError naming the device: "no space left on <mount point> (<device>, N bytes free of M)"."""
    from pylinkjl.fs.space import describe_free_space

    return NoSpaceError(path, doing, f"no space left on {describe_free_space(path)}", errno=errno,
                        details=[f"system error: {cause}", *(details or [])])
