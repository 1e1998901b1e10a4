"""`pylinkjl link` from the outside: bad input of every class gets its exit code and a message naming the
file; failures, timeouts and Ctrl-C leave nothing behind; odd paths and response files work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.link.api import link_image, link_request
from pylinkjl.link.plan import plan_link
from pylinkjl.target import Target, parse_target

from .fake_julia import make_fake_julia
from .realdata import REAL

REAL_SO = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Reexport/bTpYr_LJMjr.so"
LINUX, WIN64, MAC64 = parse_target("linux-x86_64"), parse_target("windows-x86_64"), parse_target("macos-x86_64")
MACARM = parse_target("macos-arm64")


def cli(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(check=False, args=[sys.executable, "-m", "pylinkjl", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".pylinkjl-*"))


# -- bad input -------------------------------------------------------------------------------------

def test_missing_input(tmp_path: Path) -> None:
    done = cli("link", tmp_path / "nope.a", "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "nope.a: no such file" in done.stderr and "Traceback" not in done.stderr


def test_directory_input(tmp_path: Path) -> None:
    done = cli("link", tmp_path, "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "is a directory" in done.stderr


def test_text_file_input(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n" * 20)
    done = cli("link", tmp_path / "notes.txt", "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "notes.txt" in done.stderr and "not an object file or archive" in done.stderr


def test_shared_library_input(tmp_path: Path) -> None:
    done = cli("link", REAL_SO, "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "not an object file or archive" in done.stderr


def test_wrong_format(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.dll", "--target", "windows-x86_64")
    assert done.returncode == 3 and "is a ELF x86_64 object" in done.stderr.replace("an ELF", "a ELF")
    assert "COFF x86_64" in done.stderr


def test_wrong_architecture_is_refused_before_lld(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    # LLD itself would only warn and write an empty dylib (docs/lld-toolchain.md §3.2).
    done = cli("link", clang_objects[MACARM], "-o", tmp_path / "x.dylib", "--target", "macos-x86_64")
    assert done.returncode == 3 and "Mach-O aarch64" in done.stderr and "Mach-O x86_64" in done.stderr
    assert not (tmp_path / "x.dylib").exists()


def test_empty_archive(tmp_path: Path) -> None:
    (tmp_path / "empty.a").write_bytes(b"!<arch>\n")
    done = cli("link", tmp_path / "empty.a", "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "no object files" in done.stderr


def test_truncated_archive(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    data = clang_objects[LINUX].read_bytes()
    (tmp_path / "cut.a").write_bytes(data[: len(data) // 2])
    done = cli("link", tmp_path / "cut.a", "-o", tmp_path / "x.so", "--target", "linux-x86_64")
    assert done.returncode == 3 and "cut.a" in done.stderr and "Traceback" not in done.stderr


def test_unknown_target_and_version(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.so", "--target", "sparc-sun-solaris")
    assert done.returncode == 2 and "valid targets are" in done.stderr
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.so", "--julia-version", "1.8")
    assert done.returncode == 2 and "start with Julia 1.9" in done.stderr


def test_no_lld(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.so", "--target", "linux-x86_64",
               "--lld", tmp_path / "no-lld")
    assert done.returncode == 4 and "no-lld" in done.stderr


def test_missing_library_in_a_real_tree(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    home = make_fake_julia(tmp_path / "julia", WIN64, "1.11.7", drop=("libssp.dll.a", "libgcc_s.a"))
    done = cli("link", clang_objects[WIN64], "-o", tmp_path / "x.dll", "--target", "windows-x86_64",
               "--julia-home", home)
    assert done.returncode == 6, done.stderr
    assert "-lssp" in done.stderr and "-lgcc_s" in done.stderr and str(home / "lib" / "julia") in done.stderr
    done = cli("link", clang_objects[WIN64], "-o", tmp_path / "x.dll", "--target", "windows-x86_64",
               "--julia-home", home, "--stub-missing", "--dry-run", "--json")
    plan = json.loads(done.stdout)
    assert done.returncode == 0 and plan["stubbed"] == ["-lssp", "-lgcc_s"]
    assert plan["argv"][-1] == f"-L{plan['stub_dir']}" and "--stub-missing" in plan["notes"][0]


def test_dry_run_prints_the_command_whatever_the_tree_lacks(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    """Like clang -###: the full command, exit 0, and a warning naming what is missing; the real run fails."""
    home = make_fake_julia(tmp_path / "julia", WIN64, "1.11.7", drop=("libssp.dll.a", "libgcc_s.a"))
    args = ("link", clang_objects[WIN64], "-o", tmp_path / "x.dll", "--target", "windows-x86_64", "--julia-home", home)
    done = cli(*args, "--dry-run")
    assert done.returncode == 0, done.stderr
    argv = done.stdout.splitlines()[-1].split()
    assert "-lssp" in argv and "-lgcc_s" in argv and f"-L{home / 'bin'}" in argv  # Julia's own command
    warning = next(line for line in done.stderr.splitlines() if "LLD would fail" in line)
    assert str(home) in warning and "-lssp" in warning and "-lgcc_s" in warning
    done = cli(*args, "--dry-run", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["missing"] == ["-lssp", "-lgcc_s"]
    assert cli(*args).returncode == 6 and not (tmp_path / "x.dll").exists()
    # A plan made for a dry run cannot be executed behind the user's back.
    from pylinkjl.errors import MissingLibraryError
    from pylinkjl.link.run import execute

    plan = plan_link(link_request(clang_objects[WIN64], tmp_path / "x.dll", target=WIN64, julia_home=home,
                                  allow_missing=True))
    with pytest.raises(MissingLibraryError, match="-lssp"):
        execute(plan)
    assert leftovers(tmp_path) == []


def test_a_tree_of_unknown_os_follows_the_target(tmp_path: Path) -> None:
    """Headers and lib/julia but no libjulia to tell the OS: for a Windows target -L{shlibdir} is bin/."""
    home = make_fake_julia(tmp_path / "julia", WIN64, "1.12.6", drop=("libjulia.dll", "julia.exe"))
    archive = Path(__file__).parents[1] / "pylinkjl/samples/pkgimage-1.11-windows-x86_64.a"
    plan = plan_link(link_request(archive, tmp_path / "x.dll", target=WIN64, julia_home=home, stub_missing=True))
    assert plan.julia is not None and plan.julia.os == "windows"
    assert f"-L{home / 'bin'}" in plan.argv and f"-L{home / 'lib'}" not in plan.argv
    plan = plan_link(link_request(Path(__file__).parents[1] / "pylinkjl/samples/pkgimage-1.11-linux-x86_64.a",
                                  tmp_path / "x.so", target=LINUX, julia_home=home, stub_missing=True))
    assert f"-L{home / 'lib'}" in plan.argv and f"-L{home / 'bin'}" not in plan.argv


# -- LLD failures, timeouts, Ctrl-C: nothing is lost ---------------------------------------------------

def test_lld_failure_keeps_the_old_output(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    out = tmp_path / "x.dll"
    out.write_text("old image")
    # --julia-exact: no injected entry stub, so LLD fails for lack of _DllMainCRTStartup
    done = cli("link", clang_objects[WIN64], "-o", out, "--target", "windows-x86_64", "--julia-exact")
    assert done.returncode == 5
    assert "undefined symbol: _DllMainCRTStartup" in done.stderr and "advice: [missing-entry]" in done.stderr
    assert "command (condensed" in done.stderr
    assert out.read_text() == "old image" and not leftovers(tmp_path)


FAKE_LLD = """#!/bin/sh
for a in "$@"; do [ "$a" = --version ] && echo "LLD 19.1.7 (compatible with GNU linkers)" && exit 0; done
echo $$ > "{marker}"
exec sleep 60
"""


@pytest.fixture
def slow_lld(tmp_path: Path, clang_objects: dict[Target, Path]) -> tuple[Path, Path]:
    """A fake LLD that hangs. The stub libraries are built first with the real one (same cache key)."""
    link_image(clang_objects[LINUX], tmp_path / "warm" / "x.so", target=LINUX)
    marker = tmp_path / "lld-started"
    fake = tmp_path / "slow-lld"
    fake.write_text(FAKE_LLD.format(marker=marker))
    fake.chmod(0o755)
    return fake, marker


def test_timeout_leaves_nothing(clang_objects: dict[Target, Path], tmp_path: Path, slow_lld: tuple[Path, Path]) -> None:
    out = tmp_path / "out" / "x.so"
    done = cli("link", clang_objects[LINUX], "-o", out, "--target", "linux-x86_64", "--lld", slow_lld[0],
               "--timeout", "1")
    assert done.returncode == 5 and "did not finish within 1 s" in done.stderr
    assert not out.exists() and not leftovers(out.parent)


def test_ctrl_c_stops_lld_and_leaves_nothing(clang_objects: dict[Target, Path], tmp_path: Path,
                                             slow_lld: tuple[Path, Path]) -> None:
    fake, marker = slow_lld
    out = tmp_path / "x.so"
    proc = subprocess.Popen([sys.executable, "-m", "pylinkjl", "link", str(clang_objects[LINUX]), "-o", str(out),
                             "--target", "linux-x86_64", "--lld", str(fake)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the fake LLD never started"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    lld_pid = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(lld_pid, 0)
    assert not out.exists() and not leftovers(tmp_path)


# -- paths, response files, dry run, verbosity ------------------------------------------------------

ODD = "dir with spaces, 'quotes' \"and\" ünïcødé"


@pytest.mark.parametrize("target", [LINUX, WIN64, MACARM], ids=str)
def test_odd_paths_and_response_files(target: Target, clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    folder = tmp_path / ODD
    folder.mkdir()
    archive = folder / "jl_Ab12 Cd'\".a"
    archive.write_bytes(clang_objects[target].read_bytes())
    for rsp in (False, True):
        out = folder / f"Pkg Ö {rsp}.{target.dlext}"
        result = link_image(archive, out, target=target, force_response_file=rsp)
        assert result.response_file == rsp and out.stat().st_size > 1000
    assert not leftovers(folder)


def test_dry_run_prints_argv_and_runs_nothing(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    out = tmp_path / "o" / "x.so"
    done = cli("link", clang_objects[LINUX], "-o", out, "--target", "linux-x86_64", "--dry-run")
    assert done.returncode == 0
    last = done.stdout.strip().splitlines()[-1]
    assert "-flavor gnu" in last and "--whole-archive" in last and "-ljulia-internal" in last
    assert not out.parent.exists()
    done = cli("link", clang_objects[LINUX], "-o", out, "--target", "linux-x86_64", "--dry-run", "--json")
    plan = json.loads(done.stdout)
    assert plan["julia_line"] == "1.12" and plan["argv"][1:3] == ["-flavor", "gnu"]


@pytest.mark.parametrize("value,passes", [("true", True), ("1", True), ("Yes", True), ("T", True),
                                           ("false", False), ("maybe", False), ("", False)])
def test_julia_verbose_linking(value: str, passes: bool, clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    env = dict(os.environ, JULIA_VERBOSE_LINKING=value)
    done = cli("link", clang_objects[LINUX], "-o", tmp_path / "x.so", "--target", "linux-x86_64", "--dry-run",
               env=env)
    assert done.returncode == 0
    assert ("--verbose" in done.stdout.splitlines()[-1].split()) == passes
    assert ("pylinkjl: target linux-x86_64" in done.stderr) == passes  # -v logging comes with it


def test_verbose_log_tells_the_story(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    done = cli("link", clang_objects[WIN64], "-o", tmp_path / "x.dll", "--target", "windows-x86_64", "-v")
    assert done.returncode == 0, done.stderr
    for needle in ("LLD 19.", "Julia line 1.12", "entry stub: no input defines _DllMainCRTStartup: injecting",
                   "stub libraries in", "running: ", "LLD finished with exit code 0", "wrote "):
        assert needle in done.stderr
    done = cli("link", clang_objects[WIN64], "-o", tmp_path / "x.dll", "--target", "windows-x86_64", "-vv")
    assert "lld-link -lldmingw" in done.stderr  # LLD's own --verbose output


def test_library_plan_api(clang_objects: dict[Target, Path], tmp_path: Path) -> None:
    plan = plan_link(link_request(clang_objects[WIN64], tmp_path / "x.dll", target="x86_64-w64-mingw32",
                                 julia_version="1.10"))
    assert plan.line == "1.10.4" and "--disable-auto-import" in plan.argv and plan.entry_stub.inject
    assert not (tmp_path / "x.dll").exists()


def test_long_command_lines_go_through_a_response_file(clang_objects: dict[Target, Path], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import pylinkjl.link.run

    monkeypatch.setattr(pylinkjl.link.run, "RSP_THRESHOLD", 100)  # as if the OS allowed only 100 characters
    result = link_image(clang_objects[LINUX], tmp_path / "x.so", target=LINUX)
    assert result.response_file and result.output.stat().st_size > 1000


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "-inf", "soon"])
def test_bad_timeout_is_a_usage_error_before_anything_runs(value: str, tmp_path: Path) -> None:
    archive = Path(__file__).parents[1] / "pylinkjl/samples/pkgimage-1.11-linux-x86_64.a"
    for command in (["link", archive, "-o", tmp_path / "x.so"], ["relink", archive, "--out-dir", tmp_path]):
        done = cli(*command, f"--timeout={value}")
        assert done.returncode == 2, (command, done.stderr)
        assert "finite number of seconds above 0" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    from pylinkjl.errors import TargetError

    with pytest.raises(TargetError, match="finite number of seconds"):
        plan_link(link_request(archive, tmp_path / "x.so", timeout=float(value) if value != "soon" else -1.0))


@pytest.mark.parametrize("kind", ["fifo", "chardev", "folder", "input"])
def test_special_output_is_refused_and_left_alone(kind: str, tmp_path: Path) -> None:
    """Never with the real /dev/null: a private node in tmp_path (root, as in Docker/CI, may make one)."""
    import stat as st

    archive = tmp_path / "pkg.a"
    archive.write_bytes((Path(__file__).parents[1] / "pylinkjl/samples/pkgimage-1.11-linux-x86_64.a").read_bytes())
    out = tmp_path / "out.so"
    if kind == "fifo":
        os.mkfifo(out)
    elif kind == "chardev":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(out, 0o600 | st.S_IFCHR, os.makedev(1, 3))  # a private null device
    elif kind == "folder":
        out.mkdir()
    else:
        out = archive
    before = os.lstat(out)
    done = cli("link", archive, "-o", out, "--target", "linux-x86_64")
    assert done.returncode == 3, done.stderr
    assert str(out) in done.stderr and "Traceback" not in done.stderr
    after = os.lstat(out)
    assert (after.st_ino, after.st_mode, after.st_size) == (before.st_ino, before.st_mode, before.st_size)
    assert leftovers(tmp_path) == []
