"""``pylinkjl cpu-target``: parse, validate and explain a JULIA_CPU_TARGET string; show the official ones."""

from __future__ import annotations

import shlex
from typing import Any

import click

from pylinkjl.cli.common import emit_json, reporting, setup_logging
from pylinkjl.cpu import tables as T
from pylinkjl.cpu.cpulist import parse_cpu_list
from pylinkjl.cpu.cpuparse import explain_cpu_target, guess_arch
from pylinkjl.cpu.fleet import FleetCheck, check_fleet, propose_fleet, split_by_arch
from pylinkjl.cpu.host import named_cpu
from pylinkjl.cpu.official import known_arches, official_strings
from pylinkjl.errors import TargetError

DEFAULT_JULIA = "1.12"


def _buys(string: str, arch: str, julia: str) -> list[str]:
    """One line per target: what it adds over its base and what it clones."""
    try:
        t = T.load(julia, arch)
    except TargetError:
        return []
    lines = []
    for tg in explain_cpu_target(string, t)["targets"]:
        adds = f"adds {', '.join(tg['adds'])}" if tg["adds"] else ("baseline" if tg["index"] == 0 else "adds nothing")
        lines.append(f"    {tg['index']} {tg['name']}: {adds}; {tg['vector_bits']}-bit vectors; clones {tg['clones']}"
                     + ("; unknown to Julia's table" if not tg["known"] else ""))
    return lines


def _recommend(arch: str, as_json: bool, julia: str, verbose: int) -> None:
    rows = official_strings(arch)
    if not rows:
        raise TargetError(f"no official strings for {arch!r}; known: {', '.join(known_arches())}")
    if as_json:
        emit_json([dict(vars(r), targets=_buys(r.string, r.arch, julia)) for r in rows])
        return
    for r in rows:
        period = f", {r.period}" if r.period else ""
        click.echo(f"{r.arch} ({r.platforms}{period}; {r.releases})")
        click.echo(f"  {r.string}")
        if verbose:
            for line in _buys(r.string, r.arch, julia):
                click.echo(line)
    click.echo("\nThese are the system-image targets of the official binaries; export one as JULIA_CPU_TARGET to "
               "build package images that load wherever the official Julia runs.")


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def _render_check(check: FleetCheck, echo: Any) -> None:
    width = max(len(c.cpu) for c in check.choices)
    runs = [f"{c.chosen} {c.chosen_name}" if c.chosen is not None else "none" for c in check.choices]
    rw = max(len("runs target"), *(len(r) for r in runs))
    echo(f"  {'cpu'.ljust(width)}  {'runs target'.ljust(rw)}  vector   gives up against native")
    for c, r in zip(check.choices, runs):
        if c.chosen is None:
            echo(f"  {c.cpu.ljust(width)}  {r.ljust(rw)}  -        REJECTED: {(c.message or '').splitlines()[0]}")
            continue
        lost = f"vectors {c.native_vector} -> {c.vector}; " if c.vector_bits < c.native_vector_bits else ""
        feats = ", ".join(c.gives_up) if c.gives_up else "nothing"
        echo(f"  {c.cpu.ljust(width)}  {r.ljust(rw)}  {c.vector:7}  {lost}{feats}")


def _fleet(string: str | None, fleet: str, julia: str, arch: str | None, cpu: str | None,
           max_targets: int | None, as_json: bool) -> None:
    names = parse_cpu_list(fleet) or []
    out: list[dict[str, Any]] = []
    if string is not None and arch is None:
        arch = guess_arch(string, julia)
    for a, cpus in split_by_arch(names, julia, arch).items():
        t = T.load(julia, a)
        build = named_cpu(cpu, t) if cpu else None
        if string is not None:
            check = check_fleet(string, cpus, t, build=build)
            out.append(check.to_dict())
            if not as_json:
                click.echo(f"{a} fleet ({t.label} tables): {_n(len(cpus), 'CPU')}, {_n(check.ntargets, 'target')}, "
                           + ("every CPU runs one" if check.valid else "NOT every CPU runs one"))
                click.echo(f"  JULIA_CPU_TARGET={shlex.quote(string)}")
                _render_check(check, click.echo)
            continue
        proposal = propose_fleet(cpus, t, max_targets=max_targets, build=build)
        out.append(proposal.to_dict())
        if as_json:
            continue
        click.echo(f"{a} fleet ({t.label} tables): {_n(len(cpus), 'CPU')}, {_n(proposal.check.ntargets, 'target')}")
        click.echo(f"  JULIA_CPU_TARGET={shlex.quote(proposal.string)}")
        _render_check(proposal.check, click.echo)
        for note in proposal.notes:
            click.echo(f"  note: {note}")
    if as_json:
        emit_json(out)


