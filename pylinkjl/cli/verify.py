"""``pylinkjl verify``: check a linked package image against what Julia's loader needs."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from pylinkjl.cli.common import emit_json, reporting, setup_logging

log = logging.getLogger("pylinkjl.cli")

@click.command("verify")
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--object", "obj", type=click.Path(path_type=Path), help="The archive/object that went in: also "
              "compare exports and clone counts with it.")
@click.option("--target", "target_name", metavar="TARGET", help="Expected target (default: inferred from the image).")
@click.option("--julia-version", metavar="VERSION", help="Expected Julia version or line (default: inferred).")
@click.option("--kind", "kind", type=click.Choice(["package-image", "system-image", "juliac-library"]),
              help="Expected image kind (default: any; the kind found is always reported).")
@click.option("--load", "load", is_flag=True, help="Also dlopen the image (host ELF only) in a child process.")
@click.option("--runtime", type=click.Path(path_type=Path, file_okay=False), metavar="TREE", help="A real Julia "
              "runtime tree: boot its libjulia in a child process and let jl_restore_package_image_from_file judge "
              "the image (natively, under qemu-aarch64 or Wine). With --load: also the folder put on LD_LIBRARY_PATH.")
@click.option("--sysimage", type=click.Path(path_type=Path, dir_okay=False), metavar="IMAGE", help="System image "
              "for --runtime (default: the tree's lib/julia/sys.*; a juliac library works).")
@click.option("-C", "--cpu-target", metavar="TARGET", help="The runtime session's -C (default: this machine).")
@click.option("--reproducible", is_flag=True, help="Link --object twice and check the outputs are identical.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option("-v", "--verbose", count=True, help="Show the numbers behind every check; -vv: debug log.")
def verify_command(image: Path, obj: Path | None, target_name: str | None, julia_version: str | None,
                   kind: str | None, load: bool, runtime: Path | None, sysimage: Path | None, cpu_target: str | None,
                   reproducible: bool, as_json: bool, verbose: int) -> None:
    """Verify the package image, system image or juliac library IMAGE: format, kind, exports, multi-versioning
    tables, heap, platform rules; with --runtime TREE, the real Julia runtime of TREE judges it too.

    Exit code 0 when every check passes, 7 when one fails, 3 when IMAGE cannot be read."""
    setup_logging(verbose - 1 if verbose else 0)
    with reporting(verbose, as_json):
        from pylinkjl.errors import TargetError, VerificationError
        from pylinkjl.images.verify import verify_image
        from pylinkjl.target import parse_target

        if reproducible and obj is None:
            raise TargetError("--reproducible needs --object (the input to link twice)")
        if (sysimage is not None or cpu_target is not None) and runtime is None:
            raise TargetError("--sysimage and -C/--cpu-target need --runtime TREE")
        target = parse_target(target_name) if target_name is not None else None  # '' is an error
        report = verify_image(image, object=obj, target=target, julia_version=julia_version, kind=kind)
        if load:
            from pylinkjl.images.load import check_load

            report.add(check_load(image, runtime=runtime))
        if runtime is not None:
            from pylinkjl.images.judge import judge_with_runtime

            judge = judge_with_runtime(image, runtime, sysimage=sysimage, cpu_target=cpu_target)
            report.image["runtime_judge"] = judge.to_dict()
            for check in judge.checks():
                report.add(check)
        if reproducible:
            assert obj is not None
            from pylinkjl.images.repro import check_reproducible_link

            report.add(check_reproducible_link(obj, name=image.name, target=target_name,
                                               julia_version=julia_version))
        if as_json:
            emit_json(report.to_dict())
            if not report.ok:  # the report is the whole answer: no second JSON document for the error
                sys.exit(VerificationError.exit_code)
            return
        click.echo(report.render(verbose=verbose > 0))
        if not report.ok:
            raise VerificationError(f"{image}: {len(report.failed)} check(s) failed: "
                                    f"{', '.join(c.name for c in report.failed)}")
