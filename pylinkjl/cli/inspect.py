"""``pylinkjl inspect``: what a ``.ji`` or image is, what it was built for, and whether it would load."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pylinkjl.caches.flags import parse_session_flags
from pylinkjl.caches.inspection import inspect_path
from pylinkjl.caches.verdict import Session
from pylinkjl.cli.common import emit_json, reporting, setup_logging
from pylinkjl.cpu.cpulist import parse_cpu_list
from pylinkjl.cpu.sysimage import read_sysimage


def session_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Options that describe the Julia session a cache would be loaded into (shared with ``depot``)."""
    for opt in reversed([
        click.option("--cpu", metavar="NAME[,NAME...]", help="Judge against this CPU instead of this machine: a Julia "
                     "or LLVM name or alias (haswell, skylake-avx512, znver4, apple-m1, neoverse-v1, x86-64-v3, ...); "
                     "a comma-separated list judges each (a fleet)."),
        click.option("--sysimage", "sysimage", metavar="SYS.so", type=click.Path(path_type=Path),
                     help="The session's system image: package images are judged against the JIT target it leaves "
                     "on each CPU, and a CPU it does not start on rejects everything."),
        click.option("--julia-version", metavar="VERSION", help="The session's Julia version (default: the one "
                     "that wrote each cache); any other version is an incompatible header, as in Julia."),
        click.option("--julia-commit", metavar="SHA", help="The session's Julia git commit (prefix)."),
        click.option("--julia-branch", metavar="NAME", help="The session's Julia git branch (a distro build says "
                     "HEAD where the official build says v1.12.1)."),
        click.option("--julia-flags", metavar="FLAGS", default="",
                     help='The session\'s command-line flags, e.g. "-O3 --check-bounds=yes" (default: none).'),
        click.option("-C", "--cpu-target", metavar="TARGET", default="native", show_default=True,
                     help="The session's -C (its first target is the JIT target)."),
    ]):
        f = opt(f)
    return f


def make_session(cpu: str | None, julia_version: str | None, julia_commit: str | None, julia_flags: str,
                 cpu_target: str, julia_branch: str | None = None,
                 sysimage: Path | None = None) -> tuple[Session, list[Session] | None]:
    """The session, and with several ``--cpu`` names one session per CPU. Every CPU name is checked
    first (a bad one is a usage error, exit code 2, before any file is read)."""
    names = parse_cpu_list(cpu)
    flags, existing = parse_session_flags(julia_flags)
    image = read_sysimage(sysimage) if sysimage is not None else None
    session = Session(julia_version=julia_version, julia_commit=julia_commit, julia_branch=julia_branch, flags=flags,
                      pkgimages_existing=existing, cpu=names[0] if names else None, cpu_target=cpu_target,
                      sysimage=image)
    fleet = [session.for_cpu(n) for n in names] if names and len(names) > 1 else None
    return session, fleet


def _yes(ok: object) -> str:
    words: dict[object, str] = {True: "ok", False: "MISMATCH", None: "not checked"}
    return words.get(ok, str(ok))


def _features(names: list[str], limit: int = 12) -> str:
    more = f", ... (+{len(names) - limit})" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def render_targets(report: dict[str, Any], echo: Callable[[str], None], verbose: int) -> None:
    for t in report["targets"]:
        feats = t.get("enabled", [])
        extra = " unknown-name" if t["unknown_name"] else ""
        extra += " vec-call" if t["vec_call"] else ""
        clones = f", {t['clones']} clones" if "clones" in t else ""
        vec = f", {8 * t['vector_bytes']}-bit vectors" if "vector_bytes" in t else ""
        echo(f"    {t['index']} {t['name']}{extra}: {len(feats)} features{vec}{clones}")
        if feats:
            echo(f"      {', '.join(feats) if verbose else _features(feats)}")
        if t.get("unknown_bits"):
            echo(f"      bits unknown to these tables: {t['unknown_bits']}")
        if t.get("ext_features"):
            echo(f"      extra LLVM features: {t['ext_features']}")


