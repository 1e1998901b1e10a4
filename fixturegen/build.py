"""Turn a spec into an archive on disk: render each member, compile it, archive the objects.

Members compile in parallel (one process per member, ``jobs`` at a time). The output is written to a
temporary name next to ``out_path`` and renamed, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixturegen.ir import render_member
from fixturegen.plan import build_plan
from fixturegen.spec import FixtureSpec
from fixturegen.tools import Tools, find_tools, run_tool

log = logging.getLogger("fixturegen.build")


def generate_archive(spec: FixtureSpec, out_path: str | os.PathLike[str], *, tools: Tools | None = None,
                     jobs: int | None = None) -> Path:
    """Write the archive ``spec`` describes to ``out_path``; returns its path."""
    tools = tools or find_tools()
    out = Path(out_path)
    start = time.perf_counter()
    plan = build_plan(spec)
    members = list(plan.member_names())
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pylinkjl-fixture-") as tmp:
        work = Path(tmp)

        def compile_member(member: str) -> None:
            ll = work / f"{member}.ll"
            ll.write_text(render_member(plan, member))
            run_tool(tools.compile_argv(spec.target, ll, work / member))
            ll.unlink()  # big shards: do not keep the IR next to the object

        with ThreadPoolExecutor(max_workers=jobs or min(len(members), os.cpu_count() or 1)) as pool:
            list(pool.map(compile_member, members))
        partial = work / ".archive.a"  # never a member's name
        run_tool(tools.archive_argv(spec.target, partial, members), cwd=work)
        os.replace(partial, out) if _same_device(work, out.parent) else _copy(partial, out)
    log.info("generated %s (%s, %s layout, %d functions) in %.2fs", out, spec.target.name, spec.layout,
             spec.nfuncs, time.perf_counter() - start)
    return out


def _same_device(a: Path, b: Path) -> bool:
    return os.stat(a).st_dev == os.stat(b).st_dev


def _copy(src: Path, dst: Path) -> None:
    staging = dst.with_name(f".{dst.name}.partial")
    staging.write_bytes(src.read_bytes())
    os.replace(staging, dst)
