"""The fixture generator's pure parts: specs, the image plan, the IR text, the heap blob, and the
committed archives against MANIFEST.json (no LLVM tools needed)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import crc32c
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixturegen import FixtureSpec, build_plan, layout_for_version, member_names, render_ir
from fixturegen.catalog import committed_specs, dumps_compact, load_manifest
from fixturegen.heap import CHECKSUM_TAG, JI_MAGIC
from fixturegen.manifest import member_symbols
from fixturegen.plan import TAG, ImagePlan
from pylinkjl.binfmt.targetlist import decode_target_list
from pylinkjl.errors import TargetError
from pylinkjl.target import ALL_TARGETS, Target, parse_target

REPO = Path(__file__).resolve().parent.parent
LINUX = Target("linux", "x86_64")
MV_X86 = ("generic", "sandybridge,-xsaveopt,clone_all", "haswell,-rdrnd,base(1)")


# -- specs ----------------------------------------------------------------------------------------
def test_spec_resolves_defaults_per_layout() -> None:
    assert FixtureSpec(LINUX, "1.9").julia_version == "1.9.4"
    win = Target("windows", "x86_64")
    assert FixtureSpec(win, "1.9").dllimport_data is False
    assert FixtureSpec(win, "1.10", julia_version="1.10.3").dllimport_data is False
    assert FixtureSpec(win, "1.10", julia_version="1.10.4").dllimport_data is True
    assert FixtureSpec(LINUX, "1.13").dllimport_data is False  # nothing to import on ELF
    assert FixtureSpec(LINUX, "1.11", cpu_targets="generic;haswell").cpu_targets == ("generic", "haswell")
    assert FixtureSpec("windows-i686", "1.13").target == Target("windows", "i686")  # type: ignore[arg-type]


@pytest.mark.parametrize("version, layout", [("1.9.0", "1.9"), ("1.10.4", "1.10"), ("1.11.7", "1.11"),
                                             ("1.12.6", "1.11"), ("1.13.0-rc1", "1.13")])
def test_layout_for_version(version: str, layout: str) -> None:
    assert layout_for_version(version) == layout


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "1.12"}, "unknown fixture layout"),
    ({"layout": "1.9", "nshards": 2}, "no shards"),
    ({"nshards": 3, "nfuncs": 2}, "every shard needs"),
    ({"blob_size": 100}, "cannot hold"),
    ({"julia_version": "1.12.0", "layout": "1.10"}, "writes the 1.11 layout"),
    ({"julia_version": "1.8.5"}, "no package images"),
    ({"cpu_targets": ("generic", "haswell,base(1)")}, "must refer to a previous target"),
    ({"cpu_targets": ("generic", "haswell", "skylake,base(1)")}, "base target must be clone_all"),
    ({"cpu_targets": ("generic", "")}, "at least one non-empty"),
])
def test_bad_specs_raise_target_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        FixtureSpec(LINUX, **kwargs)


# -- the plan -------------------------------------------------------------------------------------
def walk_clone_idxs(plan: ImagePlan, idxs: tuple[int, ...], nfunc: int) -> list[tuple[bool, int, list[int]]]:
    """Walk the records like the loader's parse_sysimg; returns (tagged, base, entries) per target."""
    pos, out = 0, []
    for _ in plan.targets:
        head = idxs[pos]
        tagged, n = bool(head & TAG), head & ~TAG
        base = 0 if tagged else idxs[pos + 1]
        start = pos + (1 if tagged else 2)
        out.append((tagged, base, list(idxs[start:start + n])))
        pos = start + n
    assert pos == len(idxs)
    return out


