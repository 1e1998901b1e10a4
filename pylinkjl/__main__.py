"""``python -m pylinkjl`` and the ``pylinkjl`` console script.

Signals are deferred from the first line on: one that arrives while Python is still importing click and
the command (tens of milliseconds) is recorded here and replayed by process.signals_as_interrupt as soon
as the command's own handling exists, so even an early Ctrl-C ends as "interrupted" with 128 + n, never as a
traceback from the middle of an import."""

from __future__ import annotations

import signal


class _Deferred:
    """A signal handler that only records; ``pending`` is read by process.signals_as_interrupt."""

    def __init__(self) -> None:
        self.pending: list[int] = []

    def __call__(self, signum: int, _frame: object) -> None:
        self.pending.append(signum)


def main() -> None:
    deferred = _Deferred()
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), deferred)
    from pylinkjl.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
