"""``pylinkjl cpu-target``: parse, validate and explain a JULIA_CPU_TARGET string; show the official ones."""

from __future__ import annotations

import click

from pylinkjl.cli.common import emit_json, reporting, setup_logging
from pylinkjl.cpu import tables as T
from pylinkjl.cpu.cpuparse import explain_cpu_target, guess_arch
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


@click.command("cpu-target")
@click.argument("string", required=False)
@click.option("--recommend", "recommend", metavar="ARCH", help="Show the official strings for ARCH (x86_64, aarch64, ...).")
@click.option("--julia", "julia", metavar="VERSION", default=DEFAULT_JULIA, show_default=True,
              help="Julia version whose tables and rules apply.")
@click.option("--arch", metavar="ARCH", help="x86_64, i686, aarch64, armv7l (default: guessed from the names).")
@click.option("--cpu", metavar="NAME", help="The build machine (resolves `native`; the first target is "
              "intersected with it). `native` means this machine.")
@click.option("--sysimage-target", metavar="STRING", help="Julia 1.13+: what the `sysimage` keyword expands to.")
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", count=True, help="List every feature of every target; with --recommend, "
              "what each target buys.")
def cputarget_command(string: str | None, recommend: str | None, julia: str, arch: str | None, cpu: str | None,
                      sysimage_target: str | None, as_json: bool, verbose: int) -> None:
    """Parse, validate and explain a JULIA_CPU_TARGET string with Julia's rules and error messages,
    or show the strings the official Julia binaries use (--recommend ARCH)."""
    setup_logging(verbose - 1)
    with reporting(verbose, as_json):
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