def render_cpu(cpu: dict[str, Any] | None, echo: Callable[[str], None]) -> None:
    if not cpu:
        return
    host = cpu.get("host")
    if host is None:
        echo(f"  CPU        {cpu.get('message')}")
        return
    sysimg = cpu.get("sysimage")
    if sysimg is not None:
        chosen = (f"runs its target {sysimg['chosen']} ({sysimg['chosen_name']})" if sysimg.get("starts")
                  else sysimg.get("message", ""))
        narrowed = f"; JIT target loses {', '.join(sysimg['jit_narrowed'])}" if sysimg.get("jit_narrowed") else ""
        echo(f"  sysimage   {Path(sysimg['path']).name} on {host['name']}: {chosen}{narrowed}")
    if "session_target" not in cpu:  # the system image decided already (it said why above)
        echo(f"  CPU        {host['name']} ({host['source']})")
        return
    echo(f"  CPU        {host['name']} ({host['source']}) -> session target {cpu['session_target']['name']}")
    if cpu.get("ok"):
        echo(f"             picks target {cpu['chosen']} ({cpu['chosen_name']})")
    for t in cpu.get("targets", []):
        line = f"             Target {t['index']} ({t['name']}): {t['reason']}"
        echo(line)
        if t["missing"]:
            echo(f"               needs {', '.join(t['missing'])}, which {host['name']} lacks")
    if cpu.get("assumptions"):
        echo(f"             assumption: {cpu['assumptions']}")


def render_fleet(cells: list[dict[str, Any]] | None, echo: Callable[[str], None]) -> None:
    """One line per CPU of a fleet: loads on which target, or rejected and why (the first CPU's detail is above)."""
    if not cells:
        return
    width = max(len(c["cpu"]) for c in cells)
    echo("  fleet")
    for c in cells:
        echo(f"    {c['cpu'].ljust(width)}  {c['short']}")


def render_ji(r: dict[str, Any], verbose: int) -> None:
    echo = click.echo
    echo(f"{r['path']}")
    echo(f"  file       {r['size']} bytes, .ji format {r['format']}, {r['byte_order']}-endian, "
         f"{8 * r['pointer_size']}-bit")
    echo(f"  Julia      {r['julia_version']} ({r['branch']}, {r['commit'][:10]}) for {r['os']} {r['arch']}")
    pkg = r["package"]
    echo(f"  package    {pkg['name']} {pkg['uuid'] or ''}".rstrip())
    echo(f"  flags      {r['cache_flags']['byte']} = {' '.join(r['cache_flags']['flags'])}")
    if "required_modules" in r:
        deps = r["dependencies"]
        echo(f"  modules    {len(r['worklist'])} in the worklist, {len(r['required_modules'])} required; "
             f"{len(deps)} source files; preferences: {', '.join(r['preferences']) or 'none'}")
        if verbose:
            for d in deps:
                echo(f"               {d}")
    img = r["image"]
    if r["pkgimage"]:
        size = f" ({img['size']} bytes)" if img.get("exists") else " (missing)"
        echo(f"  image      {img['path']}{size}")
        if img.get("complete") is False:
            echo(f"             INCOMPLETE: {img.get('problem')}")
    else:
        echo("  image      none (--pkgimages=no cache)")
    cs = r["checksums"]
    so = cs["crc_so"]
    so_text = f"crc_so {so['stored']} " + (_yes(so["ok"]) if so["actual"] is None or so["ok"]
                                             else f"MISMATCH (image is {so['actual']})")
    echo(f"  checksums  {so_text}; .ji crc {cs['crc_ji']['stored']} {_yes(cs['crc_ji']['ok'])}")
    echo(f"  targets    {len(r['targets'])}" + (f" (CPU tables: {r['tables']})" if r.get("tables") else ""))
    render_targets(r, echo, verbose)
    render_cpu(r.get("cpu"), echo)
    v = r["verdict"]
    word = {True: "LOADS", False: f"REJECTED ({v['rejected_by']})", None: "UNKNOWN"}[v["loads"]]
    echo(f"  verdict    {word}")
    if v["reason"]:
        for line in str(v["reason"]).splitlines():
            echo(f"             {line}")
    if verbose:
        for c in r["checks"]:
            echo(f"             - {c['check']}: {_yes(c['ok'])}: {c['message']}")
        echo(f"             not checked: {'; '.join(v['unchecked'])}")
    for note in r.get("notes", []):
        echo(f"  note       {note}")


