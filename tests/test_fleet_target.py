"""cpu-target --fleet: the proposal and the check, against the official binaries' strings (cpu/official.py),
as properties over random fleets, and on the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pylinkjl.cli.cputarget import cputarget_command
from pylinkjl.cpu import features as F
from pylinkjl.cpu.cpuparse import parse_cpu_target
from pylinkjl.cpu.fleet import check_fleet, native_record, propose_fleet
from pylinkjl.cpu.host import named_cpu
from pylinkjl.cpu.official import OFFICIAL, OfficialString
from pylinkjl.cpu.tables import CpuTables, load
from pylinkjl.errors import TargetError

# The Julia lines each official string was built for (official.py's `releases`), per table family.
_LINES = {
    "1.9.x, 1.10.0-1.10.2": ("1.9.4", "1.10.0"),
    "1.10.3+, 1.11, 1.12, 1.13": ("1.10.5", "1.11", "1.12", "1.13"),
    "1.10.3+, 1.11, 1.12": ("1.10.5", "1.11", "1.12"),
    "1.12.x and 1.13 built since": ("1.12", "1.13"),
    "1.10.3-1.10.4": ("1.10.4",),
    "1.10.5+, 1.11, 1.12, 1.13": ("1.10.5", "1.11", "1.12", "1.13"),
    "1.9+": ("1.9.4", "1.10", "1.11", "1.12", "1.13"),
    "none of 1.9+": ("1.9.4",),  # i686 multi-target string: retired before 1.9, still checked with 1.9 tables
}
CASES = [(o, v) for o in OFFICIAL if o.arch in ("x86_64", "aarch64", "i686") for v in _LINES[o.releases]]


def made_for(o: OfficialString) -> list[str]:
    """The CPUs an official string names, one per target (the first token of each entry)."""
    return list(dict.fromkeys(entry.split(",")[0] for entry in o.string.split(";")))


@pytest.mark.parametrize(("official", "version"), CASES, ids=[f"{o.arch}-{o.period}-{v}" for o, v in CASES])
def test_official_strings_are_valid_and_the_proposal_is_no_worse(official: OfficialString, version: str) -> None:
    t = load(version, official.arch)
    fleet = made_for(official)
    theirs = check_fleet(official.string, fleet, t)
    assert theirs.valid, [c.message for c in theirs.choices if c.chosen is None]
    ours = propose_fleet(fleet, t)
    assert ours.check.valid
    assert ours.check.ntargets <= theirs.ntargets, (ours.string, official.string)
    for mine, off in zip(ours.check.choices, theirs.choices):
        assert mine.cpu == off.cpu
        assert mine.vector_bits >= off.vector_bits, mine.cpu
        assert set(mine.gives_up) <= set(off.gives_up), (mine.cpu, mine.gives_up, off.gives_up)
        assert mine.gives_up == [] and mine.vector_bits == mine.native_vector_bits  # each runs its native set


def test_what_the_official_strings_give_away() -> None:
    """x86-64-v4 and neoverse-512tvb are not names in Julia's CPU tables: those targets store no features, so
    the machines they were added for run an older target (julia-linking.md §4.2a)."""
    t = load("1.12", "x86_64")
    official = next(o for o in OFFICIAL if o.arch == "x86_64" and o.period.startswith("from"))
    check = check_fleet(official.string, ["skylake-avx512", "znver4", "x86-64-v4"], t)
    by = {c.cpu: c for c in check.choices}
    assert by["skylake-avx512"].chosen_name == "haswell" and by["skylake-avx512"].vector_bits == 256
    assert "avx512f" in by["znver4"].gives_up
    assert by["x86-64-v4"].chosen_name == "generic"  # the psABI level has no pclmul, which sandybridge needs
    mine = propose_fleet(["skylake-avx512", "znver4", "x86-64-v4"], t)
    assert all(c.gives_up == [] for c in mine.check.choices) and mine.check.ntargets == 3


# -- properties -----------------------------------------------------------------------------------

TABLES = [load(v, a) for v in ("1.9.4", "1.10", "1.11", "1.12", "1.13") for a in ("x86_64", "aarch64")]


@st.composite
def fleets(draw: st.DrawFn) -> tuple[CpuTables, list[str]]:
    t = draw(st.sampled_from(TABLES))
    names = draw(st.lists(st.sampled_from(sorted(t.cpus)), min_size=1, max_size=7, unique=True))
    return t, names


@settings(max_examples=80, deadline=None)
@given(fleets())
def test_exact_proposal_gives_every_cpu_its_native_set(fleet: tuple[CpuTables, list[str]]) -> None:
    t, names = fleet
    p = propose_fleet(names, t)
    parse_cpu_target(p.string, t)  # Julia's parser accepts it
    natives = {native_record(named_cpu(n, t), t).en for n in names}
    assert p.check.valid and p.check.ntargets == len(natives)
    assert all(c.gives_up == [] and c.vector_bits == c.native_vector_bits for c in p.check.choices)
    assert sorted(n for g in p.groups for n in g) == sorted(names)


@settings(max_examples=80, deadline=None)
@given(fleets(), st.integers(1, 4))
def test_fewer_targets_keep_vector_width_while_they_can(fleet: tuple[CpuTables, list[str]], k: int) -> None:
    t, names = fleet
    p = propose_fleet(names, t, max_targets=k)
    assert p.check.valid and p.check.ntargets <= k
    widths = {F.max_vector_size(native_record(named_cpu(n, t), t).en, t) for n in names}
    if len(widths) <= k:
        assert all(c.vector_bits == c.native_vector_bits for c in p.check.choices), p.string
    exact = propose_fleet(names, t)
    lost = sum(len(c.gives_up) for c in p.check.choices)
    assert lost == 0 or p.check.ntargets < exact.check.ntargets


def test_build_machine_reduces_target_0() -> None:
    t = load("1.12", "x86_64")
    p = propose_fleet(["haswell", "skylake-avx512"], t, build=named_cpu("sandybridge", t))
    by = {c.cpu: c for c in p.check.choices}
    assert "avx2" in by["haswell"].gives_up and by["skylake-avx512"].gives_up == []


def test_empty_and_bad_fleets() -> None:
    t = load("1.12", "x86_64")
    with pytest.raises(TargetError):
        propose_fleet([], t)
    with pytest.raises(TargetError):
        propose_fleet(["haswell"], t, max_targets=0)
    with pytest.raises(TargetError):
        check_fleet("native", ["haswell"], t)  # native needs a build machine


# -- the command ------------------------------------------------------------------------------------

def test_cli_mixed_fleet_one_string_per_architecture() -> None:
    res = CliRunner().invoke(cputarget_command, ["--fleet", "haswell,znver3,skylake-avx512,neoverse-v1,apple-m2"])
    assert res.exit_code == 0, res.output
    assert res.output.count("JULIA_CPU_TARGET=") == 2
    assert "JULIA_CPU_TARGET='haswell;znver3,clone_all;skylake-avx512'" in res.output
    data = json.loads(CliRunner().invoke(cputarget_command, ["--fleet", "haswell,neoverse-v1", "--json"]).output)
    assert [d["arch"] for d in data] == ["x86_64", "aarch64"]
    assert data[0]["cpus"][0]["chosen_name"] == "haswell" and data[0]["made_for"] == [["haswell"]]


def test_cli_checks_a_given_string_against_a_fleet() -> None:
    res = CliRunner().invoke(cputarget_command, ["generic;haswell", "--fleet", "skylake-avx512,sandybridge", "--json"])
    data = json.loads(res.output)[0]
    assert data["valid"] and [c["chosen_name"] for c in data["cpus"]] == ["haswell", "generic"]
    assert "avx" in data["cpus"][1]["gives_up"]


def test_cli_usage_errors() -> None:
    for args in (["--fleet", "haswell,nosuchcpu"], ["--fleet", "haswell", "--cpu", "a,b"], ["--max-targets", "2"]):
        res = CliRunner().invoke(cputarget_command, args)
        assert res.exit_code == 2, (args, res.output)


def test_official_x86_string_without_cx16_runs_the_x86_64_v4_clone() -> None:
    """julia-linking.md §4.2a: the feature-less x86-64-v4 target lacks cx16, so the CX16 rule no longer stops
    Julia, and a CPU without cx16 is sent to the clone LLVM compiled for AVX-512; the older string refuses."""
    from pylinkjl.cpu.fleet import image_targets
    from pylinkjl.cpu.match import CX16_ERROR, jit_target, match_sysimage

    t = load("1.12", "x86_64")
    host = named_cpu("core2", t)
    jit = jit_target(host.name, host.features, t, cpu_target="generic,-cx16")
    new, old = (next(o for o in OFFICIAL if o.arch == "x86_64" and o.period.startswith(p)) for p in ("from", "until"))
    sm = match_sysimage(image_targets(new.string, t), jit, t)
    assert sm.starts and sm.result.best == 3
    assert match_sysimage(image_targets(old.string, t), jit, t).error == CX16_ERROR


def test_cli_official_strings_against_a_fleet() -> None:
    res = CliRunner().invoke(cputarget_command, ["--recommend", "x86_64", "--fleet", "skylake-avx512,neoverse-v1",
                                                 "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["check"]["cpus"][0]["chosen_name"] for r in rows] == ["haswell", "haswell"]  # 3- and 4-target strings
    res = CliRunner().invoke(cputarget_command, ["--recommend", "x86_64", "--fleet", "neoverse-v1"])
    assert res.exit_code == 2 and "no x86_64 CPU" in res.output
