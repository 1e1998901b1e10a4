"""``pylinkjl doctor``: which LLD and which Julia installs pylinkjl finds, and what a target still lacks.

Pure rendering over ``pylinkjl.link.lld`` and ``pylinkjl.link.juliatree``; exit code 4 when no usable LLD.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from pylinkjl.errors import LldNotFoundError, PylinkjlError, TargetError
from pylinkjl.link.juliatree import JuliaTree, find_julia_on_path, open_tree
from pylinkjl.link.lld import (
    candidates,
    choose,
    describe,
    flavor_args,
    probe,
    rejection,
    target_flavor,
    version_notes,
)
from pylinkjl.target import Target, host_target, parse_target


def _default_flavor(target: Target | None) -> str:
    if target is not None:
        return target_flavor(target)
    try:
        return target_flavor(host_target())
    except TargetError:
        return "gnu"


def _tree_dict(tree: JuliaTree, source: str) -> dict[str, Any]:
    return {"home": str(tree.home), "version": tree.version, "os": tree.os, "arch": tree.arch,
            "debug": tree.debug, "source": source}


def doctor_report(*, target: Target | None, lld: str | None, julia_home: str | None) -> dict[str, Any]:
    """Everything ``doctor`` prints, as plain data."""
    environ = os.environ
    flavor = _default_flavor(target)
    trees: list[tuple[JuliaTree, str]] = []
    if julia_home is not None:
        trees.append((open_tree(julia_home), "--julia-home"))
    on_path = find_julia_on_path(environ)
    if on_path is not None and all(on_path.home != t.home for t, _ in trees):
        trees.append((on_path, "PATH"))
    probes = [probe(c, environ=environ)
              for c in candidates(explicit=lld, julia_home=julia_home, environ=environ)]
    chosen = choose(probes, flavor)
    report: dict[str, Any] = {
        "flavor": flavor,
        "lld": {"candidates": describe(probes), "selected": None, "problem": None},
        "julia": [_tree_dict(t, src) for t, src in trees],
    }
    if chosen is None:
        explicit = probes[0] if probes and probes[0].candidate.source == "explicit" else None
        report["lld"]["problem"] = (
            f"--lld {explicit.candidate.path} cannot be used: {rejection(explicit, flavor)}" if explicit is not None
            else f"no usable LLD for -flavor {flavor} (install lld-19, or pass --lld PATH / set PYLINKJL_LLD)")
    else:
        report["lld"]["selected"] = {**describe([chosen])[0],
                                     "argv_prefix": [str(chosen.candidate.path), *flavor_args(chosen.candidate, flavor)]}
    if target is not None:
        notes: list[str] = []
        if not any(t.matches(target) for t, _ in trees):
            notes.append(f"no Julia tree for {target.name}: stub libraries will be generated "
                         "(pass --julia-home to link against a real one)")
        if chosen is None:
            need = "a generic lld or ld64.lld" if flavor == "darwin" else "a generic lld or ld.lld"
            notes.append(f"no usable LLD for {target.name}: it needs {need}, version 14 or newer")
        else:
            notes.extend(version_notes(chosen, target))
        report["target"] = {"name": target.name, "triple": target.triple, "notes": notes}
    return report


def _render(report: dict[str, Any]) -> str:
    lines = [f"LLD candidates, in search order (-flavor {report['flavor']}):"]
    selected = report["lld"]["selected"]
    if not report["lld"]["candidates"]:
        lines.append("  none found")
    for i, c in enumerate(report["lld"]["candidates"], 1):
        mark = "=>" if selected is not None and c["path"] == selected["path"] and c["source"] == selected["source"] \
            else "  "
        version = f"LLD {c['version']}" if c["version"] else "version unknown"
        lines.append(f"  {mark} {i}. {c['path']}  [{c['source']}, {c['kind']}]  {version}")
        for name, value in c["env"].items():
            lines.append(f"          env {name}={value}")
        if c["problem"]:
            lines.append(f"          problem: {c['problem']}")
    if selected is not None:
        lines.append(f"Would use: {selected['path']} (LLD {selected['version']}), "
                     f"as `{' '.join(selected['argv_prefix'])} ...`")
    else:
        lines.append(f"Would use: nothing: {report['lld']['problem']}")
    lines.append("Julia installs:")
    if not report["julia"]:
        lines.append("  none found (pass --julia-home to use one)")
    for t in report["julia"]:
        where = f"{t['os'] or 'unknown OS'} {t['arch'] or 'unknown arch'}" + (" debug build" if t["debug"] else "")
        lines.append(f"  {t['home']}  Julia {t['version']}  {where}  [{t['source']}]")
    if "target" in report:
        tgt = report["target"]
        lines.append(f"Target {tgt['name']} ({tgt['triple']}):")
        lines.extend(f"  - {note}" for note in tgt["notes"])
        if not tgt["notes"]:
            lines.append("  ready: nothing missing")
    return "\n".join(lines)


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
        target = parse_target(target_text) if target_text else None
        report = doctor_report(target=target, lld=lld, julia_home=None if julia_home is None else str(julia_home))
    except PylinkjlError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(err.exit_code)
    click.echo(json.dumps(report, indent=2) if as_json else _render(report))
    if report["lld"]["selected"] is None:
        ctx.exit(LldNotFoundError.exit_code)
