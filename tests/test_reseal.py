"""reseal: a changed image is refused by the checksum, reseal fixes it, mismatched pairs are refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pylinkjl.caches.inspection import inspect_ji
from pylinkjl.caches.ji import read_ji
from pylinkjl.caches.reseal import reseal
from pylinkjl.caches.verdict import Session
from pylinkjl.cli.reseal import reseal_command
from pylinkjl.errors import InputError

from . import realdata

V19 = realdata.require_real() / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9"
MAC111 = realdata.require_real() / "subhk__FeastKit.jl" / "darwin-x86_64" / "compiled" / "v1.11"


def _copy_pair(src_ji: Path, dest: Path, ext: str = ".so") -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_ji, dest / src_ji.name)
    shutil.copy(src_ji.with_suffix(ext), dest / (src_ji.stem + ext))
    return dest / src_ji.name


def test_relinked_image_resealed(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Adapt" / "rUIgN_LJMjr.ji", tmp_path)
    with open(ji.with_suffix(".so"), "ab") as f:
        f.write(b"\0")  # what a relink, strip or codesign does to Julia's view of the image
    session = Session(cpu="skylake")
    assert inspect_ji(ji, session)["verdict"]["rejected_by"] == "invalid checksum"
    os.chmod(ji, 0o640)
    before = ji.read_bytes()

    dry = reseal(ji, dry_run=True)
    assert dry.changed and not dry.written and ji.read_bytes() == before
    assert dry.pair["same_build"] and dry.pair["targets_equal"]

    done = reseal(ji)
    assert done.written and done.new_crc_so != done.old_crc_so
    after = ji.read_bytes()
    assert after[:-8] == before[:-8] and len(after) == len(before)
    assert (ji.stat().st_mode & 0o777) == 0o640
    assert not list(tmp_path.glob(".*reseal"))  # no temporary left behind
    assert inspect_ji(ji, session)["verdict"]["loads"] is True
    assert not reseal(ji).changed  # idempotent


def test_mismatched_pair_refused(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Adapt" / "rUIgN_LJMjr.ji", tmp_path)
    compat = V19 / "Compat" / "GSFWK_LJMjr.so"
    before = ji.read_bytes()
    with pytest.raises(InputError, match="does not belong") as e:
        reseal(ji, compat)
    assert "heap checksum" in str(e.value) and ji.read_bytes() == before
    forced = reseal(ji, compat, force=True)
    assert forced.written and forced.notes and read_ji(ji).crc_so == forced.new_crc_so


def test_two_builds_of_one_package_are_told_apart(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Preferences" / "pWSk8_LJMjr.ji", tmp_path)
    with pytest.raises(InputError, match="another package or another build"):
        reseal(ji, V19 / "Preferences" / "pWSk8_0kJBY.so")


def test_macos_pair_and_refusals(tmp_path: Path) -> None:
    ji = _copy_pair(MAC111 / "Logging" / "PWFjL_GDH18.ji", tmp_path, ".dylib")
    with open(ji.with_suffix(".dylib"), "ab") as f:
        f.write(b"\0" * 8)
    assert reseal(ji).written  # the sibling's extension comes from the .ji's OS field (Darwin)
    with pytest.raises(InputError, match="image not found"):
        reseal(ji, tmp_path / "nope.dylib")
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    shutil.copy(V19 / "Parsers" / "833b9_LJMjr.ji", orphan)
    with pytest.raises(InputError, match="image not found"):
        reseal(orphan / "833b9_LJMjr.ji")


def test_corrupted_ji_is_not_blessed(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Reexport" / "bTpYr_LJMjr.ji", tmp_path)
    data = bytearray(ji.read_bytes())
    data[200] ^= 0xFF
    ji.write_bytes(bytes(data))
    with pytest.raises(InputError, match="already wrong"):
        reseal(ji)


def test_cli(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Reexport" / "bTpYr_LJMjr.ji", tmp_path)
    with open(ji.with_suffix(".so"), "ab") as f:
        f.write(b"x")
    group = click.Group(commands={"reseal": reseal_command})
    runner = CliRunner()
    res = runner.invoke(group, ["reseal", str(ji), "--dry-run"])
    assert res.exit_code == 0 and "dry run: nothing written" in res.output
    res = runner.invoke(group, ["reseal", str(ji), "--json"])
    data = json.loads(res.output)
    assert data["written"] and data["crc_so"]["old"] != data["crc_so"]["new"]
    res = runner.invoke(group, ["reseal", str(ji), "--image", str(V19 / "Compat" / "GSFWK_LJMjr.so")])
    assert res.exit_code == 3 and "does not belong" in res.output


# -- reseal cannot be fooled: the image must be a complete image of the .ji's platform ----------------

PREFS = V19 / "Preferences" / "pWSk8_LJMjr.ji"  # its image is 713,048 bytes


def _seal_for(ji: Path, image: Path) -> None:
    """Write the trailer as a fooled reseal would have (what the old code did), bypassing every check."""
    import struct

    import crc32c

    body = ji.read_bytes()[:-8] + struct.pack("<I", crc32c.crc32c(image.read_bytes()))
    ji.write_bytes(body + struct.pack("<I", crc32c.crc32c(body)))


def test_a_ji_given_as_its_own_image_is_refused(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Adapt" / "rUIgN_LJMjr.ji", tmp_path)
    before = ji.read_bytes()
    with pytest.raises(InputError, match=r"is not an ELF shared library for x86_64: it is a Julia cache file"):
        reseal(ji, ji)
    with pytest.raises(InputError, match="is not an ELF shared library"):
        reseal(ji, ji, force=True)  # --force skips the pairing check, never the format check
    assert ji.read_bytes() == before and not list(tmp_path.glob(".*reseal"))


@pytest.mark.parametrize("cut", [512 << 10, 713048 - 1])
def test_a_truncated_image_is_refused(tmp_path: Path, cut: int) -> None:
    ji = _copy_pair(PREFS, tmp_path)
    image = ji.with_suffix(".so")
    assert image.stat().st_size == 713048
    os.truncate(image, cut)
    before = ji.read_bytes()
    with pytest.raises(InputError, match=r"is truncated: the section header table needs bytes up to 0xae158") as e:
        reseal(ji, force=True)
    assert str(image) in str(e.value) and ji.read_bytes() == before


def test_an_image_of_another_platform_is_refused(tmp_path: Path) -> None:
    ji = _copy_pair(V19 / "Adapt" / "rUIgN_LJMjr.ji", tmp_path)
    mac = REAL_MAC_DYLIB
    with pytest.raises(InputError, match="is not an ELF shared library for x86_64: it is a Mach-O 64-bit dylib"):
        reseal(ji, mac, force=True)


REAL_MAC_DYLIB = realdata.REAL / "alexwjung__dot_julia" / "darwin-x86_64" / "compiled" / "v1.9" / "Adapt" / "rUIgN_ucCNj.dylib"


def test_inspect_does_not_say_loads_for_a_truncated_image(tmp_path: Path) -> None:
    """A .ji sealed for a truncated image (what a fooled reseal wrote): the checksums agree, but Julia's
    dlopen would fail, so the verdict is no."""
    ji = _copy_pair(PREFS, tmp_path)
    image = ji.with_suffix(".so")
    os.truncate(image, 512 << 10)
    _seal_for(ji, image)
    report = inspect_ji(ji, Session(cpu="skylake"))
    assert report["checksums"]["crc_so"]["ok"] is True
    assert report["verdict"]["loads"] is False and report["verdict"]["rejected_by"] == "incomplete image"
    assert "is truncated" in report["verdict"]["reason"] and report["image"]["complete"] is False
    done = CliRunner().invoke(click.Group(commands={"reseal": reseal_command}), ["reseal", str(ji)])
    assert done.exit_code == 3 and "is truncated" in done.output
