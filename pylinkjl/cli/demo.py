"""``pylinkjl demo``: the sample job of the README."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from pylinkjl.cli.common import emit_json, reporting, setup_logging


@click.command("demo")
@click.option("--out-dir", type=click.Path(path_type=Path), help="Keep the images here (default: a temp folder).")
@click.option("--julia-version", metavar="VERSION", help="Julia line to link like (default 1.12).")
@click.option("--lld", type=click.Path(path_type=Path), help="The LLD to run.")
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", count=True)
def demo_command(out_dir: Path | None, julia_version: str | None, lld: Path | None, as_json: bool,
                 verbose: int) -> None:
    """Link the built-in sample for all seven targets with stub libraries and show the result."""
    setup_logging(verbose)
    with reporting(verbose, as_json), tempfile.TemporaryDirectory(prefix="pylinkjl-demo-") as tmp:
        from pylinkjl.link.demo import run_demo

        folder = out_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = run_demo(folder, julia_version=julia_version, lld=lld)
        if as_json:
            emit_json([{"target": r.target.name, "output": str(r.output), "format": r.format, "arch": r.arch,
                        "size": r.size, "julia_exports": list(r.julia_exports), "seconds": round(r.seconds, 4)}
                       for r in rows])
            return
        header = ("target", "output", "format", "arch", "size", "Julia exports", "time")
        table = [header] + [
            (r.target.name, r.output.name, r.format, r.arch, f"{r.size:,} B",
             f"{len(r.julia_exports)}: {', '.join(r.julia_exports)}", f"{r.seconds * 1e3:.0f} ms") for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for i, row in enumerate(table):
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
            if i == 0:
                click.echo("  ".join("-" * w for w in widths))
        where = folder if out_dir else "a temporary folder (use --out-dir to keep them)"
        click.echo(f"\n{len(rows)} package images linked into {where}")
