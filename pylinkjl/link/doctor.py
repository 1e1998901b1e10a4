"""What ``doctor`` reports: which LLD and which Julia installs pylinkjl finds, and what a target still lacks.

:func:`doctor_report` gathers it as plain data (what ``doctor --json`` prints); :func:`render_doctor` is its
one text rendering.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pylinkjl.errors import TargetError
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
from pylinkjl.target import Target, host_target


def _default_flavor(target: Target | None) -> str:
    if target is not None:
        return target_flavor(target)
    try:
        return target_flavor(host_target())
    except TargetError:
        return "gnu"


def _tree_dict(tree: JuliaTree, source: str) -> dict[str, Any]:
    return {"home": str(tree.home), "version": tree.version, "version_source": tree.version_source,
            "os": tree.os, "arch": tree.arch, "debug": tree.debug, "source": source}


def doctor_report(*, target: Target | None, lld: str | None, julia_home: str | None,
                  environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Everything ``doctor`` prints, as plain data."""
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


def render_doctor(report: dict[str, Any]) -> str:
    """The report as a person reads it."""
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
        version = t["version"] or "of unknown version (give --julia-version)"
        lines.append(f"  {t['home']}  Julia {version}  {where}  [{t['source']}]")
    if "target" in report:
        tgt = report["target"]
        lines.append(f"Target {tgt['name']} ({tgt['triple']}):")
        lines.extend(f"  - {note}" for note in tgt["notes"])
        if not tgt["notes"]:
            lines.append("  ready: nothing missing")
    return "\n".join(lines)
