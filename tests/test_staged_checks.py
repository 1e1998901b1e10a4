"""Every check of a link runs on the staged file, before the rename: a command that fails leaves an
existing output untouched (same inode, same bytes) and nothing new beside it. The checks: the output is a
complete image of the target's format and architecture (an LLD that exits 0 with a bad file is caught),
``--verify``, and the ``--ji`` pairing of ``reseal``; the rename is the last step of a command that succeeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import sys
from pathlib import Path

import pytest

from pylinkjl.batch.run import BatchItem, relink_many
from pylinkjl.caches.crc import crc32c_file
from pylinkjl.caches.embedded import find_embedded_header
from pylinkjl.caches.ji import read_ji
from pylinkjl.errors import InputError, Interrupted, LinkOutputError, VerificationError
from pylinkjl.link.api import link_image
from pylinkjl.process import signals_as_interrupt
from pylinkjl.target import Target, parse_target

from . import realdata
from .test_ji import build_ji
from .test_link_cli import cli, leftovers
from .toolnames import LLD

LINUX, WIN64, MAC64 = parse_target("linux-x86_64"), parse_target("windows-x86_64"), parse_target("macos-x86_64")
SAMPLES = Path(__file__).parents[1] / "pylinkjl" / "samples"
WRONG_JI = realdata.REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Adapt/rUIgN_LJMjr.ji"


def sample(target: Target) -> Path:
    return SAMPLES / f"pkgimage-1.11-{target.os}-{target.arch}.a"


def fingerprint(path: Path) -> tuple[int, int, bytes]:
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, path.read_bytes()


def litter(folder: Path) -> list[Path]:
    """What a failed command must not leave: staging folders and reseal temporaries."""
    return [*leftovers(folder), *folder.glob(".*.reseal")]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    """A good, verified image at the output path, made by pylinkjl itself."""
    out = tmp_path / "Pkg.so"
    done = cli("link", sample(LINUX), "-o", out, "--target", "linux-x86_64", "--verify")
    assert done.returncode == 0, done.stderr
    return out


def matching_ji(image: Path, dest: Path) -> Path:
    """A synthetic .ji that belongs to ``image``: its heap checksum and clone targets."""
    from pylinkjl.images.decode import read_image

    header = find_embedded_header(image.read_bytes(), image)
    assert header is not None
    targets = bytes(read_image(image).target_list)
    dest.write_bytes(build_ji(version=header.julia_version, targets=targets, checksum=header.heap_checksum))
    return dest


# -- --ji and --verify ---------------------------------------------------------------------------------

def test_ji_that_does_not_belong_leaves_the_output_alone(good: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "Wrong.ji"
    shutil.copyfile(WRONG_JI, wrong)
    before, ji_before = fingerprint(good), fingerprint(wrong)
    done = cli("link", sample(LINUX), "-o", good, "--target", "linux-x86_64", "--ji", wrong)
    assert done.returncode == 3, done.stderr
    assert "does not belong to Wrong.ji" in done.stderr and "Traceback" not in done.stderr
    assert fingerprint(good) == before and fingerprint(wrong) == ji_before
    assert litter(tmp_path) == []


def test_failed_verification_leaves_the_output_alone(good: Path, clang_objects: dict[Target, Path],
                                                     tmp_path: Path) -> None:
    """A plain C object links but is no Julia image: exit 7, and the good image stays."""
    before = fingerprint(good)
    done = cli("link", clang_objects[LINUX], "-o", good, "--target", "linux-x86_64", "--verify")
    assert done.returncode == 7, done.stderr
    assert "verification FAILED" in done.stderr and f"{good} failed verification" in done.stderr
    assert ".pylinkjl-" not in done.stderr  # the report names the output, not the staging path
    assert fingerprint(good) == before and litter(tmp_path) == []
    fresh = tmp_path / "new.so"
    done = cli("link", clang_objects[LINUX], "-o", fresh, "--target", "linux-x86_64", "--verify", "--json")
    assert done.returncode == 7
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "VerificationError" and error["verify"]["ok"] is False
    assert not fresh.exists() and litter(tmp_path) == []


def test_verify_and_reseal_in_the_library(tmp_path: Path, clang_objects: dict[Target, Path]) -> None:
    out = tmp_path / "x.so"
    with pytest.raises(VerificationError) as caught:
        link_image(clang_objects[LINUX], out, target=LINUX, verify=True)
    assert caught.value.verify is not None and not caught.value.verify.ok and caught.value.verify.path == out
    assert not out.exists() and litter(tmp_path) == []
    result = link_image(sample(LINUX), out, target=LINUX, verify=True)
    assert result.verify is not None and result.verify.ok and result.verify.path == out


def test_ji_is_resealed_for_the_image_that_lands(tmp_path: Path) -> None:
    first = tmp_path / "first" / "Pkg.so"
    link_image(sample(LINUX), first, target=LINUX)
    ji = matching_ji(first, tmp_path / "Pkg.ji")
    out = tmp_path / "Pkg.so"
    done = cli("link", sample(LINUX), "-o", out, "--target", "linux-x86_64", "--ji", ji, "--verify", "--json")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["reseal"]["written"] and payload["reseal"]["image"] == str(out) and payload["verify"]["ok"]
    assert read_ji(ji).crc_so == crc32c_file(out) and read_ji(ji).crc_ji_ok
    assert litter(tmp_path) == []


def test_ji_pairing_failure_in_the_library(tmp_path: Path) -> None:
    out = tmp_path / "x.so"
    with pytest.raises(InputError, match="does not belong"):
        link_image(sample(LINUX), out, target=LINUX, ji=WRONG_JI)
    assert not out.exists() and litter(tmp_path) == []


# -- an LLD that exits 0 with a bad output -------------------------------------------------------------

LYING_LLD = """#!{python}
# Runs the real LLD, then spoils its output ({how}) and still exits 0.
import os, shutil, subprocess, sys
args = sys.argv[1:]
rc = subprocess.call([{lld!r}, *args])
if rc == 0 and "-o" in args:
    out = args[args.index("-o") + 1]
    how = {how!r}
    if how == "truncate":
        os.truncate(out, os.path.getsize(out) // 2)
    elif how == "empty":
        open(out, "w").close()
    elif how == "ji":
        shutil.copyfile({ji!r}, out)
    elif how == "other-arch":
        shutil.copyfile({other!r}, out)
    elif how == "missing":
        os.unlink(out)
    elif how == "symlink":  # to a good image elsewhere: it must not become the output
        os.unlink(out)
        os.symlink({other!r}, out)
sys.exit(rc)
"""


def lying_lld(folder: Path, how: str, other: Path | None = None) -> Path:
    lld = shutil.which(LLD)
    assert lld is not None
    script = folder / f"lld-{how}"
    script.write_text(LYING_LLD.format(python=sys.executable, lld=lld, how=how, ji=str(WRONG_JI),
                                       other=str(other or "")))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.mark.parametrize("how,problem", [
    ("truncate", "is truncated: the section header table needs bytes up to"),
    ("empty", "it is an empty file"),
    ("ji", "it is a Julia cache file (.ji)"),
    ("missing", "wrote no output"),
    ("symlink", "is not a regular file"),
])
def test_lld_that_lies_does_not_clobber_a_good_image(how: str, problem: str, good: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.so"
    shutil.copyfile(good, elsewhere)
    wrapper = lying_lld(tmp_path, how, elsewhere)
    before = fingerprint(good)
    env = dict(os.environ, PYLINKJL_LLD=str(wrapper))
    done = cli("link", sample(LINUX), "-o", good, "--target", "linux-x86_64", env=env)
    assert done.returncode == 5, done.stderr
    assert "LLD reported success" in done.stderr and problem in done.stderr and "Traceback" not in done.stderr
    assert fingerprint(good) == before and litter(tmp_path) == []


def test_output_of_the_wrong_architecture_or_format_is_refused(good: Path, tmp_path: Path) -> None:
    arm = tmp_path / "arm" / "x.so"
    link_image(sample(parse_target("linux-aarch64")), arm, target="linux-aarch64")
    wrapper = lying_lld(tmp_path, "other-arch", arm)
    before = fingerprint(good)
    with pytest.raises(LinkOutputError, match="not an ELF shared library for x86_64: it is an ELF 64-bit LSB "
                       "shared object, aarch64"):
        link_image(sample(LINUX), good, target=LINUX, lld=wrapper)
    assert fingerprint(good) == before and litter(tmp_path) == []
    dll = tmp_path / "x.dll"
    with pytest.raises(LinkOutputError, match="not a PE/COFF shared library for x86_64: it is an ELF"):
        link_image(sample(WIN64), dll, target=WIN64, lld=lying_lld(tmp_path, "other-arch", good))
    assert not dll.exists()


@pytest.mark.parametrize("target", [WIN64, MAC64], ids=str)
def test_truncated_output_of_every_format(target: Target, tmp_path: Path) -> None:
    out = tmp_path / f"x.{target.dlext}"
    with pytest.raises(LinkOutputError, match="is truncated"):
        link_image(sample(target), out, target=target, lld=lying_lld(tmp_path, "truncate"))
    assert not out.exists() and litter(tmp_path) == []


# -- relink: the same pipeline ---------------------------------------------------------------------------

def test_relink_runs_the_same_checks(good: Path, clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    before = fingerprint(good)
    (verified,) = relink_many([BatchItem((clang_objects[LINUX],), good)], target=LINUX, verify=True)
    assert verified.status == "failed" and isinstance(verified.error, VerificationError)
    assert verified.verify is not None and not verified.verify.ok
    assert fingerprint(good) == before
    (lied,) = relink_many([BatchItem((sample(LINUX),), good)], target=LINUX, lld=lying_lld(tmp_path, "truncate"))
    assert lied.status == "failed" and isinstance(lied.error, LinkOutputError) and lied.error.exit_code == 5
    assert fingerprint(good) == before
    wrong = tmp_path / "Wrong.ji"
    shutil.copyfile(WRONG_JI, wrong)
    (paired,) = relink_many([BatchItem((sample(LINUX),), good, ji=wrong)], target=LINUX)
    assert paired.status == "failed" and isinstance(paired.error, InputError)
    assert fingerprint(good) == before and litter(tmp_path) == []


def test_relink_reseals_from_a_manifest(tmp_path: Path) -> None:
    first = tmp_path / "first" / "Pkg.so"
    link_image(sample(LINUX), first, target=LINUX)
    ji = matching_ji(first, tmp_path / "Pkg.ji")
    manifest = tmp_path / "jobs.json"
    manifest.write_text(json.dumps([{"input": str(sample(LINUX)), "output": "Pkg.so", "ji": "Pkg.ji",
                                     "target": "linux-x86_64"}]))
    done = cli("relink", "--manifest", manifest, "--json")
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(done.stdout)["results"]
    assert item["reseal"]["written"]
    assert read_ji(ji).crc_so == crc32c_file(tmp_path / "Pkg.so")


def test_a_failed_ji_rename_puts_the_old_image_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image and the .ji are renamed one after the other: should the second rename fail, the first is
    undone (the old image was kept as a hard link in the staging folder), so the pair stays consistent."""
    import pylinkjl.caches.reseal

    out = tmp_path / "Pkg.so"
    link_image(sample(LINUX), out, target=LINUX)
    with open(out, "ab") as f:
        f.write(b"\0")  # the old image differs from the new one, and its .ji is sealed for it
    ji = matching_ji(out, tmp_path / "Pkg.ji")
    pylinkjl.caches.reseal.reseal(ji, out)
    before, ji_before = fingerprint(out), fingerprint(ji)

    def broken(plan: object, staged: object) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(pylinkjl.caches.reseal, "commit_reseal", broken)
    with pytest.raises(OSError, match="Input/output error"):
        link_image(sample(LINUX), out, target=LINUX, ji=ji)
    assert fingerprint(out) == before and fingerprint(ji) == ji_before and litter(tmp_path) == []
    fresh = tmp_path / "fresh" / "Pkg.so"
    with pytest.raises(OSError):
        link_image(sample(LINUX), fresh, target=LINUX, ji=ji)
    assert not fresh.exists() and fingerprint(ji) == ji_before and litter(fresh.parent) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_a_signal_between_the_renames_waits_for_the_second(sig: int, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal that arrives right after the image was renamed into place (before its .ji) does not leave a
    half-installed pair: both renames finish, and the interrupt says that the output was written."""
    out = tmp_path / "Pkg.so"
    link_image(sample(LINUX), out, target=LINUX)
    with open(out, "ab") as f:
        f.write(b"\0")
    ji = matching_ji(out, tmp_path / "Pkg.ji")
    real_replace = os.replace

    def replace_then_signal(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_replace(src, dst)
        if Path(dst) == out:
            os.kill(os.getpid(), sig)  # delivered at once to this (the main) thread

    monkeypatch.setattr(os, "replace", replace_then_signal)
    with signals_as_interrupt(), pytest.raises(Interrupted) as caught:
        link_image(sample(LINUX), out, target=LINUX, ji=ji)
    assert f"after {out} was written" in str(caught.value) and caught.value.exit_code == 128 + sig
    assert read_ji(ji).crc_so == crc32c_file(out)  # the .ji was resealed for the new image too
    assert litter(tmp_path) == []
