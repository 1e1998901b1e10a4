"""``pylinkjl link``: Julia's link_image from the command line."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from pylinkjl.cli.common import Seconds, emit_json, reporting, setup_logging
from pylinkjl.link.plan import LinkPlan, julia_verbose_linking

log = logging.getLogger("pylinkjl.cli")


def describe_plan(plan: LinkPlan) -> None:
    """The -v account of what was found and decided."""
    lld = plan.lld
    version = ".".join(map(str, lld.version)) if lld.version else "?"
    log.info("target %s (%s), Julia line %s, profile %s", plan.target.name, plan.target.triple, plan.line,
             plan.profile.source)
    log.info("LLD %s: %s (found via %s)", version, lld.candidate.path, lld.candidate.source)
    if plan.julia is not None:
        log.info("Julia install %s (version %s)", plan.julia.home, plan.julia.version)
    else:
        log.info("no Julia install given: linking against generated stub libraries")
    for f in plan.inputs.files:
        members = f" ({', '.join(f.members)})" if f.members else ""
        log.info("input %s: %s%s", f.path, f.kind, members)
    log.info("entry stub: %s", plan.entry_stub.reason)
    if plan.stub_libraries:
        log.info("stub libraries in %s: %s", plan.stub_dir, ", ".join(lib.file_name for lib in plan.stub_libraries))
    if plan.macos is not None:
        log.info("macOS platform version %s, SDK %s (from %s)", plan.macos.minimum, plan.macos.sdk, plan.macos.source)
    if plan.deviations:
        log.info("deviations from Julia's command: %s (see README)", ", ".join(plan.deviations))
    for note in plan.notes:
        log.info("%s", note)


def print_dry_run(plan: LinkPlan) -> None:
    from pylinkjl.commandline import quote_command

    click.echo(f"# pylinkjl link plan: target {plan.target.name}, Julia line {plan.line}")
    if plan.stub_libraries:
        click.echo(f"# stub libraries (generated on a real run): {plan.stub_dir}")
    click.echo(f"# entry stub: {plan.entry_stub.reason}")
    click.echo(f"# LLD writes {plan.staged_output}, renamed to {plan.output} on success")
    for key, value in plan.env.items():
        click.echo(f"export {key}={_shell(value)}")
    click.echo(quote_command(plan.argv))


def _shell(value: str) -> str:
    import shlex

    return shlex.quote(value)


@click.command("link")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, readable=False))  # ours: rc 3
@click.option("-o", "--output", required=True, type=click.Path(path_type=str),  # as spelled: 'out/' is refused
              help="The package image to write.")
@click.option("--target", "target_name", metavar="TARGET", help="GNU triple or short form; default: this host.")
@click.option("--julia-version", metavar="VERSION", help="Julia version or line (1.9.0 … 1.12, 1.13.0-rc1, "
              "release-1.13, master); default: from --julia-home, else 1.12.")
@click.option("--julia-home", type=click.Path(path_type=Path), help="A Julia install for the target: its "
              "version and libraries are used.")
@click.option("--debug-build", "debug", is_flag=True, help="Link like a debug build of Julia (-ljulia-debug ...).")
@click.option("--lld", type=click.Path(path_type=Path), help="The LLD to run (else PYLINKJL_LLD, Julia's, PATH).")
@click.option("--macos-version", metavar="X.Y", help="Minimum macOS for -platform_version.")
@click.option("--macos-sdk", metavar="X.Y", help="SDK version for -platform_version (default: the minimum).")
@click.option("--kind", type=click.Choice(["pkgimage", "sysimage", "juliac-library"]), default="pkgimage",
              show_default=True, help="What is linked: a package image (Julia's command), a system image "
              "(PackageCompiler's additions) or a juliac library (JuliaC.jl's).")
@click.option("--library-version", metavar="X.Y.Z", help="macOS compatibility/current version of a system image "
              "or library.")
@click.option("--stub-missing", is_flag=True, help="Generate stubs for libraries a real Julia install lacks.")
@click.option("--julia-exact", is_flag=True, help="Julia's command exactly: none of pylinkjl's deviations.")
@click.option("--timeout", type=Seconds(), help="Stop LLD after this many seconds.")
@click.option("--response-file", is_flag=True, help="Pass the arguments through a response file.")
@click.option("--verify", "verify_after", is_flag=True, help="Verify the new image before it replaces the output "
              "(a failed check fails the command, exit 7, and the output is left as it was).")
@click.option("--ji", "ji_file", type=click.Path(path_type=Path), help="Reseal this .ji for the new image (checked "
              "before the image replaces the output).")
@click.option("--dry-run", is_flag=True, help="Print the plan (argv, environment) and run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable plan or result.")
@click.option("-v", "--verbose", count=True, help="-v: log what was found, decided and run; -vv: also LLD --verbose.")
def link_command(inputs: tuple[Path, ...], output: str, target_name: str | None, julia_version: str | None,
                 julia_home: Path | None, debug: bool, lld: Path | None, macos_version: str | None,
                 macos_sdk: str | None, kind: str, library_version: str | None, stub_missing: bool, julia_exact: bool, timeout: float | None,
                 response_file: bool, verify_after: bool, ji_file: Path | None, dry_run: bool, as_json: bool,
                 verbose: int) -> None:
    """Link Julia object archive(s) INPUTS into a package image, like Base.Linking.link_image (or, with --kind,
    into a system image or juliac library)."""
    if julia_verbose_linking():
        verbose = max(verbose, 2)
    setup_logging(verbose)
    with reporting(verbose, as_json):
        from pylinkjl.link.api import link_request
        from pylinkjl.link.plan import plan_link
        from pylinkjl.target import parse_target

        request = link_request(
            list(inputs), output, target=parse_target(target_name) if target_name is not None else None,
            verbose=verbose >= 2, julia_version=julia_version, julia_home=julia_home, debug=debug, lld=lld,
            macos_version=macos_version, macos_sdk=macos_sdk, stub_missing=stub_missing, julia_exact=julia_exact,
            timeout=timeout, kind=kind, library_version=library_version,
            allow_missing=dry_run)  # a dry run shows the command whatever the tree lacks
        plan = plan_link(request)
        describe_plan(plan)
        if plan.missing:
            where = plan.julia.home if plan.julia is not None else "the Julia install"
            log.warning("%s lacks %s: LLD would fail on this command (--stub-missing links against generated "
                        "stubs instead)", where, ", ".join(plan.missing))
        if dry_run:
            emit_json(plan.to_dict()) if as_json else print_dry_run(plan)
            return
        from pylinkjl.link.run import execute

        result = execute(plan, force_response_file=response_file, verify=verify_after, ji=ji_file)
        if as_json:
            emit_json(result.to_dict())
            return
        what = "" if plan.profile.kind == "pkgimage" else f", {plan.profile.kind}"
        click.echo(f"linked {result.output} ({result.size} bytes, {plan.target.name}, Julia {plan.line}{what}, "
                   f"LLD {result.seconds * 1e3:.0f} ms)")
        for text in result.warnings:
            click.echo(f"warning: {text}", err=True)
        if result.reseal is not None:
            click.echo(f"resealed {result.reseal.ji_path}" if result.reseal.written
                       else f"{result.reseal.ji_path} already matched")
        if result.verify is not None:
            click.echo(result.verify.render())
