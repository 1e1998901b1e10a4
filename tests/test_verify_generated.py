"""verify / read_image on generated multi-versioned images: every layout, all three formats, really linked.

Archives come from the fixture generator (3 targets with clone_all and base(n), 2 shards where the
layout has shards), are linked with pylinkjl's own link_image (real LLD), then decoded and compared
with the generator's plan: an independent account of what the tables must hold. Corrupted copies must
fail exactly the check that names the problem.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from fixturegen.build import generate_archive
from fixturegen.plan import build_plan
from fixturegen.spec import FixtureSpec
from pylinkjl.binfmt.lief import open_binary
from pylinkjl.images.decode import read_image
from pylinkjl.images.verify import verify_image
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from .corrupt import copy_to, patch
from .toolnames import LD64_LLD, LD_LLD, LLD

pytestmark = pytest.mark.skipif(shutil.which(LLD) is None and shutil.which("lld") is None,
                                reason="needs LLD")

CPUS = {"x86_64": ("generic", "sandybridge,-xsaveopt,clone_all", "haswell,-rdrnd,base(1)"),
        "i686": ("pentium4", "sandybridge,clone_all", "haswell,base(1)"),
        "aarch64": ("generic", "cortex-a57", "thunderx2t99,clone_all")}
# 1.10: the 1.10.0 line, whose auto-import lets the 1.10 archive reach jl_RTLD_DEFAULT_handle on Windows
VERSION = {"1.9": "1.9.4", "1.10": "1.10.0", "1.11": "1.11.7", "1.13": "1.13.0-rc1"}
UNIX = [(t, layout) for t in ("linux-x86_64", "linux-aarch64", "macos-x86_64", "macos-aarch64")
        for layout in ("1.9", "1.10", "1.11", "1.13")]
WINDOWS = [(t, layout) for t in ("windows-x86_64", "windows-i686") for layout in ("1.9", "1.10", "1.11", "1.13")] + [
    ("windows-aarch64", "1.11")]
ALL = UNIX + WINDOWS


class Built:
    def __init__(self, spec: FixtureSpec, archive: Path, image: Path) -> None:
        self.spec, self.archive, self.image = spec, archive, image
        self.plan = build_plan(spec)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Built]:
    root = tmp_path_factory.mktemp("mv-images")
    cache: dict[tuple[str, str], Built] = {}

    def get(target_name: str, layout: str) -> Built:
        key = (target_name, layout)
        if key not in cache:
            target = parse_target(target_name)
            spec = FixtureSpec(target, layout=layout, cpu_targets=CPUS[target.arch],  # type: ignore[arg-type]
                               nshards=1 if layout == "1.9" else 2, nfuncs=12, ngvars=8,
                               julia_version=VERSION[layout])
            archive = generate_archive(spec, root / f"mv-{layout}-{target.name}.a")
            image = root / f"mv-{layout}-{target.name}.{target.dlext}"
            link_image(archive, image, target=target, julia_version=VERSION[layout])
            cache[key] = Built(spec, archive, image)
        return cache[key]

    return get




def _failed(path: Path, **kw: object) -> set[str]:
    return {c.name for c in verify_image(path, **kw).failed}  # type: ignore[arg-type]


# -- decoding matches the generator's plan ------------------------------------------------------------

@pytest.mark.parametrize(("target_name", "layout"), ALL)
def test_decode_matches_plan(build: Callable[[str, str], Built], target_name: str, layout: str) -> None:
    b = build(target_name, layout)
    info = read_image(b.image)
    plan = b.plan
    assert info.layout == layout
    assert info.format == parse_target(target_name).format
    assert [t.name for t in info.targets] == [t.record.name for t in plan.targets]
    assert info.target_list == plan.target_ids
    assert info.nshards == len(plan.shards)
    assert info.nfuncs == b.spec.nfuncs and info.ngvars == b.spec.ngvars
    for got, want in zip(info.shards, plan.shards):
        assert got.nfuncs == len(want.functions)
        assert got.ngvars == len(want.gvars)
        assert got.idxs_words == len(want.clone_idxs)
        assert len(got.clone_addrs) == len(want.clone_table)
        assert len(got.slot_addrs) == len(want.clone_slots)
        if layout != "1.9":
            assert tuple(got.fvar_idxs) == want.fvar_idxs
            assert tuple(got.gvar_idxs) == want.gvar_idxs
    # clone_all targets clone every function; the base(n) target only some
    kinds = [r.clone_all for r in info.shards[0].records]
    assert kinds[0] and sum(kinds) == 2
    assert info.clones_per_target[kinds.index(False)] < info.nfuncs
    if layout == "1.13":
        assert info.cpu_target_string == b.spec.cpu_target_string


@pytest.mark.parametrize(("target_name", "layout"), ALL)
def test_generated_images_verify_clean(build: Callable[[str, str], Built], target_name: str, layout: str) -> None:
    b = build(target_name, layout)
    report = verify_image(b.image, object=b.archive, target=target_name, julia_version=VERSION[layout])
    assert report.ok, report.render(verbose=True)
    assert report["object-clones"].passed
    assert report["clones-per-target"].numbers["kinds"][0] == "default"
    names = [c.name for c in report]
    platform = {"elf": "elf-needed", "macho": "macho-build-version", "coff": "pe-entry-point"}
    assert platform[parse_target(target_name).format] in names


def test_function_pointers_really_point_at_the_functions(build: Callable[[str, str], Built]) -> None:
    """The decoded addresses are where the symbol table says the generator's functions are."""
    b = build("linux-x86_64", "1.11")
    info = read_image(b.image)
    with open_binary(b.image) as view:
        for shard, plan_shard in zip(info.shards, b.plan.shards):
            for addr, fn in zip(shard.func_addrs, plan_shard.functions):
                assert addr == view.symbol_address(fn.name)
            for addr, name in zip(shard.clone_addrs, plan_shard.clone_table):
                assert addr == view.symbol_address(name)


