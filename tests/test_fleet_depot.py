"""A fleet of CPUs: --cpu lists (checked before any scan), the depot matrix over real caches, inspect per CPU,
and --sysimage (package images judged against the JIT target a system image leaves, julia-linking.md §4.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.caches.depot import scan_depot
from pylinkjl.caches.verdict import Session
from pylinkjl.cli.depot import depot_command
from pylinkjl.cli.inspect import inspect_command
from pylinkjl.cpu import features as F
from pylinkjl.cpu.cpulist import arch_of_cpu, parse_cpu_list, split_cpus
from pylinkjl.cpu.cpuparse import parse_cpu_target, target_data, to_record
from pylinkjl.cpu.host import named_cpu
from pylinkjl.cpu.match import CX16_ERROR, jit_target, match_sysimage, match_targets
from pylinkjl.cpu.sysimage import read_sysimage
from pylinkjl.cpu.tables import load
from pylinkjl.errors import InputError, TargetError
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from . import realdata, realruntime

REAL = realdata.require_real()
V19 = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9"
GLOB = REAL / "kanji709__SimGBS.jl" / "linux-x86_64" / "compiled" / "v1.10" / "Glob"  # 1.10.10, target znver3
BASE64 = REAL / "jmcguigan10__Dodo" / "darwin-arm64" / "compiled" / "v1.12" / "Base64"  # 1.12.2, apple-m2
FLEET = "haswell,znver3,skylake-avx512,neoverse-v1,apple-m2"


@pytest.fixture
def depot(tmp_path: Path) -> Path:
    """A depot laid out as Julia lays it out, from real caches of three Julia versions and two architectures."""
    root = tmp_path / "depot" / "compiled"
    shutil.copytree(V19 / "Adapt", root / "v1.9" / "Adapt")
    shutil.copytree(V19 / "Parsers", root / "v1.9" / "Parsers")  # .ji whose image is missing
    shutil.copytree(GLOB, root / "v1.10" / "Glob")
    shutil.copytree(BASE64, root / "v1.12" / "Base64")
    return tmp_path / "depot"


def _cells(report_rows: list[dict], package: str) -> dict[str, dict]:
    row = next(r for r in report_rows if r["package"] == package)
    return {c["cpu"]: c for c in row["cells"]}


# -- the list itself ----------------------------------------------------------------------------

def test_cpu_list_is_split_checked_and_keeps_order() -> None:
    assert split_cpus(" haswell, znver3,,haswell ") == ["haswell", "znver3"]
    assert parse_cpu_list(FLEET) == FLEET.split(",")
    assert [arch_of_cpu(n) for n in ("haswell", "x86-64-v3", "neoverse-v1", "graviton3", "m2", "native")] == [
        "x86_64", "x86_64", "aarch64", "aarch64", "aarch64", "native"]
    with pytest.raises(TargetError, match="unknown CPU 'nosuchcpu'"):
        parse_cpu_list("haswell,nosuchcpu")
    with pytest.raises(TargetError, match="no CPU name"):
        parse_cpu_list(" , ")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(load("1.13", "x86_64").cpus) + sorted(load("1.13", "aarch64").cpus)),
                min_size=1, max_size=6))
def test_every_table_cpu_is_accepted_in_any_list(names: list[str]) -> None:
    assert parse_cpu_list(" , ".join(names)) == list(dict.fromkeys(names))


def test_bad_cpu_fails_fast_before_any_scan(depot: Path) -> None:
    """`depot --cpu nosuchcpu` used to print one error per file and exit 0."""
    (depot / "compiled" / "v1.9" / "Broken").mkdir()
    (depot / "compiled" / "v1.9" / "Broken" / "x.ji").write_bytes(b"not a cache")
    for args in (["--cpu", "nosuchcpu"], ["--cpu", "haswell,nosuchcpu"], ["--cpu", "nosuchcpu", "--json"]):
        res = CliRunner().invoke(depot_command, [str(depot), *args])
        assert res.exit_code == 2, res.output
        assert "unknown CPU 'nosuchcpu'" in res.output
        assert "Broken" not in res.output and "Adapt" not in res.output
    res = CliRunner().invoke(inspect_command, [str(V19 / "Adapt" / "rUIgN_LJMjr.ji"), "--cpu", "zen9"])
    assert res.exit_code == 2 and "unknown CPU 'zen9'" in res.output


# -- the matrix ---------------------------------------------------------------------------------

def test_depot_matrix_of_real_caches(depot: Path) -> None:
    report = scan_depot([depot], Session(), cpus=FLEET.split(","))
    data = report.to_dict()
    assert data["cpus"] == FLEET.split(",")
    rows = data["caches"]
    assert all(len(r["cells"]) == 5 and [c["cpu"] for c in r["cells"]] == FLEET.split(",") for r in rows)
    adapt = _cells(rows, "Adapt")  # 1.9.0 native image of a Broadwell-class machine (aes, adx, prfchw)
    assert adapt["haswell"]["loads"] is False and adapt["haswell"]["lacks"] == ["aes", "adx", "prfchw"]
    assert adapt["haswell"]["short"] == "rejected: lacks aes,adx,prfchw"
    assert adapt["skylake-avx512"]["loads"] is True and adapt["skylake-avx512"]["target"] == "broadwell"
    assert adapt["neoverse-v1"]["applies"] is False and adapt["neoverse-v1"]["loads"] is None
    parsers = _cells(rows, "Parsers")  # its image is missing: rejected on every x86 CPU that passes the CPU check
    assert parsers["znver3"]["rejected_by"] == "missing ocachefile"
    glob = _cells(rows, "Glob")  # 1.10.10 znver3 image; Julia 1.9.2+ took xsaves out of its znver3 table
    assert glob["znver3"]["lacks"] == ["xsaves"]
    base64 = _cells(rows, "Base64")  # 1.12.2 apple-m2 image
    assert base64["apple-m2"]["loads"] is True and base64["haswell"]["applies"] is False
    assert base64["neoverse-v1"]["loads"] is False
    summary = {f["cpu"]: f for f in data["fleet"]}
    assert summary["skylake-avx512"]["loads"] == 1 and summary["neoverse-v1"]["not_applicable"] == 3
    assert sum(summary["haswell"][k] for k in ("loads", "rejected", "not_applicable", "unknown")) == len(rows)


def test_matrix_scan_reports_progress_once_per_cache(depot: Path) -> None:
    planned: list[int] = []
    done: list[int] = []
    report = scan_depot([depot], Session(), cpus=["haswell", "neoverse-v1"], on_plan=planned.append,
                        progress=done.append)
    assert planned == [len(report.rows)] == [4] and sum(done) == 4


def test_depot_matrix_cli_text_and_json(depot: Path) -> None:
    res = CliRunner().invoke(depot_command, [str(depot), "--cpu", FLEET])
    assert res.exit_code == 0, res.output
    header = res.output.splitlines()[0].split()
    assert header == ["package", "julia", "targets", *FLEET.split(",")]
    assert "rejected: lacks aes,adx,prfchw" in res.output and "n/a (other arch)" in res.output
    assert "skylake-avx512: 1 load" in res.output
    res = CliRunner().invoke(depot_command, [str(depot), "--cpu", FLEET, "--json"])
    data = json.loads(res.output)
    assert set(data) >= {"cpus", "fleet", "caches", "summary"}
    one = CliRunner().invoke(depot_command, [str(depot), "--cpu", "haswell", "--json"])
    assert "cells" not in json.loads(one.output)["caches"][0]  # one CPU: the listing of before


def test_inspect_lists_each_cpu() -> None:
    res = CliRunner().invoke(inspect_command, [str(GLOB / "3FzEV_ujJ6A.ji"), "--cpu", "znver3,znver4,haswell,neoverse-n1"])
    assert res.exit_code == 0, res.output
    fleet = res.output.split("  fleet\n")[1].splitlines()
    assert fleet[0].split() == ["znver3", "rejected:", "lacks", "xsaves"]
    assert fleet[3].split()[1:] == ["n/a", "(other", "arch)"]
    res = CliRunner().invoke(inspect_command, [str(GLOB / "3FzEV_ujJ6A.ji"), "--cpu", "znver3,haswell", "--json"])
    assert [c["cpu"] for c in json.loads(res.output)["fleet"]] == ["znver3", "haswell"]
    res = CliRunner().invoke(inspect_command, [str(GLOB / "3FzEV_ujJ6A.ji"), "--cpu", "znver3,haswell", "--check"])
    assert res.exit_code == 1


# -- the system image ---------------------------------------------------------------------------

def _records(text: str, version: str, *, vec_call: tuple[int, ...] = ()) -> list:
    t = load(version, "x86_64")
    specs = parse_cpu_target(text, t)
    return [to_record(target_data(s, t), t, vec_call=s.index in vec_call) for s in specs]


def test_sysimage_vec_call_narrows_only_the_enabled_set() -> None:
    """processor_x86.cpp: a chosen sysimage target with VEC_CALL and a narrower vector clears AVX-512 from the
    JIT target's en; dis is not recomputed, so an AVX-512 package image still loads (1.9 - 1.13)."""
    t = load("1.11", "x86_64")
    host = named_cpu("skylake-avx512", t)
    jit = jit_target(host.name, host.features, t)
    sm = match_sysimage(_records("generic;haswell", "1.11", vec_call=(1,)), jit, t)
    assert sm.starts and sm.result.best == 1
    assert "avx512f" in sm.narrowed and not F.has(sm.jit.en, "avx512f", t) and sm.jit.dis == jit.dis
    assert match_targets(_records("skylake-avx512", "1.11"), sm.jit, t).best == 0
    plain = match_sysimage(_records("generic;haswell", "1.11"), jit, t)  # no VEC_CALL: nothing narrowed
    assert plain.narrowed == [] and plain.jit.en == jit.en


