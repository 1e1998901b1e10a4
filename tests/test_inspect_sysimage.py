"""``inspect`` on system images: the kind, the @ccallable entry points, the CPU target string stored in the image
(1.13+), its targets with feature names and clone counts, and whether Julia would start on a given CPU, worded as
Julia words it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.caches.inspection import inspect_image
from pylinkjl.caches.verdict import Session
from pylinkjl.cli import main as cli
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from .realruntime import require_runtime
from .toolnames import LLD

REAL = {"manylinux_2_28_x86_64": "haswell", "manylinux_2_28_aarch64": "neoverse-v1", "macosx_11_0_arm64": "apple-m1",
        "win_amd64": "znver3"}


@pytest.mark.parametrize("platform", sorted(REAL))
def test_real_juliac_library(platform: str) -> None:
    image = Path(require_runtime(platform)["image"])
    r = inspect_image(image, Session(cpu=REAL[platform]))
    assert r["image_kind"] == "juliac-library"
    assert r["entry_points"] == ["etc_abi_version", "etc_couple", "etc_max_order"]
    assert r["cpu_target_string"] == "generic" and [t["name"] for t in r["targets"]] == ["generic"]
    assert r["targets"][0]["clones"] == r["nfuncs"]
    assert r["starts"] == {"ok": True, "target": 0, "target_name": "generic", "message": "starts on target 0 (generic)"}


@pytest.fixture(scope="module")
def avx2_sysimage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(LLD) is None and shutil.which("lld") is None:
        pytest.skip("needs LLD (.ci/install installs it; under PYLINKJL_NO_SKIP=1 this skip fails)")
    root = tmp_path_factory.mktemp("inspect-sysimage")
    spec = FixtureSpec(parse_target("linux-x86_64"), layout="1.13", julia_version="1.13.0", kind="sysimage",
                       cpu_targets=("haswell", "skylake-avx512,clone_all"))
    archive = generate_archive(spec, root / "sys.a")
    out = root / "sys.so"
    link_image(archive, out, target="linux-x86_64", julia_version="release-1.13", kind="sysimage")
    return out


def test_generated_sysimage_starts_on_the_best_target(avx2_sysimage: Path) -> None:
    r = inspect_image(avx2_sysimage, Session(cpu="znver4"))
    assert r["image_kind"] in ("system-image", "juliac-library")
    assert r["cpu_target_string"] == "haswell;skylake-avx512,clone_all"
    names = [t["name"] for t in r["targets"]]
    assert names == ["haswell", "skylake-avx512"] and "avx2" in r["targets"][0]["enabled"]
    assert r["starts"]["ok"] is True and r["starts"]["target_name"] == "skylake-avx512"


def test_generated_sysimage_refused_in_julias_words(avx2_sysimage: Path) -> None:
    r = inspect_image(avx2_sysimage, Session(cpu="sandybridge"))
    assert r["starts"]["ok"] is False
    assert r["starts"]["message"].splitlines() == [
        "Unable to find compatible target in cached code image.",
        "Target 0 (haswell): Rejecting this target due to use of runtime-disabled features",
        "Target 1 (skylake-avx512): Rejecting this target due to use of runtime-disabled features",
    ]


def test_cli_inspect_sysimage(avx2_sysimage: Path) -> None:
    res = CliRunner().invoke(cli, ["inspect", str(avx2_sysimage), "--cpu", "sandybridge", "--check"])
    assert res.exit_code == 1, res.output
    assert "DOES NOT START" in res.output and "Unable to find compatible target in cached code image." in res.output
    assert "cpu target 'haswell;skylake-avx512,clone_all'" in res.output
    res = CliRunner().invoke(cli, ["inspect", str(avx2_sysimage), "--cpu", "znver4", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["starts"]["ok"] is True and data["entry_points"] == ["pkg_answer", "pkg_call_runtime"]