def _official_for_fleet(arch: str, fleet: str, julia: str, cpu: str | None, as_json: bool) -> None:
    """Each official string of ``arch``, checked against the fleet (the CPUs of that architecture)."""
    rows = official_strings(arch)
    if not rows:
        raise TargetError(f"no official strings for {arch!r}; known: {', '.join(known_arches())}")
    t = T.load(julia, rows[0].arch)
    cpus = split_by_arch(parse_cpu_list(fleet) or [], julia).get(t.arch, [])
    if not cpus:
        raise TargetError(f"no {t.arch} CPU in --fleet {fleet!r}")
    build = named_cpu(cpu, t) if cpu else None
    checks = [(r, check_fleet(r.string, cpus, t, build=build)) for r in rows]
    if as_json:
        emit_json([dict(vars(r), check=c.to_dict()) for r, c in checks])
        return
    for r, c in checks:
        click.echo(f"{r.arch} ({r.platforms}, {r.period or 'always'}; {r.releases}): {_n(c.ntargets, 'target')}")
        click.echo(f"  JULIA_CPU_TARGET={shlex.quote(r.string)}")
        _render_check(c, click.echo)


@click.command("cpu-target")
@click.argument("string", required=False)
@click.option("--recommend", "recommend", metavar="ARCH", help="Show the official strings for ARCH (x86_64, aarch64, ...).")
@click.option("--julia", "julia", metavar="VERSION", default=DEFAULT_JULIA, show_default=True,
              help="Julia version whose tables and rules apply.")
@click.option("--arch", metavar="ARCH", help="x86_64, i686, aarch64, armv7l (default: guessed from the names).")
@click.option("--cpu", metavar="NAME", help="The build machine (resolves `native`; the first target is "
              "intersected with it). `native` means this machine.")
@click.option("--sysimage-target", metavar="STRING", help="Julia 1.13+: what the `sysimage` keyword expands to.")
@click.option("--fleet", metavar="CPU[,CPU...]", help="Propose a string that gives each CPU its best target with as "
              "few targets as possible (one string per architecture), checked with the loader's matcher; with STRING, "
              "check that string instead: which target each CPU runs and what it gives up against `native`.")
@click.option("--max-targets", type=click.IntRange(1, 64), metavar="N", help="With --fleet: at most N targets per "
              "architecture (merging costs features, vector width last).")
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", count=True, help="List every feature of every target; with --recommend, "
              "what each target buys.")
def cputarget_command(string: str | None, recommend: str | None, julia: str, arch: str | None, cpu: str | None,
                      sysimage_target: str | None, fleet: str | None, max_targets: int | None, as_json: bool,
                      verbose: int) -> None:
    """Parse, validate and explain a JULIA_CPU_TARGET string with Julia's rules and error messages,
    show the strings the official Julia binaries use (--recommend ARCH), or propose one for a fleet of
    CPUs (--fleet)."""
    setup_logging(verbose - 1)
    with reporting(verbose, as_json):
        if cpu is not None and "," in cpu:
            raise TargetError(f"--cpu {cpu!r}: here --cpu names the one build machine; give a list with --fleet")
        if fleet and recommend:
            _official_for_fleet(recommend, fleet, julia, cpu, as_json)
            return
        if fleet:
            _fleet(string, fleet, julia, arch, cpu, max_targets, as_json)
            return
        if max_targets is not None:
            raise TargetError("--max-targets needs --fleet")
        if recommend:
            _recommend(recommend, as_json, julia, verbose)
            return
        if string is None:
            raise TargetError("give a CPU target string, or --recommend ARCH")
        t = T.load(julia, arch or guess_arch(string, julia))
        host = None
        if cpu or "native" in string.split(";")[0].split(",")[:1] or any(
                tok.split(",")[0] == "native" for tok in string.split(";")):
            host = named_cpu(cpu or "native", t)
        report = explain_cpu_target(string, t, host_name=host.name if host else None,
                                    host_features=(host.features | host.unknown) if host else None,
                                    sysimage_target=sysimage_target)
        if host:
            report["build_cpu"] = {"name": host.name, "source": host.source}
    if as_json:
        emit_json(report)
        return
    click.echo(f"{string!r}: valid for {report['tables']} (official LLVM {report['llvm']})")
    if host:
        click.echo(f"build machine: {host.name} ({host.source})")
    for tg in report["targets"]:
        head = f"  {tg['index']} {tg['written']}"
        if tg["name"] != tg["written"]:
            head += f" -> {tg['name']}"
        bits = [f"LLVM cpu {tg['llvm_cpu']}", f"{tg['vector_bits']}-bit vectors", f"{tg['nfeatures']} features"]
        if tg["base"] is not None:
            bits.append(f"base {tg['base']}")
        if tg["opt_size"] or tg["min_size"]:
            bits.append("opt_size" if tg["opt_size"] else "min_size")
        click.echo(head + ": " + ", ".join(bits))
        click.echo(f"      clones: {tg['clones']}")
        if tg["index"] and tg["adds"]:
            click.echo(f"      adds over target {tg['base']}: {', '.join(tg['adds'])}")
        if verbose and tg["features"]:
            click.echo(f"      features: {', '.join(tg['features'])}")
        if tg["removed"]:
            click.echo(f"      removed explicitly: {', '.join(tg['removed'])}")
        if tg["ext_features"]:
            click.echo(f"      passed to LLVM unchecked: {tg['ext_features']}")
        for note in tg["notes"]:
            click.echo(f"      note: {note}")
    for note in report["notes"]:
        click.echo(f"note: {note}")
