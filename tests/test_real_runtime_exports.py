"""Generated archives must only reference runtime symbols the real runtime of their line exports: the
1.13 layout against the real Julia 1.13.1 libjulia / libjulia-internal (tests/realruntime.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fixturegen.catalog import committed_specs
from fixturegen.plan import build_plan

from .realruntime import require_runtime
from .toolnames import LLVM_NM, LLVM_READOBJ

REPO = Path(__file__).resolve().parents[1]
PLATFORMS = {"linux-x86_64": "manylinux_2_28_x86_64", "linux-aarch64": "manylinux_2_28_aarch64",
             "windows-x86_64": "win_amd64"}


def _exports(lib: str) -> set[str]:
    if lib.endswith(".dll"):
        out = subprocess.run([LLVM_READOBJ, "--coff-exports", lib], check=True, capture_output=True, text=True)
        return {line.split(":", 1)[1].strip() for line in out.stdout.splitlines() if line.strip().startswith("Name:")}
    out = subprocess.run([LLVM_NM, "-D", "--defined-only", "--format=just-symbols", lib], check=True,
                         capture_output=True, text=True)
    return {name.split("@")[0] for name in out.stdout.split()}


@pytest.mark.parametrize("target", list(PLATFORMS))
def test_generated_1_13_archives_use_only_real_1_13_exports(target: str) -> None:
    runtime = require_runtime(PLATFORMS[target])
    provided = {"libjulia": _exports(runtime["libjulia"]), "libjulia-internal": _exports(runtime["libjulia_internal"])}
    assert "ijl_apply_generic" in provided["libjulia-internal"] and "jl_nothing" in provided["libjulia"]
    assert "jl_f__call_latest" not in provided["libjulia-internal"]  # renamed jl_f_invokelatest in 1.13
    specs = [(rel, s) for rel, s in committed_specs().items() if s.layout == "1.13" and s.target.name == target]
    assert len(specs) == 2  # the plain and the multi-versioned archive
    for rel, spec in specs:
        plan = build_plan(spec)
        wanted = {**plan.undefined_functions(), **plan.undefined_data()}
        missing = sorted(name for name, lib in wanted.items() if lib in provided and name not in provided[lib])
        assert missing == [], f"{rel} references symbols the real Julia 1.13.1 runtime does not export: {missing}"


def test_the_check_can_fail() -> None:
    """The 1.11 layout's jl_f__call_latest is not in the 1.13.1 runtime: the same comparison finds it."""
    runtime = require_runtime("manylinux_2_28_x86_64")
    internal = _exports(runtime["libjulia_internal"])
    spec = committed_specs()["tests/data/archives/mv-1.11-linux-x86_64.a"]
    assert "jl_f__call_latest" in build_plan(spec).undefined_functions()
    assert "jl_f__call_latest" not in internal
