"""``pylinkjl doctor``: which LLD and which Julia installs pylinkjl finds, and what a target still lacks.

The report is made by :mod:`pylinkjl.link.doctor`; exit code 4 when no usable LLD.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from pylinkjl.errors import LldNotFoundError, PylinkjlError
from pylinkjl.link.doctor import doctor_report, render_doctor
from pylinkjl.target import parse_target


@click.command("doctor")
@click.option("--target", "target_text", metavar="TARGET", help="Check what linking for TARGET needs.")
@click.option("--lld", "lld", metavar="PATH", help="Use this LLD (path or program name).")
@click.option("--julia-home", type=click.Path(file_okay=False, path_type=Path), help="A Julia install to use.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def doctor(ctx: click.Context, target_text: str | None, lld: str | None, julia_home: Path | None,
           as_json: bool) -> None:
    """Show the LLD candidates and Julia installs pylinkjl finds, and what a target still needs."""
    try:
        target = parse_target(target_text) if target_text is not None else None  # '' is an error
        report = doctor_report(target=target, lld=lld, julia_home=None if julia_home is None else str(julia_home))
    except PylinkjlError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(err.exit_code)
    click.echo(json.dumps(report, indent=2) if as_json else render_doctor(report))
    if report["lld"]["selected"] is None:
        ctx.exit(LldNotFoundError.exit_code)
