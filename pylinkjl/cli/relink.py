"""``pylinkjl relink``: link many object archives in parallel (pylinkjl.batch.run.relink_many)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from pylinkjl.cli.common import Seconds, emit_json, reporting, setup_logging

_MAX_LLD_LINES = 12  # lines of LLD output shown per failure without -v


def _describe(result: Any, verbose: int) -> list[str]:
    """Lines for one ItemResult: a status line, then (for a failure) the reason, indented."""
    source = ", ".join(str(p) for p in result.item.inputs)
    if result.status == "ok":
        link = result.link
        extra = " verified," if result.verify is not None else ""
        return [f"ok         {result.output} ({link.size} bytes,{extra} LLD {link.seconds * 1e3:.0f} ms)"]
    if result.status == "cancelled":
        return [f"cancelled  {source}"]
    lines = [f"FAILED     {source}" + (f" -> {result.output}" if result.output else "")]
    err = result.error
    if err is not None:
        lines += [f"    error: {line}" if i == 0 else f"    {line}" for i, line in enumerate(err.message.splitlines())]
        output = getattr(err, "output", "").rstrip().splitlines()
        if output:
            shown = output if verbose else output[:_MAX_LLD_LINES]
            lines += ["    LLD output:"] + [f"      {line}" for line in shown]
            if len(shown) < len(output):
                lines.append(f"      ... ({len(output) - len(shown)} more lines; -v shows all)")
        lines += [f"    advice: {a}" for a in getattr(err, "advice", [])]
        if err.hint:
            lines.append(f"    hint: {err.hint}")
    if result.verify is not None and not result.verify.ok:
        lines += [f"    {line}" for line in result.verify.render(verbose=verbose > 0).splitlines()]
    return lines


def _summary(results: list[Any], seconds: float, jobs: int, threads: int) -> str:
    ok = sum(r.status == "ok" for r in results)
    failed = sum(r.status == "failed" for r in results)
    cancelled = sum(r.status == "cancelled" for r in results)
    parts = [f"{ok} of {len(results)} linked"]
    if failed:
        parts.append(f"{failed} failed")
    if cancelled:
        parts.append(f"{cancelled} cancelled")
    return f"{', '.join(parts)} in {seconds:.2f} s (-j {jobs}, LLD --threads={threads})"


@click.command("relink")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--manifest", type=click.Path(path_type=Path, dir_okay=False), help="JSON list of {\"input\", "
              "\"output\", \"target\", \"julia_version\", \"ji\"} objects, or TSV lines input<TAB>output[<TAB>"
              "target[<TAB>julia_version[<TAB>ji]]]; relative paths are relative to the manifest; a ji is resealed "
              "for its new image.")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), help="Where outputs go (named "
              "after the input, with the target's extension); default: beside each input.")
@click.option("--target", "target_name", metavar="TARGET", help="GNU triple or short form; default: this host.")
@click.option("--julia-version", metavar="VERSION", help="Julia version or line; default: from --julia-home, "
              "else 1.12.")
@click.option("--julia-home", type=click.Path(path_type=Path), help="A Julia install for the target.")
@click.option("--lld", type=click.Path(path_type=Path), help="The LLD to run (else PYLINKJL_LLD, Julia's, PATH).")
@click.option("-j", "--jobs", type=int, help="Links run at once (default: the CPU count).")
@click.option("--timeout", type=Seconds(), help="Stop each LLD after this many seconds.")
@click.option("--verify", "verify_after", is_flag=True, help="Verify each image after linking (a failed check "
              "fails the item).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every result.")
@click.option("-v", "--verbose", count=True, help="-v: log what was found, decided and run; show all LLD output.")
def relink_command(inputs: tuple[Path, ...], manifest: Path | None, out_dir: Path | None, target_name: str | None,
                   julia_version: str | None, julia_home: Path | None, lld: Path | None, jobs: int | None,
                   timeout: float | None, verify_after: bool, as_json: bool, verbose: int) -> None:
    """Link many Julia object archives INPUTS (and/or a --manifest) in parallel, one LLD each.

    One failure does not stop the others; the exit code is non-zero if any item failed. Ctrl-C stops
    the running linkers and leaves no partial outputs."""
    setup_logging(verbose)
    if not inputs and manifest is None:
        raise click.UsageError("give INPUTS or --manifest FILE")
    with reporting(verbose, as_json):
        from pylinkjl import batch

        items = [batch.BatchItem(inputs=(p,)) for p in inputs]
        if manifest is not None:
            items += batch.read_manifest(manifest)
        par = batch.parallelism(jobs, len(items))
        bar: Any = None
        show_bar = not as_json and sys.stderr.isatty()

        def on_planned(count: int) -> None:
            nonlocal bar
            if show_bar:
                bar = click.progressbar(length=count, label="relinking", file=sys.stderr, show_pos=True)
                bar.__enter__()

        def on_result(result: Any) -> None:
            if bar is not None:
                bar.update(1)
            elif not as_json:
                for line in _describe(result, verbose):
                    click.echo(line)

        started = time.perf_counter()
        interrupted = None
        try:
            results = batch.relink_many(items, jobs=jobs, target=target_name, julia_version=julia_version,
                                  out_dir=out_dir, julia_home=julia_home, lld=lld, timeout=timeout,
                                  verify=verify_after, on_planned=on_planned, on_result=on_result)
        except batch.BatchInterrupted as err:
            interrupted, results = err, err.results
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        seconds = time.perf_counter() - started
        code = interrupted.exit_code if interrupted is not None else batch.exit_code(results)
        if as_json:
            emit_json({"ok": code == 0, "exit_code": code, "interrupted": interrupted is not None, "cpus": par.cpus,
                       "jobs": par.jobs, "lld_threads": par.threads, "seconds": round(seconds, 3),
                       "results": [r.to_dict() for r in results]})
        else:
            if bar is not None or interrupted is not None:  # the per-item lines have not all been printed
                for result in results:
                    if bar is not None or result.status == "cancelled":
                        for line in _describe(result, verbose):
                            click.echo(line)
            click.echo(_summary(results, seconds, par.jobs, par.threads))
            if interrupted is not None:
                click.echo(f"error: {interrupted.message}", err=True)
    sys.exit(code)
