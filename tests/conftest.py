from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pylinkjl.process import run_process
from pylinkjl.target import ALL_TARGETS, Target

from . import toolnames

CLANG = shutil.which(toolnames.CLANG)
LLVM_AR = shutil.which(toolnames.LLVM_AR)

# A small package-like object: exported code and data, calls into libjulia-internal, data from libjulia
# (dllimport on Windows, as Julia >= 1.10.4 emits it). No _DllMainCRTStartup: pylinkjl injects its stub.
PKG_C = r"""
#ifdef _WIN32
#define IMPORT __declspec(dllimport)
#define EXPORT __declspec(dllexport)
#else
#define IMPORT
#define EXPORT
#endif
extern int ijl_apply_generic(int);
IMPORT extern void *jl_nothing;
EXPORT int jl_image_data[4] = {1, 2, 3, 4};
EXPORT int pkg_answer(void) { return 42; }
EXPORT int pkg_entry(int x) { return ijl_apply_generic(x) + jl_image_data[1]; }
EXPORT void *pkg_getptr(void) { return jl_nothing; }
"""


@pytest.fixture(scope="session")
def clang_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[Target, Path]:
    """``pkg.a`` (one member, pkg.o) for every target, built with clang-19 (skips without it)."""
    if not (CLANG and LLVM_AR):
        pytest.skip("needs clang-19 and llvm-ar-19")
    d = tmp_path_factory.mktemp("clangobjs")
    (d / "pkg.c").write_text(PKG_C)
    out: dict[Target, Path] = {}
    for t in ALL_TARGETS:
        obj = d / f"{t.name}.o"
        done = run_process([CLANG, f"--target={t.llvm_triple}", "-c", "-O2", "-fPIC", "-ffreestanding",
                            str(d / "pkg.c"), "-o", str(obj)])
        assert done.returncode == 0, done.output
        archive = d / f"{t.name}.a"
        fmt = ["--format=darwin"] if t.os == "macos" else []
        done = run_process([LLVM_AR, *fmt, "rcs", str(archive), str(obj)])
        assert done.returncode == 0, done.output
        out[t] = archive
    return out


@pytest.fixture(autouse=True)
def stub_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A per-session stub-library cache, so tests never touch ~/.cache."""
    root = tmp_path_factory.getbasetemp() / "stub-cache"
    monkeypatch.setenv("PYLINKJL_CACHE_DIR", str(root))
    return root


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With PYLINKJL_NO_SKIP=1 (set by .ci/run, whose .ci/install provides every tool and data set the
    tests use) a skipped test is a failure: a green CI means every test ran."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and os.environ.get("PYLINKJL_NO_SKIP") == "1":
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped under PYLINKJL_NO_SKIP=1 (CI provides everything): {reason}"
