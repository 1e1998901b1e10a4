"""inspect: reports on real caches and images, load verdicts against named CPUs, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pylinkjl.caches.flags import CacheFlags, flags_match, parse_session_flags
from pylinkjl.caches.inspection import inspect_image, inspect_ji, inspect_path
from pylinkjl.caches.verdict import Session
from pylinkjl.cli.cputarget import cputarget_command
from pylinkjl.cli.inspect import inspect_command
from pylinkjl.errors import TargetError

from . import realdata

REAL = realdata.require_real()
ADAPT = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9" / "Adapt" / "rUIgN_LJMjr.ji"
PREFS_O0 = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9" / "Preferences" / "pWSk8_0kJBY.ji"
PARSERS = REAL / "alexwjung__dot_julia" / "linux-x86_64" / "compiled" / "v1.9" / "Parsers" / "833b9_LJMjr.ji"
LOG112 = REAL / "cicero-violate__MMSB" / "linux-x86_64" / "compiled" / "v1.12" / "Logging"
PRINTF111 = REAL / "subhk__FeastKit.jl" / "darwin-x86_64" / "compiled" / "v1.11" / "Printf" / "3FQLY_GDH18.dylib"


def test_cache_flags_byte_and_rules() -> None:
    f = CacheFlags.from_byte(0xA3)
    assert f == CacheFlags() and f.to_byte() == 0xA3
    assert f.to_cli() == ["--pkgimages=yes", "-g1", "--check-bounds=auto", "--inline=yes", "-O2"]
    assert str(CacheFlags.from_byte(0xAB)) == "--pkgimages=yes -g1 --check-bounds=yes --inline=yes -O2"
    o3, _ = parse_session_flags("-O3 --check-bounds=yes")
    assert (o3.opt_level, o3.check_bounds) == (3, 1)
    assert parse_session_flags("--pkgimages=existing")[1]
    with pytest.raises(TargetError):
        parse_session_flags("--bogus")
    cached_o3 = CacheFlags(opt_level=3)
    assert flags_match(cached_o3, CacheFlags(), (1, 9, 0))[0]  # a higher -O in the cache is fine
    assert not flags_match(CacheFlags(opt_level=0), CacheFlags(), (1, 9, 0))[0]
    g2 = CacheFlags(debug_level=2)
    assert not flags_match(g2, CacheFlags(), (1, 10, 0))[0] and flags_match(g2, CacheFlags(), (1, 12, 0))[0]
    no = CacheFlags(use_pkgimages=0, opt_level=0)
    assert flags_match(no, CacheFlags(use_pkgimages=0), (1, 9, 0))[0]  # neither uses pkgimages
    assert flags_match(CacheFlags(), CacheFlags(use_pkgimages=0), (1, 11, 0), pkgimages_existing=True)[0]


def test_inspect_real_ji_loads_on_skylake_not_on_haswell() -> None:
    ok = inspect_ji(ADAPT, Session(cpu="skylake"))
    assert ok["verdict"]["loads"] is True and ok["cpu"]["chosen_name"] == "broadwell"
    assert ok["package"] == {"name": "Adapt", "uuid": "79e6a3ab-5dfb-504d-930d-738a2a938a0e"}
    assert ok["checksums"]["crc_so"]["ok"] and ok["checksums"]["crc_ji"]["ok"]
    assert ok["targets"][0]["enabled"][:3] == ["sse3", "pclmul", "ssse3"]
    bad = inspect_ji(ADAPT, Session(cpu="haswell"))
    assert bad["verdict"]["loads"] is False and bad["verdict"]["rejected_by"] == "target mismatch"
    assert bad["cpu"]["targets"][0]["missing"] == ["aes", "adx", "prfchw"]
    assert bad["cpu"]["targets"][0]["reason"] == "Rejecting this target due to use of runtime-disabled features"
    arm = inspect_ji(ADAPT, Session(cpu="neoverse-v1"))
    assert arm["verdict"]["loads"] is False and "aarch64" in arm["verdict"]["reason"]


def test_other_rejection_causes() -> None:
    assert inspect_ji(PREFS_O0, Session(cpu="skylake"))["verdict"]["rejected_by"] == "mismatched flags"
    o0 = Session(cpu="skylake", flags=CacheFlags(opt_level=0))
    assert inspect_ji(PREFS_O0, o0)["verdict"]["loads"] is True
    assert inspect_ji(PARSERS, Session(cpu="skylake"))["verdict"]["rejected_by"] == "missing ocachefile"
    assert inspect_ji(ADAPT, Session(cpu="skylake", flags=CacheFlags(use_pkgimages=0)))["verdict"]["rejected_by"] in (
        "mismatched flags", "requires pkgimages")
    other = inspect_ji(ADAPT, Session(cpu="skylake", julia_version="1.9.4"))
    assert other["verdict"]["rejected_by"] == "incompatible header" and "1.9.4" in other["verdict"]["reason"]
    # distro build against official build: same version and commit, different branch
    distro = inspect_ji(LOG112 / "PWFjL_xCOJd.ji", Session(cpu="skylake", julia_branch="v1.12.1"))
    assert distro["verdict"]["rejected_by"] == "incompatible header"


def test_checksum_mismatch_is_reported(tmp_path: Path) -> None:
    for ext in (".ji", ".so"):
        shutil.copy(ADAPT.with_suffix(ext), tmp_path / ("x" + ext))
    with open(tmp_path / "x.so", "ab") as f:
        f.write(b"\0")
    r = inspect_ji(tmp_path / "x.ji", Session(cpu="skylake"))
    assert r["verdict"]["rejected_by"] == "invalid checksum" and r["checksums"]["crc_so"]["ok"] is False
    data = bytearray((tmp_path / "x.ji").read_bytes())
    data[100] ^= 1
    (tmp_path / "x.ji").write_bytes(bytes(data))
    r = inspect_ji(tmp_path / "x.ji", Session(cpu="skylake"))
    assert r["checksums"]["crc_ji"]["ok"] is False


def test_this_machine_gets_a_verdict() -> None:
    r = inspect_ji(ADAPT)
    assert r["verdict"]["loads"] in (True, False, None)
    assert r["cpu"] is not None


def test_inspect_images() -> None:
    r = inspect_image(ADAPT.with_suffix(".so"), Session(cpu="skylake"))
    assert (r["line"], r["julia_version"], r["format"], r["arch"]) == ("1.9", "1.9.0", "elf", "x86_64")
    assert r["targets"][0]["name"] == "broadwell" and r["targets"][0]["clones"] >= 0
    assert r["cpu"]["ok"] and r["cache"]["crc_ok"] and r["cache"]["same_build"] and r["cache"]["targets_equal"]
    m = inspect_path(PRINTF111, Session(cpu="icelake-client"))
    assert (m["kind"], m["line"], m["julia_version"], m["format"]) == ("image", "1.11", "1.11.7", "macho")
    assert m["targets"][0]["name"] == "icelake-client" and len(m["targets"][0]["enabled"]) == 40
    assert not inspect_image(PRINTF111, Session(cpu="skylake"))["cpu"]["ok"]


def _group() -> click.Group:
    return click.Group(commands={"inspect": inspect_command, "cpu-target": cputarget_command})


def test_cli_inspect_text_and_json() -> None:
    runner = CliRunner()
    res = runner.invoke(_group(), ["inspect", str(ADAPT), "--cpu", "haswell"])
    assert res.exit_code == 0, res.output
    assert "REJECTED (target mismatch)" in res.output and "needs aes, adx, prfchw" in res.output
    res = runner.invoke(_group(), ["inspect", str(ADAPT), "--cpu", "haswell", "--check"])
    assert res.exit_code == 1
    res = runner.invoke(_group(), ["inspect", str(ADAPT), str(ADAPT.with_suffix(".so")), "--cpu", "skylake", "--json"])
    data = json.loads(res.output)
    assert [d["kind"] for d in data] == ["ji", "image"] and data[0]["verdict"]["loads"] is True
    res = runner.invoke(_group(), ["inspect", str(ADAPT), "--julia-flags", "--bogus"])
    assert res.exit_code == 2 and "unsupported Julia flag" in res.output
    res = runner.invoke(_group(), ["inspect", str(LOG112 / "PWFjL_xCOJd.ji"), "--cpu", "skylake", "--julia-branch",
                                   "v1.12.1", "--julia-version", "1.12.1"])
    assert "REJECTED (incompatible header)" in res.output and "distro vs official" in res.output
    res = runner.invoke(_group(), ["inspect", "/nonexistent.ji"])
    assert res.exit_code == 3


def test_cli_cpu_target() -> None:
    runner = CliRunner()
    res = runner.invoke(_group(), ["cpu-target", "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)"])
    assert res.exit_code == 0 and "adds over target 1: fma, movbe" in res.output
    res = runner.invoke(_group(), ["cpu-target", "generic;haswell,base(0)"])
    assert res.exit_code == 2 and "base target must be clone_all" in res.output
    res = runner.invoke(_group(), ["cpu-target", "--recommend", "x86_64"])
    assert res.exit_code == 0 and "x86-64-v4,-rdrnd,base(1)" in res.output
    res = runner.invoke(_group(), ["cpu-target", "generic;cortex-a57;carmel,clone_all;apple-m1,base(2)", "--json"])
    data = json.loads(res.output)
    assert data["tables"].endswith("aarch64") and data["targets"][3]["base"] == 2


def test_newer_julia_is_unknown_not_wrong(tmp_path: Path) -> None:
    from .test_ji import build_ji

    path = tmp_path / "m.ji"
    path.write_bytes(build_ji(fmt=15, version="1.14.0-DEV"))
    r = inspect_ji(path, Session(cpu="skylake"))
    assert r["format"] == 15 and r["cpu"]["ok"] is None and "tables" not in r
    assert r["verdict"]["rejected_by"] == "missing ocachefile"  # the image really is absent
