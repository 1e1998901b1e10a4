"""Overhead budget: ``pylinkjl link`` never imports LIEF (or other heavy readers). Checked on the import
log of real commands (``python -X importtime``) and on ``sys.modules`` after importing the link path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pylinkjl.target import parse_target

from .test_batch import make_archive
from .toolnames import CLANG, LLD, LLVM_AR

HEAVY = ("lief", "pylinkjl.binfmt.lief", "pylinkjl.images.verify")
# What a warm link (stub libraries cached, no julia on PATH) has no use for: the stub builder's and the
# cache tools' standard modules, the full symbol reader (an archive's symbol table serves), Julia-tree
# reading, the failure advice and the .ji resealer.
NOT_ON_A_WARM_LINK = ("shutil", "tempfile", "zlib", "bz2", "lzma", "pylinkjl.binfmt.symbols",
                      "pylinkjl.link.juliatree", "pylinkjl.link.advice", "pylinkjl.caches.reseal")
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


# ``pylinkjl ARGS`` as the console script runs it, writing sys.modules to a file at exit: the import log
# misses modules imported through importlib.import_module (the CLI's lazy commands), sys.modules does not.
_RUN_CLI = """
import atexit, sys
dump = sys.argv[1]
atexit.register(lambda: open(dump, "w").write("\\n".join(sys.modules)))
sys.argv = ["pylinkjl", *sys.argv[2:]]
from pylinkjl.cli import main
main()
"""


def imported_modules(args: list[str], env: dict[str, str], tmp_path: Path
                     ) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime`` on ``pylinkjl ARGS``: every module its import log or sys.modules names."""
    dump = tmp_path / "modules.txt"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _RUN_CLI, str(dump), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    logged = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pylinkjl.cli" in logged and "pylinkjl.link.plan" in logged, done.stderr[-2000:]  # the log is complete
    return done, logged | set(dump.read_text().split())


def heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.split(".")[0] == "lief" or n in HEAVY
                  or n.startswith("pylinkjl.binfmt.lief."))


def test_link_help_imports_no_lief(tmp_path: Path) -> None:
    done, names = imported_modules(["link", "--help"], ENV, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pylinkjl.cli.link" in names
    assert heavy(names) == []


@pytest.mark.skipif(any(shutil.which(t) is None for t in (LLD, CLANG, LLVM_AR)),
                    reason="needs lld-19, clang-19, llvm-ar-19")
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-link"])
def test_a_real_link_imports_no_lief(tmp_path: Path, dry_run: bool) -> None:
    archive = make_archive(tmp_path, parse_target("linux-x86_64"), "pkg")
    env = {**ENV, "PYLINKJL_CACHE_DIR": str(tmp_path / "cache")}
    out = tmp_path / "pkg.so"
    done, names = imported_modules(["link", str(archive), "-o", str(out), "--target", "linux-x86_64",
                                    *(["--dry-run"] if dry_run else [])], env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {"pylinkjl.link.plan", "pylinkjl.link.inputs"} <= names  # the link path really ran
    assert out.is_file() != dry_run
    assert heavy(names) == []


def test_importing_the_link_path_imports_no_lief() -> None:
    code = ("import sys, pylinkjl.cli.link, pylinkjl.link.api, pylinkjl.link.run\n"
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] == 'lief' "
            f"or m in {HEAVY!r} or m.startswith('pylinkjl.binfmt.lief.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


@pytest.mark.skipif(any(shutil.which(t) is None for t in (LLD, CLANG, LLVM_AR)),
                    reason="needs lld-19, clang-19, llvm-ar-19")
def test_a_warm_link_imports_only_what_it_uses(tmp_path: Path) -> None:
    archive = make_archive(tmp_path, parse_target("linux-x86_64"), "pkg")
    lld_dir = str(Path(shutil.which(LLD) or LLD).parent)
    env = {**ENV, "PYLINKJL_CACHE_DIR": str(tmp_path / "cache"), "PATH": lld_dir}  # no julia, as in CI
    argv = ["link", str(archive), "-o", str(tmp_path / "pkg.so"), "--target", "linux-x86_64"]
    first, _ = imported_modules(argv, env, tmp_path)  # builds the stub libraries
    assert first.returncode == 0, first.stderr[-3000:]
    done, names = imported_modules(argv, env, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pylinkjl.link.run" in names  # the link ran
    assert sorted(names & set(NOT_ON_A_WARM_LINK)) == []