# -- corrupted copies fail exactly the check that names the problem ------------------------------------

def _shard_table(view, info, shard: int, index: int) -> int:  # type: ignore[no-untyped-def]
    """Address of pointer ``index`` of shard ``shard``'s row in jl_shard_tables."""
    ptrs = view.read_pointers(info.table_symbols["jl_image_pointers"], 2)
    per = 9 if info.layout == "1.10" else 8
    return ptrs[1] + (per * shard + index) * view.pointer_size


@pytest.mark.parametrize(("target_name", "layout"), [("linux-x86_64", "1.11"), ("macos-aarch64", "1.11"),
                                                     ("windows-x86_64", "1.13"), ("linux-aarch64", "1.10")])
def test_wrong_target_count_fails_target_count(build: Callable[[str, str], Built], tmp_path: Path,
                                               target_name: str, layout: str) -> None:
    img = copy_to(build(target_name, layout).image, tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        ptrs = view.read_pointers(info.table_symbols["jl_image_pointers"], 5)
        at = view.file_offset(ptrs[4])
    assert at is not None
    patch(img, at, struct.pack("<I", 2))  # the list now says 2 targets; the tables hold 3
    if target_name.startswith("macos-aarch64"):
        # the patch also breaks the ad-hoc signature; re-check only the tables
        assert _failed(img) == {"target-count", "macho-code-signature"}
    else:
        assert _failed(img) == {"target-count"}
    report = verify_image(img)
    assert "3" not in report["target-list"].reason and report["target-list"].passed
    assert "more targets" in report["target-count"].reason


def test_clone_pointer_moved_out_of_text_fails_function_pointers(build: Callable[[str, str], Built],
                                                                 tmp_path: Path) -> None:
    """1.11 ELF: clone pointers are RELATIVE relocations; move one addend into .data."""
    img = copy_to(build("linux-x86_64", "1.11").image, tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        slot = info.shards[0].tables["clone_table"] + view.pointer_size  # clone #1 of shard 0
        data = next(s for s in view.sections if s.name == ".data")
        rela = next(s for s in view.sections if s.name == ".rela.dyn")
        raw = view.read_bytes(rela.vaddr, rela.size)
        entry = next(i for i in range(0, len(raw), 24) if struct.unpack_from("<Q", raw, i)[0] == slot)
        at = view.file_offset(rela.vaddr + entry + 16)
    assert at is not None
    patch(img, at, struct.pack("<q", data.vaddr + 8))
    assert _failed(img) == {"function-pointers"}
    assert ".data" in verify_image(img)["function-pointers"].reason


def test_function_offset_moved_fails_function_pointers_110(build: Callable[[str, str], Built],
                                                           tmp_path: Path) -> None:
    """1.10 Mach-O: 32-bit offsets from fvar_base; push one far past __text."""
    img = copy_to(build("macos-x86_64", "1.10").image, tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        at = view.file_offset(info.shards[1].tables["fvar_offsets"] + 4 * 2)
    assert at is not None
    patch(img, at, struct.pack("<i", 0x40000))
    assert _failed(img) == {"function-pointers"}


def test_gvar_table_truncated_fails_image_header(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    img = copy_to(build("linux-x86_64", "1.13").image, tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        at = view.file_offset(info.shards[0].tables["gvar_offsets"])
    assert at is not None
    patch(img, at, struct.pack("<i", info.shards[0].ngvars - 1))
    assert _failed(img) == {"image-header"}
    assert "global variables" in verify_image(img)["image-header"].reason


def test_removed_export_fails_loader_exports(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """Rename jl_image_pointers in .dynstr: the loader cannot find it; .symtab still can (decoding goes on)."""
    img = copy_to(build("linux-aarch64", "1.11").image, tmp_path)
    with open_binary(img) as view:
        dynstr = next(s for s in view.sections if s.name == ".dynstr")
        raw = view.read_bytes(dynstr.vaddr, dynstr.size)
        at = view.file_offset(dynstr.vaddr + raw.index(b"\0jl_image_pointers\0") + 1)
    assert at is not None
    patch(img, at, b"JL")
    assert _failed(img) == {"loader-exports"}
    reason = verify_image(img)["loader-exports"].reason
    assert "jl_image_pointers" in reason and "not exported" in reason


def test_entry_point_changed_fails_pe_entry(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    img = copy_to(build("windows-x86_64", "1.11").image, tmp_path)
    info = read_image(img)
    with open_binary(img) as view:
        first_function = info.shards[0].func_addrs[0]
        pe = struct.unpack_from("<I", view.file_bytes(0x3C, 4))[0]
    assert first_function is not None
    patch(img, pe + 24 + 16, struct.pack("<I", first_function))  # OptionalHeader.AddressOfEntryPoint
    assert _failed(img) == {"pe-entry-point"}


def test_pseudo_relocations_without_relocator_fail(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """A pseudo-relocation list (as lld 14/16 write silently) in a DLL whose entry is Julia's stub."""
    img = copy_to(build("windows-x86_64", "1.13").image, tmp_path)
    import lief

    pe = lief.PE.parse(str(img))
    rdata = next(s for s in pe.sections if s.name == ".rdata")
    data = next(s for s in pe.sections if s.name == ".data")
    assert rdata.sizeof_raw_data - rdata.virtual_size >= 32  # file padding after .rdata's contents
    hdr = pe.dos_header.addressof_new_exeheader + 24 + pe.header.sizeof_optional_header
    index = [s.name for s in pe.sections].index(".rdata")
    end = (rdata.virtual_size + 7) & ~7
    # the list goes into the padding, and .rdata grows over it (VirtualSize is at +8 of the header)
    patch(img, rdata.pointerto_raw_data + end, struct.pack("<IIIIII", 0, 0, 1, rdata.virtual_address,
                                                            data.virtual_address, 64))
    patch(img, hdr + 40 * index + 8, struct.pack("<I", end + 24))
    assert _failed(img) == {"pe-pseudo-relocs"}


def test_arm64_signature_covers_the_file(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    img = copy_to(build("macos-aarch64", "1.9").image, tmp_path)
    assert verify_image(img)["macho-code-signature"].passed
    info = read_image(img)
    with open_binary(img) as view:
        at = view.file_offset(info.shards[0].func_addrs[0])  # one instruction of the first function
    assert at is not None
    patch(img, at, b"\x1f\x20\x03\xd5")  # nop
    assert _failed(img) == {"macho-code-signature"}
    assert "page" in verify_image(img)["macho-code-signature"].reason


def test_wrong_target_fails_image_format(build: Callable[[str, str], Built]) -> None:
    b = build("linux-aarch64", "1.9")
    report = verify_image(b.image, target="linux-x86_64")
    assert {c.name for c in report.failed} == {"image-format"}
    assert "aarch64" in report["image-format"].reason


def test_julia_version_mismatch_fails_julia_line(build: Callable[[str, str], Built]) -> None:
    b = build("linux-x86_64", "1.10")
    assert _failed(b.image, julia_version="1.12.1") == {"julia-line"}
    assert _failed(b.image, julia_version="1.10.2") == set()
    # Built as 1.10.0 (jl_RTLD_DEFAULT_handle_pointer); 1.10.4 images define the getter instead.
    report = verify_image(b.image, julia_version="1.10.4")
    assert {c.name for c in report.failed} == {"julia-line"}
    assert "get_jl_RTLD_DEFAULT_handle_addr" in report["julia-line"].reason


def test_object_with_other_clone_counts_fails_object_clones(build: Callable[[str, str], Built]) -> None:
    """Verify a 3-target image against an input built with other targets' clones."""
    image = build("linux-x86_64", "1.11").image
    other = build("linux-x86_64", "1.13").archive  # same names (f.N), same counts: passes
    assert verify_image(image, object=other)["object-clones"].passed
    spec = FixtureSpec(parse_target("linux-x86_64"), layout="1.11", cpu_targets=CPUS["x86_64"][:2], nshards=2,
                       nfuncs=12, ngvars=8)
    two = generate_archive(spec, image.parent / "two-targets.a")
    report = verify_image(image, object=two)
    assert {c.name for c in report.failed} == {"object-clones"}


def test_empty_image_from_missing_whole_archive(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """LLD links without --whole-archive happily and produces an image with none of Julia's tables."""
    from pylinkjl.process import run_process

    b = build("linux-x86_64", "1.11")
    out = tmp_path / "empty.so"
    done = run_process([LD_LLD, "-shared", "-o", str(out), str(b.archive)])
    assert done.returncode == 0, done.output
    report = verify_image(out)
    assert not report.ok
    assert "not a Julia package image" in report["julia-line"].reason


def test_chained_fixups_are_decoded(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """ld64.lld -fixup_chains: pointers are chained-fixup encoded in place; decode them to addresses."""
    from pylinkjl.process import run_process

    b = build("macos-aarch64", "1.11")
    out = tmp_path / "chained.dylib"
    done = run_process([LD64_LLD, "-arch", "arm64", "-platform_version", "macos", "11.0", "11.0", "-dylib",
                        "-undefined", "dynamic_lookup", "-fixup_chains", "-o", str(out), "-all_load",
                        str(b.archive)])
    assert done.returncode == 0, done.output
    with open_binary(out) as view:
        assert view._chained
        info = read_image(out)
        for shard, plan_shard in zip(info.shards, b.plan.shards):
            assert shard.func_addrs == [view.symbol_address(f.name) for f in plan_shard.functions]
            assert shard.clone_addrs == [view.symbol_address(n) for n in plan_shard.clone_table]
    assert verify_image(out, object=b.archive).ok


# -- load check (host ELF) and reproducibility -------------------------------------------------------

def test_load_check_against_stubs_and_an_empty_runtime(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    from pylinkjl.images.load import check_load, load_check

    b = build("linux-x86_64", "1.11")
    assert check_load(b.image).passed
    empty = tmp_path / "runtime"
    empty.mkdir()
    res = load_check(b.image, runtime=empty)
    assert not res.loaded
    assert res.missing_libraries == ["libjulia.so.1.11", "libjulia-internal.so.1.11"]
    assert "ijl_apply_generic" in res.unresolved and "jl_RTLD_DEFAULT_handle" in res.unresolved
    check = check_load(b.image, runtime=empty)
    assert check.failed and "ijl_apply_generic" in check.reason
    assert check_load(build("linux-aarch64", "1.11").image).status == "not_applicable"


def test_load_check_names_a_symbol_the_runtime_lacks(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """A runtime whose libjulia-internal lacks ijl_box_int64: dlopen(RTLD_NOW) fails and says which (named and
    versioned as the 1.11 line's, or the loader would stop at the name or the symbol version first)."""
    from pylinkjl.images.load import load_check
    from pylinkjl.link.lld import find_lld
    from pylinkjl.link.stubs.libraries import build_stub_libraries, plan_stub_libraries

    b = build("linux-x86_64", "1.11")
    with open_binary(b.image) as view:
        imports = view.undefined_imports()
    del imports["ijl_box_int64"]
    target = parse_target("linux-x86_64")
    libs = plan_stub_libraries(target, sorted(imports), [n for n, d in imports.items() if d],
                               ["julia", "julia-internal"], soname_version="1.11")
    runtime = tmp_path / "rt"
    build_stub_libraries(libs, target, str(find_lld().candidate.path), runtime)
    res = load_check(b.image, runtime=runtime)
    assert not res.loaded
    assert res.unresolved == ["ijl_box_int64"]
    assert "ijl_box_int64" in (res.error or "")


def test_reproducible_links(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    from pylinkjl.images.repro import check_reproducible, compare_outputs
    from pylinkjl.process import run_process

    archive = build("linux-x86_64", "1.10").archive

    def lld(out: Path) -> None:
        done = run_process([LD_LLD, "-shared", "-o", str(out), "--whole-archive", str(archive),
                            "--no-whole-archive"])
        assert done.returncode == 0, done.output

    same = check_reproducible(lld, tmp_path / "a")
    assert same.identical and same.ranges == []
    stamp = [0]

    def with_build_id(out: Path) -> None:  # a different --build-id each time: not reproducible
        stamp[0] += 1
        done = run_process([LD_LLD, "-shared", f"--build-id=0x{stamp[0]:08x}", "-o", str(out),
                            "--whole-archive", str(archive), "--no-whole-archive"])
        assert done.returncode == 0, done.output

    diff = check_reproducible(with_build_id, tmp_path / "b")
    assert not diff.identical
    assert diff.regions() == [".note.gnu.build-id"]
    assert diff.differing_bytes <= 4
    again = compare_outputs(tmp_path / "b" / "image.first", tmp_path / "b" / "image")
    assert again.to_dict()["regions"] == [".note.gnu.build-id"]


def test_reproducible_with_pylinkjl_link(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    from pylinkjl.images.repro import check_reproducible

    b = build("macos-x86_64", "1.11")
    res = check_reproducible(lambda out: link_image(b.archive, out, target="macos-x86_64",
                                                    julia_version="1.11.7"), tmp_path, name="pkg.dylib")
    assert res.identical, res.describe()


def test_link_without_verify_never_imports_lief(build: Callable[[str, str], Built], tmp_path: Path) -> None:
    """`pylinkjl link` must stay light: LIEF (~265 ms to import) only comes in with --verify."""
    import subprocess
    import sys

    archive = build("linux-x86_64", "1.11").archive
    code = ("import sys; from pylinkjl.cli.link import link_command\n"
            "try:\n    link_command(sys.argv[1:3] + ['--target', 'linux-x86_64', '--julia-version', '1.11.7']"
            " + sys.argv[3:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('LIEF' if 'lief' in sys.modules else 'NO-LIEF')")
    plain = subprocess.run([sys.executable, "-c", code, str(archive), "-o" + str(tmp_path / "a.so")],
                           check=False, capture_output=True, text=True, timeout=120)
    assert plain.stdout.strip().splitlines()[-1] == "NO-LIEF", plain.stderr
    verified = subprocess.run([sys.executable, "-c", code, str(archive), "-o" + str(tmp_path / "b.so"), "--verify"],
                              check=False, capture_output=True, text=True, timeout=120)
    assert verified.stdout.strip().splitlines()[-1] == "LIEF", verified.stdout + verified.stderr
    assert "verification passed" in verified.stdout


def test_cli_object_load_and_reproducible(build: Callable[[str, str], Built]) -> None:
    import json
    import subprocess
    import sys

    b = build("linux-x86_64", "1.11")
    code = "import sys; from pylinkjl.cli.verify import verify_command; verify_command(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, str(b.image), "--object", str(b.archive), "--load",
                           "--reproducible", "--julia-version", "1.11.7", "--json"],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["load"]["status"] == "passed"
    assert checks["reproducible"]["status"] == "passed"
    assert checks["object-clones"]["numbers"]["image"] == [0, 12, 6]
    bad = subprocess.run([sys.executable, "-c", code, str(b.image), "--reproducible"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--object" in bad.stderr
