"""What every command shares: logging set-up, error rendering and exit codes."""

from __future__ import annotations

import errno
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click

from pylinkjl.errors import Interrupted, PylinkjlError, filesystem_error
from pylinkjl.process import signal_number


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = "pylinkjl: " if record.levelno < logging.WARNING else f"pylinkjl: {record.levelname.lower()}: "
        return "\n".join(prefix + line if i == 0 else "    " + line for i, line in enumerate(text.splitlines()))


def setup_logging(verbosity: int) -> None:
    """0: warnings only; 1: what pylinkjl found, decided and ran; 2+: debug detail."""
    logger = logging.getLogger("pylinkjl")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG)


def json_text(value: Any) -> Any:
    """``value`` with every string made valid Unicode. File names are bytes on POSIX and Python decodes
    undecodable bytes to lone surrogates (U+DC80 - U+DCFF), which are not valid in JSON's UTF-8: each such byte becomes
    U+FFFD (REPLACEMENT CHARACTER), as os.fsdecode + 'replace' gives. Documented in the README (--json)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value
    if isinstance(value, dict):
        return {json_text(k): json_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_text(v) for v in value]
    return value


def emit_json(data: Any) -> None:
    """Every command's JSON: ASCII with \\u escapes, never a lone surrogate (see json_text)."""
    click.echo(json.dumps(json_text(data), indent=2, sort_keys=False))


def fail(err: PylinkjlError, *, verbosity: int = 0, as_json: bool = False) -> NoReturn:
    """Render a pylinkjl error (its one report, or its one dict) and exit with its code."""
    if as_json:
        emit_json({"ok": False, "error": err.to_dict()})
    else:
        click.echo(f"error: {err.report(verbose=verbosity > 0)}", err=True)
    sys.exit(err.exit_code)


@contextmanager
def reporting(verbosity: int = 0, as_json: bool = False) -> Iterator[None]:
    """Turn pylinkjl errors and Ctrl-C into messages and exit codes (no tracebacks)."""
    try:
        yield
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM/SIGHUP/SIGQUIT (process.signals_as_interrupt)
        fail(Interrupted("interrupted", signum=signal_number(err)), verbosity=verbosity, as_json=as_json)
    except PylinkjlError as err:
        fail(err, verbosity=verbosity, as_json=as_json)
    except OSError as err:  # the system refused something no reader or writer above named: still named here
        if verbosity >= 2 or err.errno == errno.EPIPE:  # a closed stdout: click ends quietly, as `head` expects
            raise
        fail(filesystem_error(err, "access it"), verbosity=verbosity, as_json=as_json)
    except (ValueError, RuntimeError) as err:  # a bug we did not foresee
        if verbosity >= 2:
            raise
        fail(PylinkjlError(f"internal error: {type(err).__name__}: {err}",
                           hint="rerun with -vv for the traceback and report it"), as_json=as_json)



class Seconds(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """``--timeout``: a finite number of seconds above 0, checked by the library's own rule (usage error, rc 2)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from pylinkjl.link.plan import check_timeout

        try:
            seconds = float(value)
            check_timeout(seconds)
        except (TypeError, ValueError, PylinkjlError):
            self.fail(f"{value!r} is not a finite number of seconds above 0", param, ctx)
        return seconds
