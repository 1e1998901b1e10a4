"""A batch cannot destroy its own inputs: the files of every item are compared, by resolved path and by
identity (st_dev, st_ino), before anything runs. An item whose output (or .ji) is another item's input, or
the file another item writes (spelled differently, a hard link, a symlink), is refused naming both items;
the others run. ``link -o X`` with X an input is refused the same way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pylinkjl.batch import BatchItem, exit_code, relink_many
from pylinkjl.batch.claims import Uses, refusals
from pylinkjl.target import parse_target

from . import realdata
from .test_link_cli import cli, leftovers

LINUX = parse_target("linux-x86_64")
SAMPLE = Path(__file__).parents[1] / "pylinkjl" / "samples" / "pkgimage-1.11-linux-x86_64.a"
JI = realdata.REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Adapt/rUIgN_LJMjr.ji"


def archives(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(SAMPLE, folder / name)
    return [folder / name for name in names]


def fingerprint(path: Path) -> tuple[int, bytes]:
    return os.stat(path).st_ino, path.read_bytes()


def test_an_output_that_is_another_items_input(tmp_path: Path) -> None:
    """The issue's case: item 0 would overwrite item 1's archive, and item 1 would link the new .so."""
    _, b = archives(tmp_path, "a.a", "b.a")
    before = fingerprint(b)
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps([{"input": "a.a", "output": "b.a"}, {"input": "b.a", "output": "b.so"}]))
    done = cli("relink", "--manifest", manifest, "--target", "linux-x86_64", "--json")
    assert done.returncode == 3, done.stderr
    first, second = json.loads(done.stdout)["results"]
    assert first["status"] == "failed" and second["status"] == "ok"
    assert first["error"]["type"] == "InputError" and first["error"]["exit_code"] == 3
    assert "item 0 would overwrite the input of item 1" in first["error"]["message"]
    assert fingerprint(b) == before and (tmp_path / "b.so").stat().st_size > 1000
    done = cli("relink", "--manifest", manifest, "--target", "linux-x86_64")
    assert "1 of 2 linked, 1 failed" in done.stdout and "item 0 would overwrite" in done.stdout
    assert leftovers(tmp_path) == []


def test_the_writer_is_refused_whichever_comes_first(tmp_path: Path) -> None:
    a, b = archives(tmp_path, "a.a", "b.a")
    before = fingerprint(a)
    results = relink_many([BatchItem((a,), tmp_path / "a.so"), BatchItem((b,), a)], target=LINUX)
    assert [r.status for r in results] == ["ok", "failed"]
    assert "item 1 would overwrite the input of item 0" in results[1].error.message
    assert fingerprint(a) == before and exit_code(results) == 3


def test_two_outputs_spelled_differently(tmp_path: Path) -> None:
    a, b = archives(tmp_path, "a.a", "b.a")
    (tmp_path / "sub").mkdir()
    results = relink_many([BatchItem((a,), tmp_path / "dup.so"), BatchItem((b,), tmp_path / "sub" / ".." / "dup.so")],
                          target=LINUX)
    assert [r.status for r in results] == ["ok", "failed"]
    message = results[1].error.message
    assert "item 1 would write the same output as item 0" in message and str(tmp_path / "dup.so") in message


@pytest.mark.parametrize("kind", ["hardlink", "symlink"])
def test_links_to_another_items_input(kind: str, tmp_path: Path) -> None:
    a, b = archives(tmp_path, "a.a", "b.a")
    alias = tmp_path / "alias.so"
    os.link(a, alias) if kind == "hardlink" else alias.symlink_to(a)
    before = fingerprint(a)
    results = relink_many([BatchItem((a,), tmp_path / "a.so"), BatchItem((b,), alias)], target=LINUX)
    assert [r.status for r in results] == ["ok", "failed"]
    assert "item 1 would overwrite the input of item 0" in results[1].error.message
    assert f"({a}: the same file)" in results[1].error.message
    assert fingerprint(a) == before and os.path.lexists(alias)


def test_outputs_that_are_hard_links_of_each_other(tmp_path: Path) -> None:
    a, b = archives(tmp_path, "a.a", "b.a")
    (tmp_path / "one.so").write_bytes(b"old")
    os.link(tmp_path / "one.so", tmp_path / "two.so")
    results = relink_many([BatchItem((a,), tmp_path / "one.so"), BatchItem((b,), tmp_path / "two.so")], target=LINUX)
    assert [r.status for r in results] == ["ok", "failed"]
    assert "same output as item 0" in results[1].error.message


def test_ji_files_are_claimed_too(tmp_path: Path) -> None:
    a, b, c = archives(tmp_path, "a.a", "b.a", "c.a")
    ji = tmp_path / "x.ji"
    shutil.copyfile(JI, ji)
    refused = refusals([Uses(0, (a,), tmp_path / "a.so", ji), Uses(1, (b,), ji), Uses(2, (c,), tmp_path / "c.so", ji),
                        Uses(3, (c,), tmp_path / "d.so", tmp_path / "d.so")])
    assert sorted(refused) == [1, 2, 3]
    assert "item 1 would overwrite the .ji of item 0" in refused[1].message
    assert "item 2 would write the .ji of item 0" in refused[2].message
    assert "item 3 names" in refused[3].message and "as both its output and its .ji" in refused[3].message
    assert refusals([Uses(0, (a,), tmp_path / "a.so"), Uses(1, (a,), tmp_path / "b.so")]) == {}  # reading is shared


def test_refused_items_are_refused_before_anything_runs(tmp_path: Path) -> None:
    """The claims do not depend on the order of running: the refused item never starts LLD."""
    a, b = archives(tmp_path, "a.a", "b.a")
    results = relink_many([BatchItem((a,), b), BatchItem((b,), tmp_path / "b.so")], target=LINUX, jobs=1)
    assert results[0].status == "failed" and results[0].link is None and results[0].seconds == 0.0
    assert results[1].ok


@pytest.mark.parametrize("kind", ["hardlink", "symlink", "spelled"])
def test_link_output_that_is_an_input(kind: str, tmp_path: Path) -> None:
    (a,) = archives(tmp_path, "a.a")
    out = tmp_path / "out.so"
    if kind == "hardlink":
        os.link(a, out)
    elif kind == "symlink":
        out.symlink_to(a)
    else:
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / "a.a"
    before = fingerprint(a)
    done = cli("link", a, "-o", out, "--target", "linux-x86_64")
    assert done.returncode == 3, done.stderr
    assert "is also an input" in done.stderr and "Traceback" not in done.stderr
    assert fingerprint(a) == before and leftovers(tmp_path) == []


def test_link_ji_that_is_the_output_or_an_input(tmp_path: Path) -> None:
    (a,) = archives(tmp_path, "a.a")
    out = tmp_path / "out.so"
    out.write_bytes(b"old")
    for ji in (out, a):
        done = cli("link", a, "-o", out, "--target", "linux-x86_64", "--ji", ji)
        assert done.returncode == 3, done.stderr
        assert "--ji" in done.stderr and "Traceback" not in done.stderr
    assert out.read_bytes() == b"old" and fingerprint(a)[1] == SAMPLE.read_bytes()
