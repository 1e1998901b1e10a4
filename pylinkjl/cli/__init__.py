"""Command line: ``pylinkjl <command>``. Each command is one library call plus rendering.

Commands live in their own modules and are imported only when invoked, so ``pylinkjl link`` never
pays for what ``verify`` or ``inspect`` import.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name -> "module:attribute" of the click command
COMMANDS = {
    "link": "link:link_command",
    "doctor": "doctor:doctor",
    "demo": "demo:demo_command",
    "relink": "relink:relink_command",
    "verify": "verify:verify_command",
    "inspect": "inspect:inspect_command",
    "cpu-target": "cputarget:cputarget_command",
    "depot": "depot:depot_command",
    "reseal": "reseal:reseal_command",
}


def _interrupted(err: BaseException) -> click.exceptions.Exit:
    """A signal that arrived outside a command's own reporting (start-up, imports, option parsing): the
    message and exit code (128 + n) every command gives, not click's "Aborted!" with 1."""
    from pylinkjl.process import signal_number

    code = 128 + signal_number(err)
    click.echo("error: interrupted", err=True)
    return click.exceptions.Exit(code)


class LazyGroup(click.Group):
    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Every command runs with SIGTERM, SIGHUP and SIGQUIT handled like Ctrl-C (process.py)."""
        from pylinkjl.process import signals_as_interrupt

        try:
            with signals_as_interrupt():
                return super().main(*args, **kwargs)
        except KeyboardInterrupt as err:  # one recorded during start-up (pylinkjl/__main__.py), replayed here
            sys.exit(_interrupted(err).exit_code)

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as err:
            raise _interrupted(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:
            raise _interrupted(err) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = COMMANDS.get(name)
        if spec is None:
            return None
        module, attr = spec.split(":")
        cmd: click.Command = getattr(importlib.import_module(f"pylinkjl.cli.{module}"), attr)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pylinkjl")
def main() -> None:
    """Link, verify and inspect Julia package images with LLD."""


def run() -> Any:  # pragma: no cover - console entry point alias
    return main(sys.argv[1:])
