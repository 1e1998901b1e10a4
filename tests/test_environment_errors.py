"""The environment says no: a read-only file system, an immutable output, a busy (bind-mounted) output, a full
disk, names and paths too long, a file where a folder belongs, PYLINKJL_CACHE_DIR a file. Each is a named
error (errors.FileSystemError and its subclasses) with the path, the cause and its own exit code, never
rc 1 "internal error"; nothing is left behind, an existing output is untouched, and folders made for the
output are removed again. Uses private tmpfs and bind mounts under tmp_path (CI runs as root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pylinkjl.target import Target, parse_target

LINUX, WIN64 = parse_target("linux-x86_64"), parse_target("windows-x86_64")
ARCHIVE = Path(__file__).parent / "data" / "archives" / "mv-1.11-linux-x86_64.a"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting tmpfs needs root (CI runs as root)")


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pylinkjl", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def link(out: Path, *extra: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return cli("link", ARCHIVE, "-o", out, "--target", "linux-x86_64", *extra, env=env)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``mount(name, options)``: a private tmpfs at tmp_path/name; ``mount(name, bind=src)``: a bind mount.
    Everything is unmounted afterwards."""
    mounted: list[Path] = []

    def make(name: str, options: str = "size=1m", *, bind: Path | None = None) -> Path:
        point = tmp_path / name
        if bind is not None:
            point.touch()
            cmd = ["mount", "--bind", str(bind), str(point)]
        else:
            point.mkdir()
            cmd = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)]
        subprocess.run(cmd, check=True, capture_output=True)
        mounted.append(point)
        return point

    yield make
    for point in reversed(mounted):
        subprocess.run(["chattr", "-R", "-i", str(point)], check=False, capture_output=True)
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Stub libraries built once (into the session's cache), so later failures are the output's alone."""
    done = link(tmp_path_factory.mktemp("warm") / "x.so")
    assert done.returncode == 0, done.stderr


def test_read_only_file_system(mount: Callable[..., Path], warm: None) -> None:
    ro = mount("ro", "size=1m,ro")
    done = link(ro / "x.so")
    assert done.returncode == 10, done.stderr
    assert str(ro) in done.stderr and "Read-only file system" in done.stderr and "internal error" not in done.stderr


def test_immutable_output_is_untouched(mount: Callable[..., Path], warm: None) -> None:
    folder = mount("imm")
    out = folder / "x.so"
    out.write_bytes(b"the old image")
    subprocess.run(["chattr", "+i", str(out)], check=True)
    done = link(out)
    assert done.returncode == 11, done.stderr
    assert f"{out}: cannot replace the output" in done.stderr and "Operation not permitted" in done.stderr
    assert out.read_bytes() == b"the old image" and leftovers(folder) == []


def test_busy_bind_mounted_output(mount: Callable[..., Path], tmp_path: Path, warm: None) -> None:
    source = tmp_path / "source.so"
    source.write_bytes(b"mounted over the output")
    out = mount("busy.so", bind=source)
    done = link(out)
    assert done.returncode == 12, done.stderr
    assert str(out) in done.stderr and "busy" in done.stderr
    assert out.read_bytes() == b"mounted over the output" and leftovers(tmp_path) == []


@pytest.mark.parametrize("nested", [False, True], ids=["beside", "new-folders"])
def test_no_space_left_names_the_device(nested: bool, mount: Callable[..., Path], warm: None) -> None:
    full = mount("full", "size=4k")
    out = full / "a" / "b" / "x.so" if nested else full / "x.so"
    done = link(out, "--json")
    assert done.returncode == 9, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["type"] == "NoSpaceError" and error["path"] == str(out)
    assert error["message"].endswith(f"no space left on {full} (tmpfs, tmpfs; " + error["message"].split("; ")[-1])
    done = link(out)
    assert done.returncode == 9 and f"no space left on {full}" in done.stderr
    assert "Stack dump" not in done.stderr  # LLD's backtrace only with -v
    assert list(full.iterdir()) == []  # no staging, and the folders made for the output are gone


def test_names_and_paths_too_long(tmp_path: Path) -> None:
    done = link(tmp_path / ("n" * 300 + ".so"))
    assert done.returncode == 13 and "File name too long" in done.stderr, done.stderr
    done = link(tmp_path / ("d/" * 2100 + "x.so"))
    assert done.returncode == 13 and "File name too long" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_file_where_a_folder_belongs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    done = link(tmp_path / "file" / "x.so")
    assert done.returncode == 14 and "Not a directory" in done.stderr, done.stderr


def test_cache_dir_is_a_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    done = link(tmp_path / "x.so", env={**os.environ, "PYLINKJL_CACHE_DIR": str(cache)})
    assert done.returncode == 14, done.stderr
    assert "PYLINKJL_CACHE_DIR" in done.stderr and str(cache) in done.stderr and "internal error" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]


def test_failed_link_removes_the_folders_it_made(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "x.dll"
    done = cli("link", clang_objects[WIN64], "-o", out, "--target", "windows-x86_64", "--julia-exact")
    assert done.returncode == 5, done.stderr  # no entry point: LLD fails
    assert not (tmp_path / "new").exists()


def test_library_error_carries_path_cause_and_errno(tmp_path: Path) -> None:
    from pylinkjl.errors import NameTooLongError
    from pylinkjl.link.api import link_image

    with pytest.raises(NameTooLongError) as err:
        link_image(ARCHIVE, tmp_path / ("n" * 300 + ".so"), target=LINUX)
    data = err.value.to_dict()
    assert data["errno"] == 36 and data["cause"] == "File name too long" and data["exit_code"] == 13


def test_permission_denied_as_an_unprivileged_user(tmp_path: Path) -> None:
    """As nobody: an output folder without write permission is rc 11, an unreadable input rc 3."""
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:  # pytest's tmp folders are private to root: let nobody through
        if parent.name.startswith("pytest-"):
            parent.chmod(0o755)
    locked, home = tmp_path / "locked", tmp_path / "home"
    locked.mkdir(mode=0o555)
    home.mkdir()
    os.chown(home, 65534, 65534)
    archive = tmp_path / "pkg.a"
    archive.write_bytes(ARCHIVE.read_bytes())
    env = {**os.environ, "HOME": str(home), "PYLINKJL_CACHE_DIR": str(home / "cache")}

    def as_nobody(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "pylinkjl", *map(str, args)], capture_output=True, text=True, env=env, timeout=120,
                              check=False)

    done = as_nobody("link", archive, "-o", locked / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 11 and "Permission denied" in done.stderr, done.stderr
    archive.chmod(0)
    done = as_nobody("link", archive, "-o", home / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and f"{archive}: is not readable" in done.stderr, done.stderr
