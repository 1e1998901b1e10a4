"""Bad option values are usage errors (rc 2) before anything runs: unknown Julia versions beyond the known
lines, an empty --target, unsplittable --julia-flags, an output spelled as a folder or empty. And --json
stays valid Unicode for paths that are not UTF-8 (each undecodable byte becomes U+FFFD)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pylinkjl.errors import TargetError
from pylinkjl.link.api import link_request
from pylinkjl.link.toolchain import resolve_line

from .realdata import REAL

ARCHIVE = Path(__file__).parent / "data" / "archives" / "mv-1.11-linux-x86_64.a"
REAL_JI = REAL / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.ji"


def cli(*args: str | bytes | Path) -> subprocess.CompletedProcess[bytes]:
    argv: list[str | bytes] = [sys.executable, "-m", "pylinkjl",
                               *(a if isinstance(a, bytes) else str(a) for a in args)]
    return subprocess.run(argv, capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("version", ["9.9", "2.0", "1.15", "1.15.0-DEV", "2"])
def test_julia_version_beyond_the_known_lines(version: str, tmp_path: Path) -> None:
    with pytest.raises(TargetError):
        resolve_line(version)
    done = cli("link", ARCHIVE, "-o", tmp_path / "x.so", "--target", "linux-x86_64", "--julia-version", version,
               "--dry-run")
    assert done.returncode == 2, done.stderr
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("version", ["1.14", "1.14.0-DEV", "master", "1.13.1", "1.10.2"])
def test_known_versions_still_resolve(version: str) -> None:
    resolve_line(version)


@pytest.mark.parametrize("command", [["link", ARCHIVE, "-o", "x.so", "--dry-run"], ["verify", REAL_JI], ["doctor"]],
                         ids=["link", "verify", "doctor"])
def test_empty_target_is_a_usage_error(command: list[str | Path], tmp_path: Path) -> None:
    done = cli(*command, "--target", "")
    assert done.returncode == 2 and b"unknown target ''" in done.stderr, done.stderr


@pytest.mark.parametrize("command", ["inspect", "depot"])
def test_unsplittable_julia_flags(command: str, tmp_path: Path) -> None:
    done = cli(command, REAL_JI if command == "inspect" else tmp_path, "--julia-flags", '"unterminated')
    assert done.returncode == 2 and b"--julia-flags" in done.stderr and b"internal error" not in done.stderr, \
        done.stderr


@pytest.mark.parametrize("output", ["out/", "", "deeper/out/"])
def test_output_spelled_as_a_folder_or_empty(output: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pylinkjl", "link", str(ARCHIVE), "-o", output, "--target",
                           "linux-x86_64"], capture_output=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TargetError):
        link_request(ARCHIVE, output)


def test_json_with_a_non_utf8_path_is_valid_unicode(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/bad\xff.ji"
    shutil.copy(REAL_JI, name)
    for args, rc in (([b"inspect", b"--json", name], 0), ([b"inspect", b"--json", name + b".missing"], 3)):
        done = cli(*args)
        assert done.returncode == rc, done.stderr
        text = done.stdout.decode("utf-8")  # strict: valid UTF-8
        data = json.loads(text)
        path = data["path"] if rc == 0 else data["error"]["path"]
        assert path.endswith("/bad\ufffd.ji" + ("" if rc == 0 else ".missing"))
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text + json.dumps(data, ensure_ascii=False))


def test_closed_stdout_is_quiet() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pylinkjl", "cpu-target", "--recommend", "x86_64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 1) and err == b"", err  # click's own EPIPE handling, not a named error


@pytest.mark.parametrize("kind", ["json", "tsv"])
def test_manifest_output_spelled_as_a_folder(kind: str, tmp_path: Path) -> None:
    from pylinkjl.batch.manifest import read_manifest
    from pylinkjl.errors import InputError

    manifest = tmp_path / f"jobs.{kind}"
    manifest.write_text(json.dumps([{"input": str(ARCHIVE), "output": "out/"}]) if kind == "json"
                        else f"{ARCHIVE}\tout/\n")
    with pytest.raises(InputError, match="ends with a path separator"):
        read_manifest(manifest)
    done = cli("relink", "--manifest", manifest, "--target", "linux-x86_64")
    assert done.returncode == 3 and list(tmp_path.iterdir()) == [manifest], done.stderr
