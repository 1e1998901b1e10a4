"""``python -m bench [--quick] [--json FILE] [--only NAME ...]``: run every benchmark module, print one
Markdown table (with the machine noted), write ``bench/results.json`` (and FILE)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

MODULES = ("link", "relink", "verify", "depot")
RESULTS = Path(__file__).resolve().parent / "results.json"


def _lld_version() -> str:
    from pylinkjl.errors import PylinkjlError
    from pylinkjl.link.lld import find_lld

    try:
        return find_lld().version_string or "?"
    except PylinkjlError as err:  # the table is still worth printing without it
        return f"unknown ({err.message})"


def machine() -> dict[str, Any]:
    from pylinkjl.batch import cpu_count

    return {
        "cpus": cpu_count(), "machine": platform.machine(), "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(), "lld": _lld_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_before": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def run_module(name: str, quick: bool) -> list[dict[str, Any]]:
    """The module's rows; a single "not available" row if it is missing, a "failed" row if it fails."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ImportError as err:
        return [{"name": f"{name}: not available", "value": None, "unit": "", "note": str(err)}]
    started = time.perf_counter()
    try:
        rows = list(module.run(quick))
    except Exception as err:  # noqa: BLE001 - one broken benchmark must not hide the others
        traceback.print_exc()
        return [{"name": f"{name}: failed", "value": None, "unit": "", "note": f"{type(err).__name__}: {err}"}]
    logging.getLogger("bench").info("%s done in %.0f s", name, time.perf_counter() - started)
    return rows


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, (int, float)) else str(value)


def render(info: dict[str, Any], results: dict[str, list[dict[str, Any]]]) -> str:
    lines = [f"pylinkjl benchmarks: {info['cpus']} CPUs ({info['machine']}, {info['system']}), "
             f"Python {info['python']}, LLD {info['lld']}, {info['date']}"
             + (" [quick]" if info.get("quick") else ""),
             "", "| benchmark | value | unit | note |", "|---|---:|---|---|"]
    for rows in results.values():
        for r in rows:
            note = str(r.get("note", "")).replace("|", "/")
            lines.append(f"| {r['name']} | {_cell(r['value'])} | {r['unit']} | {note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer runs (a smoke test)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--only", nargs="+", choices=MODULES, help="run only these modules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("pylinkjl").setLevel(logging.WARNING)  # progress of the benchmarks only

    info = {**machine(), "quick": args.quick}
    results = {name: run_module(name, args.quick) for name in (args.only or MODULES)}
    info["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(render(info, results))
    doc = {**info, "results": results}
    for path in ([RESULTS] + ([args.json] if args.json else [])):
        path.write_text(json.dumps(doc, indent=1) + "\n")
    failed = [name for name, rows in results.items() if rows and rows[0]["name"].endswith(": failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