def check_plan(plan: ImagePlan) -> None:
    spec = plan.spec
    seen = sorted(g for s in plan.shards for g in s.fvar_idxs)
    assert seen == list(range(spec.nfuncs))
    assert sorted(g for s in plan.shards for g in s.gvar_idxs) == list(range(spec.ngvars))
    for shard in plan.shards:
        nf = len(shard.functions)
        records = walk_clone_idxs(plan, shard.clone_idxs, nf)
        expected_table = 0
        for t, (tagged, base, entries) in zip(plan.targets, records):
            assert tagged == t.tagged
            if tagged:
                assert entries == list(shard.reloc)  # the functions whose slots must be refilled
                expected_table += 0 if t.index == 0 else nf
            else:
                assert base == t.base and plan.targets[base].tagged
                assert [e & ~TAG for e in entries if e & TAG] == list(shard.reloc)
                assert sorted(e & ~TAG for e in entries) == sorted(shard.cloned[t.index] | set(shard.reloc))
                expected_table += len(entries)
        assert len(shard.clone_table) == expected_table
        assert [fidx for fidx, _ in shard.clone_slots] == sorted(shard.reloc)
        for fidx, slot in shard.clone_slots:
            assert slot == f"{shard.functions[fidx].name}.reloc_slot"


def test_three_target_plan_matches_julias_scheme() -> None:
    plan = build_plan(FixtureSpec(LINUX, "1.11", cpu_targets=MV_X86, nshards=2, nfuncs=10))
    check_plan(plan)
    shard = plan.shards[0]  # functions 0, 2, 4, 6, 8 (local 0..4): leaf, call(0), generic, runtime, leaf
    assert [f.kind for f in shard.functions] == ["leaf", "call", "generic", "runtime", "leaf"]
    assert shard.reloc == (0,)
    assert shard.clone_idxs == (TAG | 1, 0, TAG | 1, 0, 2, 1, TAG | 0, 3)
    assert shard.clone_table == ("julia_f_0.1", "julia_f_2.1", "julia_f_4.1", "julia_f_6.1", "julia_f_8.1",
                                 "julia_f_0.2", "julia_f_6.2")
    assert [len(c) for c in shard.cloned] == [0, 5, 2]
    assert plan.impl(shard, 1, 2) == "julia_f_2.1"  # not cloned for haswell: falls back to base(1)


def test_single_target_plan_has_no_clones() -> None:
    plan = build_plan(FixtureSpec(LINUX, "1.9"))
    check_plan(plan)
    assert plan.shards[0].clone_idxs == (TAG,) and plan.shards[0].clone_table == ()
    assert plan.version_name("julia_f_1", 2) == "julia_f_1.clone_2"


@settings(max_examples=40, deadline=None)
@given(layout=st.sampled_from(["1.9", "1.10", "1.11", "1.13"]), nfuncs=st.integers(1, 40),
       nshards=st.integers(1, 5), ngvars=st.integers(1, 9), mv=st.integers(0, 3))
def test_any_plan_is_walkable(layout: str, nfuncs: int, nshards: int, ngvars: int, mv: int) -> None:
    nshards = 1 if layout == "1.9" else min(nshards, nfuncs, ngvars)
    cpu = [("generic",), MV_X86, ("generic", "haswell", "skylake"),
           ("generic", "sandybridge,clone_all", "haswell,base(1)", "skylake,clone_all", "icelake-client,base(3)")][mv]
    plan = build_plan(FixtureSpec(LINUX, layout, cpu_targets=cpu, nshards=nshards, nfuncs=nfuncs, ngvars=ngvars,  # type: ignore[arg-type]
                                  blob_size=512))
    check_plan(plan)
    symbols = member_symbols(plan)
    assert list(symbols) == list(member_names(plan.spec))


# -- IR text --------------------------------------------------------------------------------------
def test_render_ir_is_pure_and_names_the_target() -> None:
    spec = FixtureSpec(Target("windows", "i686"), "1.10", cpu_targets=MV_X86, nshards=2, nfuncs=8)
    text = render_ir(spec, "metadata.o")
    assert text == render_ir(spec, "metadata.o")
    assert 'target triple = "i686-w64-windows-gnu"' in text
    assert "x86_stdcallcc i32 @_DllMainCRTStartup" in text
    assert "@jl_image_pointers = dllexport global [5 x ptr]" in text
    shard = render_ir(spec, "text#1.o")
    assert '@jl_fvar_offsets_1 = hidden constant' in shard and 'section ".text"' in shard
    assert "@jl_nothing = external dllimport global ptr" in shard
    with pytest.raises(ValueError, match="not a member"):
        render_ir(spec, "text.o")


