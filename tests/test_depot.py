"""depot: rows, summary, orphans and leftovers of a depot built from real caches; JSON; CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pylinkjl.caches.depot import compiled_dirs, scan_depot
from pylinkjl.caches.verdict import Session
from pylinkjl.cli.depot import depot_command
from pylinkjl.errors import InputError

from . import realdata

REAL = realdata.require_real()
V19 = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9"


@pytest.fixture
def depot(tmp_path: Path) -> Path:
    root = tmp_path / "depot"
    shutil.copytree(V19 / "Adapt", root / "compiled" / "v1.9" / "Adapt")
    shutil.copytree(V19 / "Preferences", root / "compiled" / "v1.9" / "Preferences")
    shutil.copytree(V19 / "Parsers", root / "compiled" / "v1.9" / "Parsers")  # .ji without image
    compat = root / "compiled" / "v1.9" / "Compat"
    compat.mkdir()
    shutil.copy(V19 / "Compat" / "GSFWK_LJMjr.so", compat)  # image without .ji
    (compat / "jl_AbC123").write_bytes(b"")  # leftover of an interrupted precompile
    misplaced = root / "compiled" / "v1.12" / "Logging"
    misplaced.mkdir(parents=True)
    shutil.copy(REAL / "subhk__FeastKit.jl" / "darwin-x86_64" / "compiled" / "v1.11" / "Logging" / "PWFjL_GDH18.ji",
                misplaced)
    (root / "compiled" / "v1.9" / "Broken").mkdir()
    (root / "compiled" / "v1.9" / "Broken" / "x.ji").write_bytes(b"not a cache")
    return root


def test_scan(depot: Path) -> None:
    report = scan_depot([depot], Session(cpu="skylake"))
    s = report.summary
    assert (s["caches"], s["packages"], s["errors"]) == (5, 4, 1)
    assert s["loads"] == 2 and s["rejected_by"] == {"target mismatch": 1, "mismatched flags": 1,
                                                     "missing ocachefile": 1}
    kinds = {(Path(o["path"]).name, o["kind"]) for o in report.orphans}
    assert kinds == {("GSFWK_LJMjr.so", "image"), ("833b9_LJMjr.ji", "ji"), ("PWFjL_GDH18.ji", "ji")}
    stale = {(Path(o["path"]).name, o["kind"]) for o in report.stale}
    assert stale == {("jl_AbC123", "temporary"), ("PWFjL_GDH18.ji", "misplaced")}
    rows = {Path(r.path).name: r for r in report.rows}
    assert rows["rUIgN_LJMjr.ji"].targets == ["broadwell"] and rows["rUIgN_LJMjr.ji"].crc_so_ok
    assert rows["pWSk8_0kJBY.ji"].flags.endswith("-O0")
    assert report.errors[0]["path"].endswith("x.ji") and "bad magic" in report.errors[0]["error"]
    assert report.bytes_hashed > 0
    assert [r.path for r in report.rows] == sorted(r.path for r in report.rows)


def test_depot_paths(depot: Path, tmp_path: Path) -> None:
    assert [p.name for p in compiled_dirs(depot)] == ["v1.12", "v1.9"]
    assert compiled_dirs(depot / "compiled" / "v1.9") == [depot / "compiled" / "v1.9"]
    with pytest.raises(InputError, match="not a Julia depot"):
        compiled_dirs(tmp_path)


def test_cli_json_is_stable(depot: Path) -> None:
    group = click.Group(commands={"depot": depot_command})
    runner = CliRunner()
    a = runner.invoke(group, ["depot", str(depot), "--cpu", "skylake", "--json"])
    b = runner.invoke(group, ["depot", str(depot), "--cpu", "skylake", "--json", "--workers", "1"])
    assert a.exit_code == 0, a.output
    da, db = json.loads(a.output), json.loads(b.output)
    for d in (da, db):
        d["summary"].pop("seconds")
    assert da == db
    assert list(da) == ["depots", "summary", "caches", "orphans", "stale", "errors"]
    text = runner.invoke(group, ["depot", str(depot), "--cpu", "haswell"])
    assert text.exit_code == 0
    assert "rejected: target mismatch" in text.output and "image without its .ji" in text.output
    assert "jl_AbC123" in text.output
