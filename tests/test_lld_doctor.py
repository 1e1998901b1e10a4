"""``pylinkjl doctor``: rendering of the LLD search and the Julia installs, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import pylinkjl.link.lld.search as lldsearch
from pylinkjl.cli import COMMANDS
from pylinkjl.cli.doctor import doctor

from .realdata import REAL
from .toolnames import LLD, LLVM_FOLDER

REAL_LLD = Path("/usr/lib", LLVM_FOLDER, "bin", "lld")
REAL_ELF = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Preferences/pWSk8_LJMjr.so"


def fake_lld(path: Path, version_line: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "{version_line}"\n')
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """PATH = one empty folder of ours, no LLVM folders, no PYLINKJL_LLD."""
    def nothing() -> Iterator[Path]:
        return iter(())
    monkeypatch.setattr(lldsearch, "_llvm_folder_candidates", nothing)
    monkeypatch.delenv("PYLINKJL_LLD", raising=False)
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path / "bin"


def test_doctor_report_is_a_library_call(isolated: Path) -> None:
    from pylinkjl.link.doctor import doctor_report, render_doctor
    from pylinkjl.target import parse_target

    fake_lld(isolated / "ld.lld", "LLD 19.1.7 (compatible with GNU linkers)")
    report = doctor_report(target=parse_target("linux-x86_64"), lld=None, julia_home=None,
                           environ={"PATH": str(isolated)})
    assert report["flavor"] == "gnu" and report["lld"]["selected"]["path"] == str(isolated / "ld.lld")
    assert report["lld"]["selected"]["argv_prefix"] == [str(isolated / "ld.lld")]
    assert f"=> 1. {isolated}/ld.lld  [PATH, ld.lld]  LLD 19.1.7" in render_doctor(report)


def test_no_usable_lld_for_macos(isolated: Path) -> None:
    fake_lld(isolated / "lld", "LLD 13.0.1")
    fake_lld(isolated / "ld.lld", "LLD 19.1.7 (compatible with GNU linkers)")
    result = CliRunner().invoke(doctor, ["--target", "macos-arm64"])
    assert result.exit_code == 4, result.output
    out = result.output
    assert "LLD candidates, in search order (-flavor darwin):" in out
    assert f"1. {isolated}/lld  [PATH, generic]  LLD 13.0.1" in out
    assert "problem: LLD 13.0.1 is older than 14" in out
    assert f"2. {isolated}/ld.lld  [PATH, ld.lld]  LLD 19.1.7" in out
    assert "Would use: nothing: no usable LLD for -flavor darwin" in out
    assert "no Julia tree for macos-aarch64: stub libraries will be generated" in out
    assert "no usable LLD for macos-aarch64: it needs a generic lld or ld64.lld" in out


@pytest.mark.skipif(not REAL_LLD.is_file(), reason=f"needs Debian {LLD}")
def test_json_with_real_lld_and_tree(isolated: Path, tmp_path: Path) -> None:
    lld = tmp_path / "tools/lld"
    lld.parent.mkdir()
    lld.symlink_to(REAL_LLD)
    home = tmp_path / "julia"
    (home / "include/julia").mkdir(parents=True)
    (home / "include/julia/julia_version.h").write_text('#define JULIA_VERSION_STRING "1.10.4"\n')
    (home / "lib").mkdir()
    (home / "lib/libjulia.so.1.10.4").symlink_to(REAL_ELF)
    result = CliRunner().invoke(doctor, ["--lld", str(lld), "--julia-home", str(home), "--target", "linux-x86_64",
                                         "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    selected = report["lld"]["selected"]
    assert selected["source"] == "explicit" and selected["version"].startswith("19.")
    assert selected["argv_prefix"] == [str(lld), "-flavor", "gnu"]
    assert report["julia"] == [{"home": str(home), "version": "1.10.4", "version_source": "include/julia/julia_version.h",
                                "os": "linux", "arch": "x86_64",
                                "debug": False, "source": "--julia-home"}]
    assert report["target"] == {"name": "linux-x86_64", "triple": "x86_64-linux-gnu", "notes": []}


def test_unusable_explicit_lld(isolated: Path, tmp_path: Path) -> None:
    fake_lld(isolated / "lld", "LLD 19.1.7")
    result = CliRunner().invoke(doctor, ["--lld", str(tmp_path / "missing")])
    assert result.exit_code == 4
    assert f"Would use: nothing: --lld {tmp_path}/missing cannot be used: does not exist" in result.output


def test_bad_inputs_exit_codes(isolated: Path, tmp_path: Path) -> None:
    assert CliRunner().invoke(doctor, ["--julia-home", str(tmp_path)]).exit_code == 3
    bad_target = CliRunner().invoke(doctor, ["--target", "sparc-sunos"])
    assert bad_target.exit_code == 2 and "unknown target" in bad_target.output


def test_doctor_as_a_process(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    lld = fake_lld(bin_dir / "lld", "LLD 19.1.7")
    env = {**os.environ, "PATH": str(bin_dir)}
    env.pop("PYLINKJL_LLD", None)
    if "doctor" in COMMANDS:
        argv = [sys.executable, "-m", "pylinkjl", "doctor", "--json"]
    else:  # not registered yet: run the command object itself
        argv = [sys.executable, "-c", "from pylinkjl.cli.doctor import doctor; doctor(prog_name='pylinkjl doctor')",
                "--json"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["lld"]["selected"]["path"] == str(lld)
    assert report["lld"]["candidates"][0] == {"source": "PATH", "path": str(lld), "kind": "generic",
                                              "version": "19.1.7", "usable": True, "problem": None, "env": {}}
