"""How a command is shown to a person: logs, ``--dry-run`` and failure reports (it is never run through a shell)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence


def quote_command(argv: Sequence[str]) -> str:
    """Shell-quoted command (POSIX quoting), so that it can be pasted into a terminal."""
    return shlex.join(argv)


def condensed_command(argv: Sequence[str], limit: int = 12) -> str:
    """The command with long middles elided, for error messages (``-v`` shows it whole)."""
    if len(argv) <= limit:
        return quote_command(argv)
    head, tail = list(argv[: limit - 4]), list(argv[-3:])
    return f"{quote_command(head)} ... ({len(argv) - len(head) - len(tail)} more) ... {quote_command(tail)}"
