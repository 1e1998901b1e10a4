"""``python -m fixturegen``: generate one archive, print its IR, or rebuild the committed ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from fixturegen.spec import LAYOUTS, FixtureSpec
from pylinkjl.cli.common import fail, setup_logging
from pylinkjl.errors import PylinkjlError
from pylinkjl.target import ALL_TARGETS, parse_target


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--layout", type=click.Choice(LAYOUTS), default="1.11", show_default=True,
              help="Archive layout (Julia line: 1.9, 1.10, 1.11 = 1.11/1.12, 1.13).")
@click.option("--target", "target_name", default="linux-x86_64", show_default=True,
              help=f"One of {', '.join(t.name for t in ALL_TARGETS)} (or a triple).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Archive to write.")
@click.option("--cpu-target", default="generic", show_default=True,
              help='JULIA_CPU_TARGET-style list, e.g. "generic;sandybridge,clone_all;haswell,base(1)".')
@click.option("--nshards", type=int, default=1, show_default=True)
@click.option("--nfuncs", type=int, default=6, show_default=True)
@click.option("--ngvars", type=int, default=4, show_default=True)
@click.option("--blob-size", type=int, default=4096, show_default=True, help="Bytes of jl_system_image_data.")
@click.option("--julia-version", default=None, help="Julia version (CPU tables); default per layout.")
@click.option("--dll-stub/--no-dll-stub", default=True, show_default=True, help="Windows: Julia's entry stub.")
@click.option("--dllimport-data/--no-dllimport-data", default=None,
              help="Windows: mark data imports dllimport (default: Julia >= 1.10.4).")
@click.option("--kind", type=click.Choice(["pkgimage", "sysimage"]), default="pkgimage", show_default=True,
              help="pkgimage (heap with a cache header) or sysimage (a system image's heap, no cache header).")
@click.option("--compress", is_flag=True, help="sysimage, 1.13 layout: zstd-compress the heap (--compress-sysimage).")
@click.option("--emit-ir", type=click.Path(file_okay=False, path_type=Path),
              help="Write each member's LLVM IR here (needs no LLVM tools).")
@click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the archive's manifest entry (JSON) here.")
@click.option("-j", "--jobs", type=int, default=None, help="Parallel llc processes.")
@click.option("--regenerate", is_flag=True, help="Rebuild the committed samples, test archives and MANIFEST.json.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Repository root for --regenerate (default: this checkout).")
@click.option("-v", "--verbose", count=True)
def fixture_command(layout: str, target_name: str, output: Path | None, cpu_target: str, nshards: int, nfuncs: int,
                    ngvars: int, blob_size: int, julia_version: str | None, dll_stub: bool,
                    dllimport_data: bool | None, kind: str, compress: bool, emit_ir: Path | None, manifest: Path | None, jobs: int | None,
                    regenerate: bool, root: Path | None, verbose: int) -> None:
    """Generate object archives shaped like Julia's package-image archives."""
    setup_logging(verbose)
    try:
        if regenerate:
            from fixturegen.catalog import REPO_ROOT
            from fixturegen.catalog import regenerate as rebuild

            result = rebuild(root or REPO_ROOT, jobs=jobs)
            click.echo(f"regenerated {len(result['archives'])} archives (LLVM {result['llvm_version']})")
            return
        spec = FixtureSpec(parse_target(target_name), layout, cpu_targets=cpu_target, nshards=nshards,  # type: ignore[arg-type]
                           nfuncs=nfuncs, ngvars=ngvars, blob_size=blob_size, dll_stub=dll_stub,
                           dllimport_data=dllimport_data, julia_version=julia_version, kind=kind, compress=compress)
        if emit_ir is None and output is None:
            raise click.UsageError("give -o/--output (an archive) and/or --emit-ir (a folder)")
        if emit_ir is not None:
            from fixturegen.ir import render_member
            from fixturegen.plan import build_plan

            plan = build_plan(spec)
            emit_ir.mkdir(parents=True, exist_ok=True)
            for member in plan.member_names():
                (emit_ir / f"{member}.ll").write_text(render_member(plan, member))
        if output is not None:
            from fixturegen.build import generate_archive
            from fixturegen.manifest import manifest_entry
            from fixturegen.plan import build_plan

            path = generate_archive(spec, output, jobs=jobs)
            click.echo(str(path))
            if manifest is not None:
                manifest.write_text(json.dumps(manifest_entry(build_plan(spec), path, str(path)), indent=1) + "\n")
    except PylinkjlError as err:
        fail(err, verbosity=verbose)


def main() -> None:
    fixture_command.main(args=sys.argv[1:], prog_name="python -m fixturegen")