def test_render_ir_on_elf_has_no_windows_attributes() -> None:
    text = render_ir(FixtureSpec(LINUX, "1.9"), "text.o")
    assert "dllexport" not in text and "dllimport" not in text and "_DllMainCRTStartup" not in text
    assert "@jl_sysimg_fvars_base = alias i64, ptr @julia_f_0" in text


def test_aarch64_windows_stub_uses_the_c_convention() -> None:
    text = render_ir(FixtureSpec(Target("windows", "aarch64"), "1.13"), "metadata.o")
    assert "define i32 @_DllMainCRTStartup(" in text and "stdcall" not in text
    assert "_DllMainCRTStartup" not in render_ir(FixtureSpec(Target("windows", "x86_64"), "1.13", dll_stub=False),
                                                 "metadata.o")


# -- heap blob ------------------------------------------------------------------------------------
def test_heap_header_is_a_pkgimage_cache_header() -> None:
    plan = build_plan(FixtureSpec(Target("macos", "aarch64"), "1.13", blob_size=2048))
    blob = plan.blob
    head = blob.header
    assert head.startswith(JI_MAGIC) and struct.unpack_from("<HHB", head, 8) == (12, 0xFEFF, 8)
    strings = head[13:].split(b"\0")[:5]
    assert strings[:3] == [b"Darwin", b"aarch64", b"1.13.0"]
    at = 13 + sum(len(s) + 1 for s in strings)
    assert head[at] == 1  # pkgimage byte
    checksum, start, end = struct.unpack_from("<QQQ", head, at + 1)
    assert (start, end) == (blob.data_start, blob.size) == (len(head), 2048)
    assert checksum >> 32 == CHECKSUM_TAG >> 32 and checksum & 0xFFFFFFFF == crc32c.crc32c(bytes(end - start))
    assert start % 64 == 0


# -- committed archives and the manifest ----------------------------------------------------------
MANIFEST = load_manifest(REPO)
SPECS = committed_specs()


def test_manifest_lists_exactly_the_committed_archives() -> None:
    assert list(MANIFEST["archives"]) == list(SPECS)
    assert sum((REPO / p).stat().st_size for p in SPECS) + (REPO / "tests/data/archives/MANIFEST.json").stat().st_size \
        < 3 * 2**20


@pytest.mark.parametrize("rel", list(SPECS))
def test_manifest_entry_matches_spec_and_file(rel: str) -> None:
    entry, spec = MANIFEST["archives"][rel], SPECS[rel]
    assert entry["spec"] == spec.to_dict()
    data = (REPO / rel).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert entry["members"] == list(member_names(spec))
    plan = build_plan(spec)
    # Same plan -> same promises (the manifest is not stale against the code).
    assert entry["member_symbols"] == json.loads(json.dumps(member_symbols(plan)))
    assert decode_target_list(bytes.fromhex(entry["image"]["target_ids"]["hex"]))[0][0].name == \
        plan.targets[0].record.name
    # Julia's member names appear in the archive's member headers, in order.
    names = [m.encode() for m in entry["members"]]
    positions = [data.find(n) for n in names]
    assert all(p > 0 for p in positions) and positions == sorted(positions)


def test_committed_set_covers_every_layout_and_target() -> None:
    layouts = {(e["layout"], e["target"], e["multiversioned"]) for e in MANIFEST["archives"].values()}
    for t in ALL_TARGETS:
        for layout in ("1.9", "1.10", "1.11", "1.13"):
            assert (layout, t.name, False) in layouts and (layout, t.name, True) in layouts
    assert {parse_target(e["target"]) for e in MANIFEST["archives"].values()
            if e["path"].startswith("pylinkjl/samples/")} == set(ALL_TARGETS)


def test_compact_json_round_trips() -> None:
    value = {"a": [1, 2, [3, {"b": None}]], "c": {}, "d": ["x"]}
    assert json.loads(dumps_compact(value)) == value
