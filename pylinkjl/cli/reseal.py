"""``pylinkjl reseal``: after a relink, rewrite the .ji trailer so that Julia accepts the new image."""

from __future__ import annotations

from pathlib import Path

import click

from pylinkjl.caches.reseal import reseal
from pylinkjl.cli.common import emit_json, reporting, setup_logging


@click.command("reseal")
@click.argument("ji", type=click.Path(path_type=Path))
@click.option("--image", type=click.Path(path_type=Path),
              help="The relinked image (default: the .ji's sibling .so/.dylib/.dll).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--force", is_flag=True, help="Skip the check that the image belongs to this .ji.")
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", count=True)
def reseal_command(ji: Path, image: Path | None, dry_run: bool, force: bool, as_json: bool, verbose: int) -> None:
    """Recompute crc_so (the image's CRC-32C) and the .ji's own CRC, after checking that the .ji and
    the image belong together (same package build, same CPU targets). Writes atomically."""
    setup_logging(verbose - 1 if not dry_run else max(verbose, 1) - 1)
    with reporting(verbose, as_json):
        result = reseal(ji, image, dry_run=dry_run, force=force)
    if as_json:
        emit_json(result.to_dict())
        return
    pair = result.pair
    click.echo(f"{result.ji_path}")
    click.echo(f"  image      {result.image_path} (same build: {pair.get('same_build')}, "
               f"same targets: {pair.get('targets_equal')})")
    click.echo(f"  crc_so     {result.old_crc_so:#010x} -> {result.new_crc_so:#010x}")
    click.echo(f"  .ji crc    {result.old_crc_ji:#010x} -> {result.new_crc_ji:#010x}")
    for note in result.notes:
        click.echo(f"  note       {note}")
    if not result.changed:
        click.echo("  already sealed: nothing to do")
    elif dry_run:
        click.echo("  dry run: nothing written")
    else:
        click.echo("  resealed")
