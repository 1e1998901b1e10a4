"""What a SIGKILLed pylinkjl leaves (its staging folder beside the output, a reseal's temporary .ji) is
removed the next time a link uses the folder, and ``depot`` reports it as stale, but only what is
provably ours and stale: the name, the owner, the age, and no live process holding its lock. A concurrent
link's folder, however old, is never touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.caches.depot import scan_depot
from pylinkjl.caches.reseal import plan_reseal, stage_reseal
from pylinkjl.fs import leftovers
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from . import realdata
from .test_link_cli import FAKE_LLD, cli

LINUX = parse_target("linux-x86_64")
SAMPLE = Path(__file__).parents[1] / "pylinkjl" / "samples" / "pkgimage-1.11-linux-x86_64.a"
V19 = realdata.REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9"
HOUR = 3600.0


def staging(folder: Path) -> list[Path]:
    return sorted(folder.glob(".pylinkjl-*"))


def age(path: Path, seconds: float = HOUR) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def hanging_lld(tmp_path: Path) -> tuple[Path, Path]:
    """A fake LLD that hangs (it writes its pid to the marker first). Stub libraries are built with the real
    LLD first: the fake one is only asked for --version and the link."""
    link_image(SAMPLE, tmp_path / "warm" / "x.so", target=LINUX)
    marker = tmp_path / "lld-started"
    fake = tmp_path / "hanging-lld"
    fake.write_text(FAKE_LLD.format(marker=marker))
    fake.chmod(0o755)
    return fake, marker


def start_link(out: Path, lld: Path, marker: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "pylinkjl", "link", str(SAMPLE), "-o", str(out), "--target",
                             "linux-x86_64", "--lld", str(lld)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the fake LLD never started"
    time.sleep(0.1)
    return proc


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_links_staging_folder_is_removed_by_the_next_link(tmp_path: Path,
                                                                    hanging_lld: tuple[Path, Path]) -> None:
    lld, marker = hanging_lld
    out = tmp_path / "out" / "Pkg.so"
    proc = start_link(out, lld, marker)
    proc.kill()  # SIGKILL: no clean-up runs
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while not gone(int(marker.read_text())) and time.monotonic() < deadline:  # LLD dies with its parent
        time.sleep(0.05)
    assert gone(int(marker.read_text()))
    (left,) = staging(out.parent)
    assert leftovers.find_stale(out.parent) == []  # too young to judge (a link may be just starting)
    age(left)
    assert [x.path for x in leftovers.find_stale(out.parent)] == [left]
    done = cli("link", SAMPLE, "-o", out, "--target", "linux-x86_64", "-v")
    assert done.returncode == 0, done.stderr
    assert f"removed {left}, left by a pylinkjl that was killed" in done.stderr
    assert staging(out.parent) == [] and out.stat().st_size > 1000


def test_a_concurrent_links_folder_is_never_touched(tmp_path: Path, hanging_lld: tuple[Path, Path]) -> None:
    """Link A is running (a long link: its folder is an hour old); link B into the same folder must leave
    A's staging alone, and A still finishes cleanly."""
    lld, marker = hanging_lld
    out = tmp_path / "Pkg.so"
    proc = start_link(out, lld, marker)
    (live,) = staging(tmp_path)
    age(live)
    assert leftovers.find_stale(tmp_path) == [] and leftovers.clean_stale(tmp_path) == []
    other = tmp_path / "Other.so"
    done = cli("link", SAMPLE, "-o", other, "--target", "linux-x86_64", "-v")
    assert done.returncode == 0, done.stderr
    assert "removed" not in done.stderr and live.is_dir() and other.is_file()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert staging(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a folder's owner needs root")
def test_only_our_own_and_only_our_names(tmp_path: Path) -> None:
    others = tmp_path / ".pylinkjl-0123456789ab"
    others.mkdir()
    os.chown(others, 12345, 12345)
    not_ours = [tmp_path / ".pylinkjl-", tmp_path / ".pylinkjl-a.b", tmp_path / "pylinkjl-0123456789ab"]
    for p in not_ours:
        p.mkdir()
    link = tmp_path / ".pylinkjl-fedcba987654"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / ".pylinkjl-fileinstead").write_text("x")
    for p in [others, *not_ours, tmp_path / ".pylinkjl-fileinstead"]:
        age(p)
    os.utime(link, (time.time() - HOUR,) * 2, follow_symlinks=False)
    assert leftovers.clean_stale(tmp_path) == []
    assert all(os.path.lexists(p) for p in [others, *not_ours, link, tmp_path / "elsewhere"])


def test_stale_reseal_temporaries(tmp_path: Path) -> None:
    ji = tmp_path / "rUIgN_LJMjr.ji"
    shutil.copyfile(V19 / "Adapt" / "rUIgN_LJMjr.ji", ji)
    shutil.copyfile(V19 / "Adapt" / "rUIgN_LJMjr.so", ji.with_suffix(".so"))
    with open(ji.with_suffix(".so"), "ab") as f:
        f.write(b"\0")
    staged = stage_reseal(plan_reseal(ji))  # a reseal in progress: its temporary is locked
    assert staged is not None and staged.path.name.startswith(".rUIgN_LJMjr.ji.")
    age(staged.path)
    assert leftovers.find_stale(tmp_path) == []
    staged.close()  # as if its process had been killed: the lock is gone, the file stays
    assert [(x.path, x.kind) for x in leftovers.find_stale(tmp_path)] == [(staged.path, "reseal")]
    decoy = tmp_path / ".notes.txt.reseal"
    decoy.write_text("not ours")
    age(decoy)
    done = cli("reseal", ji, "-v", "-v")
    assert done.returncode == 0, done.stderr
    assert not staged.path.exists() and decoy.exists() and list(tmp_path.glob(".*.reseal")) == [decoy]


def test_depot_reports_stale_leftovers(tmp_path: Path) -> None:
    pkg = tmp_path / "depot" / "compiled" / "v1.9" / "Adapt"
    pkg.mkdir(parents=True)
    for ext in (".ji", ".so"):
        shutil.copyfile(V19 / "Adapt" / f"rUIgN_LJMjr{ext}", pkg / f"rUIgN_LJMjr{ext}")
    dead = pkg / ".pylinkjl-0123456789ab"
    dead.mkdir()
    (dead / "rUIgN_LJMjr.so").write_bytes(b"\x7fELF half an image")
    reseal_tmp = pkg / ".rUIgN_LJMjr.ji.k2j4h5g6.reseal"
    reseal_tmp.write_bytes(b"partial")
    fresh = pkg / ".pylinkjl-fedcba987654"  # could be a link that is just starting
    fresh.mkdir()
    for p in (dead, reseal_tmp):
        age(p)
    report = scan_depot([tmp_path / "depot"])
    stale = {Path(s["path"]).name: s for s in report.stale}
    assert set(stale) == {dead.name, reseal_tmp.name}
    assert stale[dead.name]["kind"] == "staging" and "killed" in stale[dead.name]["why"]
    assert stale[reseal_tmp.name]["kind"] == "reseal"
    done = cli("depot", tmp_path / "depot", "--json")
    assert {Path(s["path"]).name for s in json.loads(done.stdout)["stale"]} == {dead.name, reseal_tmp.name}
    assert dead.exists() and reseal_tmp.exists()  # depot reports, never removes