def render_image(r: dict[str, Any], verbose: int) -> None:
    echo = click.echo
    echo(f"{r['path']}")
    version = f" (Julia {r['julia_version']})" if r.get("julia_version") else ""
    echo(f"  image      {r['format']} {r['arch']}, {r['size']} bytes, layout {r['line']}{version}, "
         f"crc32c {r['crc32c']}")
    echo(f"  kind       {r['image_kind_name']}: {r['image_kind_reason']}")
    if r.get("entry_points"):
        echo(f"  entries    {', '.join(r['entry_points'])}")
    echo(f"  tables     {r['nshards']} shard(s), {r['nfuncs']} functions")
    if r.get("cpu_target_string") is not None:
        echo(f"  cpu target {r['cpu_target_string']!r} (the -C it was built with)")
    echo(f"  targets    {len(r['targets'])}")
    render_targets(r, echo, verbose)
    render_cpu(r.get("cpu"), echo)
    start = r.get("starts")
    if start is not None:
        word = {True: "STARTS", False: "DOES NOT START", None: "UNKNOWN"}[start["ok"]]
        echo(f"  start      {word}")
        if start["ok"] is not True:
            for line in str(start["message"]).splitlines():
                echo(f"             {line}")
    cache = r.get("cache")
    if cache:
        echo(f"  cache      {cache['ji']}: checksum {_yes(cache['crc_ok'])}, same build {_yes(cache['same_build'])}, "
             f"same targets {_yes(cache.get('targets_equal'))}")


@click.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@session_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--check", is_flag=True, help="Exit with status 1 if a cache would be rejected.")
@click.option("--runtime", "runtime", type=click.Path(path_type=Path), metavar="TREE",
              help="Also ask the real Julia runtime of TREE (verify --runtime's judge): its verdict beside ours.")
@click.option("-v", "--verbose", count=True, help="All features, all checks, source files.")
def inspect_command(paths: tuple[Path, ...], cpu: str | None, sysimage: Path | None, julia_version: str | None,
                    julia_commit: str | None, julia_branch: str | None, julia_flags: str, cpu_target: str,
                    as_json: bool, check: bool, runtime: Path | None, verbose: int) -> None:
    """Inspect .ji caches and package images: header, Julia version, flags, modules, CPU targets,
    checksums, and whether Julia would load them here (or on --cpu NAME), and if not, why."""
    setup_logging(verbose - 1)
    with reporting(verbose, as_json):
        session, fleet = make_session(cpu, julia_version, julia_commit, julia_flags, cpu_target, julia_branch,
                                      sysimage)
        reports = [inspect_path(p, session, fleet=fleet) for p in paths]
        judged: dict[int, Any] = {}
        if runtime is not None:
            from pylinkjl.images.judge import judge_inspected

            for i, r in enumerate(reports):
                if r["kind"] == "image":
                    judged[i] = judge_inspected(Path(r["path"]), runtime, system_image="starts" in r,
                                                sysimage=sysimage,
                                                cpu_target=None if cpu_target in ("", "native") else cpu_target)
                    r["runtime"] = judged[i].to_dict()
    if as_json:
        emit_json(reports[0] if len(reports) == 1 else reports)
    else:
        for i, r in enumerate(reports):
            if i:
                click.echo()
            (render_ji if r["kind"] == "ji" else render_image)(r, verbose)
            render_fleet(r.get("fleet"), click.echo)
            if i in judged:
                click.echo("  " + judged[i].render().replace("\n", "\n  "))
    if check and any(r.get("verdict", {}).get("loads") is False or (r["kind"] == "image" and r["cpu"].get("ok") is False)
                     or any(c["loads"] is False for c in r.get("fleet") or []) for r in reports):
        sys.exit(1)
