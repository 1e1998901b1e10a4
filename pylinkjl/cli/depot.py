"""``pylinkjl depot``: every cache of one or more depots, with a verdict, a summary and the leftovers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pylinkjl.caches.depot import DepotReport, default_depot, scan_depot
from pylinkjl.cli.common import emit_json, reporting, setup_logging
from pylinkjl.cli.inspect import make_session, session_options


def _verdict(loads: bool | None, why: str | None) -> str:
    return {True: "loads", False: f"rejected: {why}", None: "unknown"}[loads]


def _table(header: tuple[str, ...], table: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(header)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def render_matrix(report: DepotReport, verbose: int) -> None:
    """One row per cache, one column per CPU: loads (on which target) / rejected (why, short)."""
    cpus = report.cpus or []
    if report.sysimage:
        s = report.sysimage
        click.echo(f"system image {s['path']} ({s['arch']}, targets: {', '.join(s['targets'])})")
    table = []
    for r in report.rows:
        name = r.package + (f" ({Path(r.path).name})" if verbose else "")
        table.append((name, r.julia_version, ",".join(r.targets) or "-", *(c["short"] for c in r.cells or [])))
    _table(("package", "julia", "targets", *cpus), table)
    click.echo()
    for f in report.fleet_summary:
        reasons = ", ".join(f"{k} {v}" for k, v in f["rejected_by"].items())
        na = f", {f['not_applicable']} of another architecture" if f["not_applicable"] else ""
        click.echo(f"{f['cpu']}: {f['loads']} load, {f['rejected']} rejected" + (f" ({reasons})" if reasons else "")
                   + na)


def render(report: DepotReport, verbose: int) -> None:
    if report.cpus:
        render_matrix(report, verbose)
        _render_footer(report)
        return
    rows = report.rows
    header = ("package", "julia", "flags", "targets", "checksums", "verdict")
    table: list[tuple[str, ...]] = []
    for r in rows:
        sums = "ok" if r.crc_ji_ok and r.crc_so_ok in (True, None) else (
            "BAD .ji" if r.crc_ji_ok is False else "BAD image" if r.crc_so_ok is False else "?")
        flags = r.flags.replace("--pkgimages=", "pkgimg=").replace("--check-bounds=", "cb=").replace("--inline=", "inl=")
        table.append((r.package + ("" if not verbose else f" ({Path(r.path).name})"), r.julia_version, flags,
                      ",".join(r.targets) or "-", sums, _verdict(r.loads, r.rejected_by)))
    _table(header, table)
    s = report.summary
    click.echo()
    reasons = ", ".join(f"{k} {v}" for k, v in s["rejected_by"].items())
    click.echo(f"{s['caches']} caches of {s['packages']} packages: {s['loads']} load, {s['rejected']} rejected"
               + (f" ({reasons})" if reasons else "") + (f", {s['unknown']} unknown" if s["unknown"] else ""))
    _render_footer(report)


def _render_footer(report: DepotReport) -> None:
    s = report.summary
    mib = s["bytes_hashed"] / 2**20
    click.echo(f"checked {mib:.1f} MiB in {s['seconds']:.2f} s")
    for title, items in (("orphaned", report.orphans), ("stale", report.stale)):
        if items:
            click.echo(f"{title} ({len(items)}):")
            for o in items:
                click.echo(f"  {o['path']}: {o['why']}")
    if report.errors:
        click.echo(f"unreadable ({len(report.errors)}):")
        for e in report.errors:
            click.echo(f"  {e['error']}")


@click.command("depot")
@click.argument("depots", nargs=-1, type=click.Path(path_type=Path))
@session_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable keys, sorted rows).")
@click.option("--workers", type=click.IntRange(1, 64), help="Files read in parallel (default: up to 4).")
@click.option("-v", "--verbose", count=True)
def depot_command(depots: tuple[Path, ...], cpu: str | None, sysimage: Path | None, julia_version: str | None,
                  julia_commit: str | None, julia_branch: str | None, julia_flags: str, cpu_target: str,
                  as_json: bool, workers: int | None, verbose: int) -> None:
    """Check every cache in DEPOTS (default: the first entry of JULIA_DEPOT_PATH, else ~/.julia):
    package, version, flags, targets, checksums and whether it would load; orphaned and stale files.
    With --cpu A,B,C: a matrix, one row per cache and one column per CPU."""
    setup_logging(verbose - 1)
    with reporting(verbose, as_json):
        session, fleet = make_session(cpu, julia_version, julia_commit, julia_flags, cpu_target, julia_branch,
                                      sysimage)
        cpus = [s.cpu or "" for s in fleet] if fleet else ([session.cpu] if sysimage and session.cpu else None)
        paths = list(depots) or [default_depot()]
        report = _scan(paths, session, workers, cpus, show_progress=sys.stderr.isatty() and not as_json)
    if as_json:
        emit_json(report.to_dict())
    else:
        render(report, verbose)


def _scan(paths: list[Path], session: Any, workers: int | None, cpus: list[str] | None, *,
          show_progress: bool) -> DepotReport:
    if not show_progress:
        return scan_depot(paths, session, workers=workers, cpus=cpus)
    bar: Any = None

    def on_plan(n: int) -> None:
        nonlocal bar
        bar = click.progressbar(length=n, label="reading caches", file=sys.stderr)
        bar.__enter__()

    try:
        return scan_depot(paths, session, workers=workers, on_plan=on_plan, cpus=cpus,
                          progress=lambda k: bar.update(k) if bar is not None else None)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