def test_sysimage_cx16_rule() -> None:
    t = load("1.10", "x86_64")
    host = named_cpu("haswell", t)
    jit = jit_target(host.name, host.features, t, cpu_target="generic,-cx16")
    assert match_sysimage(_records("generic;haswell", "1.10"), jit, t).error == CX16_ERROR
    assert match_sysimage(_records("generic,-cx16", "1.10"), jit, t).starts  # an image that allows no cx16


@pytest.fixture(scope="module")
def sysimage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Julia 1.10 system image with the targets 'haswell;skylake-avx512' (fixturegen + LLD, --kind sysimage)."""
    root = tmp_path_factory.mktemp("sysimage")
    spec = FixtureSpec(parse_target("linux-x86_64"), layout="1.10", cpu_targets=("haswell", "skylake-avx512"),
                       julia_version="1.10.10", kind="sysimage")
    archive = generate_archive(spec, root / "sys-o.a")
    link_image(archive, root / "sys.so", target="linux-x86_64", julia_version="1.10.10", kind="sysimage")
    return root / "sys.so"


def test_sysimage_targets_are_read(sysimage: Path) -> None:
    image = read_sysimage(sysimage)
    assert image.arch == "x86_64" and image.layout == "1.10"
    assert [r.name for r in image.targets] == ["haswell", "skylake-avx512"]


def test_depot_with_sysimage(depot: Path, sysimage: Path) -> None:
    res = CliRunner().invoke(depot_command, [str(depot), "--sysimage", str(sysimage),
                                             "--cpu", "sandybridge,znver3,skylake-avx512", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["sysimage"]["targets"] == ["haswell", "skylake-avx512"]
    glob = _cells(data["caches"], "Glob")
    assert glob["sandybridge"]["rejected_by"] == "system image"  # no AVX2: Julia does not start at all
    assert glob["sandybridge"]["short"] == "rejected: julia does not start"
    assert "Unable to find compatible target" in glob["sandybridge"]["reason"]
    assert glob["znver3"]["sysimage_target"] == "haswell" and glob["znver3"]["lacks"] == ["xsaves"]
    assert glob["skylake-avx512"]["sysimage_target"] == "skylake-avx512"
    adapt = _cells(data["caches"], "Adapt")  # a Julia 1.9 cache cannot belong to a Julia 1.10 system image
    assert adapt["skylake-avx512"]["short"] == "rejected: sysimage of another Julia"
    res = CliRunner().invoke(depot_command, [str(depot), "--sysimage", str(sysimage), "--cpu", "znver3",
                                             "-C", "generic,-cx16"])
    assert "rejected: julia does not start" in res.output
    res = CliRunner().invoke(depot_command, [str(depot), "--sysimage", str(depot / "nothing.so")])
    assert res.exit_code == 3


# -- the real juliac 1.13.1 libraries as system images ------------------------------------------

PLATFORMS = {"manylinux_2_28_x86_64": "x86_64", "manylinux_2_28_aarch64": "aarch64", "macosx_11_0_arm64": "aarch64",
             "win_amd64": "x86_64"}


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_real_juliac_image_targets(platform: str) -> None:
    """Real juliac 1.13.1 libraries (PyPI's ace-jax-coupling wheels) store one `generic` target and the
    string "generic": Julia starts on every CPU of their architecture that has cx16 (x86_64)."""
    image = read_sysimage(realruntime.require_runtime(platform)["image"])
    assert image.arch == PLATFORMS[platform] and image.layout == "1.13"
    assert [r.name for r in image.targets] == ["generic"] and image.cpu_target_string == "generic"
    t = load("1.13.1", image.arch)
    assert F.names(image.targets[0].en, t) == (["cx16"] if image.arch == "x86_64" else [])


@pytest.fixture(scope="module")
def pkgimage_113(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pkg113")
    spec = FixtureSpec(parse_target("linux-x86_64"), layout="1.13", cpu_targets=("generic", "haswell"),
                       julia_version="1.13.1")
    archive = generate_archive(spec, root / "p.a")
    link_image(archive, root / "p.so", target="linux-x86_64", julia_version="1.13.1")
    return root / "p.so"


def test_inspect_with_a_real_juliac_sysimage(pkgimage_113: Path) -> None:
    x86 = realruntime.require_runtime("manylinux_2_28_x86_64")["image"]
    arm = realruntime.require_runtime("manylinux_2_28_aarch64")["image"]
    res = CliRunner().invoke(inspect_command, [str(pkgimage_113), "--sysimage", x86, "--cpu",
                                               "haswell,sandybridge,neoverse-v1", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["cpu"]["sysimage"]["chosen_name"] == "generic" and data["cpu"]["chosen_name"] == "haswell"
    cells = {c["cpu"]: c for c in data["fleet"]}
    assert cells["haswell"]["target"] == "haswell" and cells["sandybridge"]["target"] == "generic"
    assert cells["haswell"]["sysimage_target"] == "generic" and cells["neoverse-v1"]["applies"] is False
    res = CliRunner().invoke(inspect_command, [str(pkgimage_113), "--sysimage", x86, "--cpu", "haswell",
                                               "-C", "generic,-cx16"])
    assert "Your CPU does not support the CX16 instruction" in res.output
    res = CliRunner().invoke(inspect_command, [str(pkgimage_113), "--sysimage", arm, "--cpu", "haswell", "--check"])
    assert res.exit_code == 1 and "the system image is aarch64, the cache x86_64" in res.output


def test_session_dash_c_sysimage_expands_to_the_system_images_string(pkgimage_113: Path) -> None:
    """1.13: `-C sysimage` is the string stored in the system image ("generic" for these juliac libraries), so
    the JIT target is generic and the package image's haswell target is out of reach."""
    x86 = realruntime.require_runtime("manylinux_2_28_x86_64")["image"]
    res = CliRunner().invoke(inspect_command, [str(pkgimage_113), "--sysimage", x86, "--cpu", "haswell",
                                               "-C", "sysimage", "--json"])
    data = json.loads(res.output)
    assert data["cpu"]["session_target"]["name"] == "generic" and data["cpu"]["chosen_name"] == "generic"


def test_a_package_image_is_not_accepted_as_the_system_image(pkgimage_113: Path) -> None:
    with pytest.raises(InputError, match="is a package image, not a system image"):
        read_sysimage(pkgimage_113)
