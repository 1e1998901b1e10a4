"""Files that are not what a reader expects: FIFOs, devices and folders where a regular file belongs are a
clear error (exit 3) and never hang; huge sparse files are refused from their size or their own headers
before anything is mapped or read (well under a second, bounded memory). One opener does it for every
reader: pylinkjl/binfmt/files.py (and binfmt/extent.py for what the headers describe)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.binfmt.files import MAX_FILE_BYTES
from pylinkjl.caches.inspection import inspect_path
from pylinkjl.errors import InputError
from pylinkjl.images.verify import verify_image
from pylinkjl.target import Target, parse_target

from .realdata import REAL

LINUX = parse_target("linux-x86_64")
GLOB = REAL / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob"
REAL_SO, REAL_JI = GLOB / "3FzEV_ujJ6A.so", GLOB / "3FzEV_ujJ6A.ji"


def cli(*args: str | Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A hang is a failure (TimeoutExpired), not a stuck test run."""
    return subprocess.run([sys.executable, "-m", "pylinkjl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False)


_MEASURE = """
import resource, subprocess, sys
done = subprocess.run([sys.executable, "-m", "pylinkjl", *sys.argv[1:]], stdout=subprocess.DEVNULL,
                      stderr=subprocess.PIPE, text=True)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_measured(*args: str | Path) -> tuple[int, str, float]:
    """rc, stderr and the peak RSS in MiB of one ``pylinkjl`` process, started from a small Python (a child
    forked from pytest itself would count pytest's own pages before its exec)."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *map(str, args)], capture_output=True, text=True,
                          timeout=60, check=False)
    rc, kib = done.stdout.split()
    return int(rc), done.stderr, int(kib) / 1024


# -- FIFOs and other special files ---------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_fifo_link_input(fifo: Path, tmp_path: Path) -> None:
    done = cli("link", fifo, "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and f"{fifo}: is a FIFO, not a regular file" in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["verify", "inspect", "reseal"])
def test_fifo_image_or_cache(command: str, tmp_path: Path) -> None:
    path = tmp_path / ("x.ji" if command == "reseal" else "x.so")
    os.mkfifo(path)
    done = cli(command, path)
    assert done.returncode == 3 and "is a FIFO, not a regular file" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_fifo_verify_object(fifo: Path) -> None:
    done = cli("verify", REAL_SO, "--object", fifo)
    assert done.returncode == 3 and f"{fifo}: is a FIFO" in done.stderr, done.stderr


def test_fifo_link_ji(clang_objects: dict[Target, Path], fifo: Path, tmp_path: Path) -> None:
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.so", "--target", "linux-x86_64", "--ji", fifo)
    assert done.returncode == 3 and f"{fifo}: is a FIFO" in done.stderr, done.stderr


def test_fifo_manifest(fifo: Path) -> None:
    done = cli("relink", "--manifest", fifo)
    assert done.returncode == 3 and f"{fifo}: is a FIFO" in done.stderr, done.stderr


def test_fifo_ji_inside_a_depot(tmp_path: Path) -> None:
    pkg = tmp_path / "depot" / "compiled" / "v1.10" / "Glob"
    pkg.mkdir(parents=True)
    shutil.copy(REAL_JI, pkg / REAL_JI.name)
    shutil.copy(REAL_SO, pkg / REAL_SO.name)
    os.mkfifo(pkg / "AbCdE_FgHiJ.ji")
    done = cli("depot", tmp_path / "depot", "--json")
    assert "is a FIFO, not a regular file" in done.stdout, done.stdout + done.stderr
    assert "3FzEV_ujJ6A.ji" in done.stdout  # the real cache is still reported


def test_device_node_and_folder_inputs(tmp_path: Path) -> None:
    dev = tmp_path / "null"
    os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # a private null device: reads would give b""
    done = cli("inspect", dev)
    assert done.returncode == 3 and "is a character device, not a regular file" in done.stderr, done.stderr
    done = cli("verify", tmp_path)
    assert done.returncode == 3 and "is a folder, not a regular file" in done.stderr, done.stderr


# -- huge sparse files -----------------------------------------------------------------------------------

def sparse_copy(src: Path | None, dest: Path, size: int) -> Path:
    """``src`` (or nothing) extended to ``size`` bytes without using disk space."""
    if src is not None:
        shutil.copy(src, dest)
    with open(dest, "ab") as f:
        f.truncate(size)
    return dest


@pytest.mark.parametrize("case", ["zeros-50G", "ji-50G", "ji-3G", "so-5G", "so-3G"])
def test_huge_sparse_files_are_refused_at_once(case: str, tmp_path: Path) -> None:
    kind, size = case.split("-")
    nbytes = int(size[:-1]) << 30
    src = {"zeros": None, "ji": REAL_JI, "so": REAL_SO}[kind]
    path = sparse_copy(src, tmp_path / f"big.{'ji' if kind == 'ji' else 'so'}", nbytes)
    read = verify_image if kind == "so" else inspect_path
    start = time.perf_counter()
    with pytest.raises(InputError) as err:
        read(path)
    seconds = time.perf_counter() - start
    assert seconds < 0.5, f"{case}: {seconds:.2f} s"
    assert str(nbytes) in str(err.value)
    if nbytes > MAX_FILE_BYTES:
        assert "more than the 4 GiB pylinkjl reads" in str(err.value)
    else:  # below the size limit: the file's own structure says where it ends
        assert "bytes after its end" in str(err.value)
    rc, stderr, rss_mib = run_measured("verify" if kind == "so" else "inspect", path)
    assert rc == 3 and "Traceback" not in stderr, stderr
    assert rss_mib < 100, f"{case}: peak RSS {rss_mib:.0f} MiB"  # the command itself takes ~25 MiB


def test_real_files_pass_the_extent_checks() -> None:
    """Every real image and cache we have ends where its headers say (no false alarms)."""
    from pylinkjl.binfmt.extent import claimed_size
    from pylinkjl.binfmt.files import mapped_file
    from pylinkjl.binfmt.sniff import sniff_file
    from pylinkjl.caches.ji import read_ji

    images = [p for p in REAL.rglob("*") if p.suffix in (".so", ".dylib", ".dll") and p.is_file()]
    assert len(images) > 10
    for image in images:
        with mapped_file(image) as data:
            described = claimed_size(data, str(image), sniff_file(image).format).needed
            assert described == len(data), (image, described, len(data))
    for ji in REAL.rglob("*.ji"):
        read_ji(ji)


def test_symlink_loop_input_names_the_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for args in (["link", tmp_path / "a", "-o", tmp_path / "x.so", "--target", "linux-x86_64"],
                 ["inspect", tmp_path / "a"]):
        done = cli(*args)
        assert done.returncode == 3 and "Too many levels of symbolic links" in done.stderr, done.stderr
