"""The planner's fast symbol path (``binfmt.fastsyms`` + ``binfmt.armap``, used by
``inputs.examine_inputs``) against the full reader it replaces on the link path (``binfmt.symbols``):
the same undefined names, data hints and probe answers on the committed Julia-shaped archives and on
clang-19 objects for all seven targets, with and without an archive symbol table, with a symbol table
that disagrees with the members, with names the table cannot be searched for; and fuzzed bytes."""

from __future__ import annotations

import json
import logging
import shutil
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.ar import parse_archive
from pylinkjl.binfmt.armap import _SPLIT_BELOW, ArchiveSymbolTable, read_symbol_table
from pylinkjl.binfmt.fastsyms import scan_object
from pylinkjl.binfmt.symbols import input_symbols, read_object_symbols
from pylinkjl.errors import InputError
from pylinkjl.link.inputs import examine_inputs
from pylinkjl.target import ALL_TARGETS, Target, parse_target

from .test_binfmt_fuzz import to_bigobj
from .toolnames import CLANG, LLVM_AR, LLVM_DLLTOOL, LLVM_NM, run_tool

TOOLS = (CLANG, LLVM_AR, LLVM_NM, LLVM_DLLTOOL)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs clang-19 and LLVM 19 tools")
HERE = Path(__file__).parent
DATA = HERE / "data" / "binfmt"
MANIFEST = json.loads((HERE / "data" / "archives" / "MANIFEST.json").read_text())["archives"]
COMMITTED = {HERE.parent / path: entry["target"] for path, entry in MANIFEST.items()}
TARGET_IDS = [t.name for t in ALL_TARGETS]
FALLBACK = "reading every member's symbols"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)




def _probes(target: Target) -> list[str]:
    m = target.mangle
    return [target.dll_entry_symbol, m("_pei386_runtime_relocator"), m("jl_pkg_entry"), m("jl_weak_def"),
            m("jl_weak_ref"), m("jl_common_var"), m("jl_hidden_fn"), m("jl_image_pointers"), m("jl_foo"),
            "julia_\u2218_12", m("no_such_symbol")]


def _reference(paths: Iterable[Path], probes: Iterable[str]) -> tuple[frozenset[str], frozenset[str], dict[str, bool]]:
    """What examine_inputs answered before the fast path: every symbol of every member, read in full."""
    defined: set[str] = set()
    referenced: set[str] = set()
    hints: set[str] = set()
    for path in paths:
        for _name, syms in input_symbols(path):
            defined |= syms.defined
            referenced |= syms.undefined
            hints |= syms.data_hints
    undefined = referenced - defined
    return frozenset(undefined), frozenset(hints & undefined), {p: p in defined for p in probes}


def _assert_agrees(paths: list[Path], target: Target, caplog: pytest.LogCaptureFixture, *,
                   fast: bool, probes: Iterable[str] | None = None) -> None:
    probes = list(_probes(target) if probes is None else probes)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pylinkjl.link.inputs"):
        summary = examine_inputs(paths, target, probes=probes)
    undefined, hints, answers = _reference(paths, probes)
    assert summary.undefined == undefined
    assert summary.data_hints == hints
    assert {p: summary.defines(p) for p in probes} == answers
    assert [f.path for f in summary.files] == paths
    fell_back = any(FALLBACK in r.getMessage() for r in caplog.records)
    assert fell_back != fast, caplog.text


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pkg.c and meta.c (tests/data/binfmt: weak, hidden, common, __imp_ and .refptr references) for
    every target, as objects and as archives with ("<target>.a") and without ("<target>-S.a") a
    symbol table, an archive of pkg.o alone ("<target>-pkg.a"), and for Windows an import library
    of two of pkg.o's references ("<target>-implib.a", llvm-dlltool)."""
    out = tmp_path_factory.mktemp("fastpath")
    result: dict[str, Path] = {}
    for t in ALL_TARGETS:
        d = out / t.name
        d.mkdir()
        for name in ("pkg", "meta"):
            run_tool([CLANG, f"--target={t.llvm_triple}", "-c", "-ffreestanding", "-fPIC", "-fcommon", "-O2",
                  str(DATA / f"{name}.c"), "-o", str(d / f"{name}.o")])
            result[f"{t.name}-{name}.o"] = d / f"{name}.o"
        fmt = "--format=darwin" if t.os == "macos" else "--format=gnu"
        for key, flags, members in ((t.name, "rcs", ["pkg.o", "meta.o"]), (f"{t.name}-S", "rcS", ["pkg.o", "meta.o"]),
                                    (f"{t.name}-pkg", "rcs", ["pkg.o"])):
            run_tool([LLVM_AR, fmt, flags, str(out / f"{key}.a"), *members], cwd=d)
            result[key] = out / f"{key}.a"
        if t.os == "windows":
            (d / "lib.def").write_text(f"LIBRARY libjulia.dll\nEXPORTS\n{t.mangle('jl_foo').removeprefix('_')}\n"
                                       f"{t.mangle('jl_bar_ptr').removeprefix('_')} DATA\n")
            machine = {"x86_64": "i386:x86-64", "i686": "i386", "aarch64": "arm64"}[t.arch]
            run_tool([LLVM_DLLTOOL, "-m", machine, "-d", str(d / "lib.def"), "-l", str(out / f"{t.name}-implib.a")])
            result[f"{t.name}-implib"] = out / f"{t.name}-implib.a"
    return result


# -- examine_inputs against the full reader ---------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(COMMITTED), ids=lambda p: p.name)
def test_committed_archives(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _assert_agrees([path], parse_target(COMMITTED[path]), caplog, fast=True)


@pytest.mark.parametrize("target", ALL_TARGETS, ids=TARGET_IDS)
def test_clang_objects(built: dict[str, Path], clang_objects: dict[Target, Path], target: Target,
                       caplog: pytest.LogCaptureFixture) -> None:
    n = target.name
    _assert_agrees([built[n]], target, caplog, fast=True)
    _assert_agrees([clang_objects[target]], target, caplog, fast=True)
    # no symbol table (llvm-ar S): every member is read
    assert read_symbol_table(built[f"{n}-S"].read_bytes(), "x") is None
    _assert_agrees([built[f"{n}-S"]], target, caplog, fast=False)
    # plain objects are always read in full; names defined by one input and used by another
    _assert_agrees([built[f"{n}-meta.o"], built[f"{n}-pkg"]], target, caplog, fast=True)
    _assert_agrees([built[f"{n}-pkg"], built[f"{n}-meta.o"], clang_objects[target]], target, caplog, fast=True)
    _assert_agrees([built[f"{n}-S"], built[n]], target, caplog, fast=False)
    if target.os == "windows":  # short import members are read in full, the archive's table is used
        _assert_agrees([built[n], built[f"{n}-implib"]], target, caplog, fast=True)
        assert examine_inputs([built[f"{n}-implib"]], target).undefined == frozenset()


@pytest.mark.parametrize("target", ALL_TARGETS, ids=TARGET_IDS)
def test_scan_matches_reader_per_member(built: dict[str, Path], target: Target) -> None:
    data = built[target.name].read_bytes()
    for member in parse_archive(data, "x.a"):
        refs = scan_object(data, member.name, member.offset, member.size)
        syms = read_object_symbols(data[member.offset:member.offset + member.size], member.name)
        assert (refs.format, refs.arch) == (syms.format, syms.arch) == (target.format, target.arch)
        if target.format == "coff":  # __imp_X folds to X even where the object defines X itself
            assert syms.undefined <= refs.undefined and refs.undefined - syms.undefined <= syms.defined
            assert syms.data_hints <= refs.data_hints and refs.data_hints - syms.data_hints <= syms.defined
        else:
            assert (refs.undefined, refs.data_hints) == (syms.undefined, syms.data_hints)
        assert refs.listed[0] <= len(syms.defined) <= refs.listed[1]
        assert refs.also_defined <= syms.defined


def test_stale_symbol_table(built: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A symbol table from other members (spliced in) disagrees in its count: the members are read."""
    target = Target("linux", "x86_64")

    def table_and_members(path: Path) -> tuple[bytes, bytes]:
        data = path.read_bytes()
        first = parse_archive(data, "x")[0].offset - 60
        return data[8:first], data[first:]

    both, pkg_only = built[target.name], built[f"{target.name}-pkg"]
    for table_from, members_from in ((both, pkg_only), (pkg_only, both)):
        spliced = tmp_path / f"{table_from.stem}-{members_from.stem}.a"
        spliced.write_bytes(b"!<arch>\n" + table_and_members(table_from)[0] + table_and_members(members_from)[1])
        assert read_symbol_table(spliced.read_bytes(), "x") is not None
        _assert_agrees([spliced], target, caplog, fast=False)


def test_symbol_table_with_extra_names_is_ignored(built: dict[str, Path]) -> None:
    data = bytearray(built["linux-x86_64"].read_bytes())
    count = struct.unpack_from(">I", data, 68)[0]
    assert read_symbol_table(bytes(data), "x") is not None
    struct.pack_into(">I", data, 68, count - 1)  # one name more than entries (and the offsets shifted)
    assert read_symbol_table(bytes(data), "x") is None


def test_unsearchable_names(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A name with a backslash or an invalid UTF-8 byte (decoded as \\xNN) is looked up by reading the
    members, not by searching the symbol table's bytes."""
    target = Target("linux", "x86_64")
    (tmp_path / "def.c").write_text('int f(void) __asm__("jl_back\\\\slash");\nint f(void) { return 1; }\n'
                                    'int g(void) __asm__("jl_bad\\xff");\nint g(void) { return 2; }\n')
    (tmp_path / "use.c").write_text('int f(void) __asm__("jl_back\\\\slash");\nint g(void) __asm__("jl_bad\\xff");\n'
                                    'int h(void) __asm__("jl_gone\\xfe");\n'
                                    'int use(void) { return f() + g() + h(); }\n')
    for name in ("def", "use"):
        run_tool([CLANG, f"--target={target.llvm_triple}", "-c", str(tmp_path / f"{name}.c"), "-o",
              str(tmp_path / f"{name}.o")])
    run_tool([LLVM_AR, "rcs", str(tmp_path / "odd.a"), "def.o", "use.o"], cwd=tmp_path)
    syms = read_object_symbols((tmp_path / "use.o").read_bytes(), "use.o")
    assert {"jl_back\\slash", "jl_bad\\xff", "jl_gone\\xfe"} <= syms.undefined
    _assert_agrees([tmp_path / "odd.a"], target, caplog, fast=False, probes=["jl_back\\slash"])
    summary = examine_inputs([tmp_path / "odd.a"], target)
    assert summary.undefined == {"jl_gone\\xfe"}


def test_defines_answers_only_probes(built: dict[str, Path]) -> None:
    summary = examine_inputs([built["linux-x86_64"]], Target("linux", "x86_64"), probes=["jl_pkg_entry"])
    assert summary.defines("jl_pkg_entry")
    with pytest.raises(ValueError, match="jl_image_data"):
        summary.defines("jl_image_data")


# -- the archive symbol table ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, target, env", [
    ("gnu", "linux-x86_64", {}), ("gnu", "linux-aarch64", {"SYM64_THRESHOLD": "0"}),
    ("darwin", "macos-aarch64", {}), ("darwin", "macos-x86_64", {"SYM64_THRESHOLD": "0"}),
    ("coff", "windows-x86_64", {}), ("gnu", "windows-i686", {})])
def test_symbol_table_matches_llvm_nm(built: dict[str, Path], tmp_path: Path, fmt: str, target: str,
                                      env: dict[str, str]) -> None:
    source = built[f"{target}-pkg.o"].parent
    archive = tmp_path / "t.a"
    run_tool([LLVM_AR, f"--format={fmt}", "rcs", str(archive), "pkg.o", "meta.o"], cwd=source, env=env)
    listed = run_tool([LLVM_NM, "--print-armap", str(archive)]).split("\n\n")[0].splitlines()[1:]
    expected = sorted(line.rsplit(" in ", 1)[0].encode() for line in listed)
    data = archive.read_bytes()
    if env:
        assert b"/SYM64/" in data[:80] or b"__.SYMDEF_64" in data[:100]
    table = read_symbol_table(data, str(archive))
    assert table is not None and table.count == len(expected)
    assert sorted(table.names.split(b"\0")[:-1]) == expected
    assert table.find(expected + [b"absent", b"jl_", b""]) == set(expected)


def _bsd_member(name: bytes, data: bytes) -> bytes:
    padded = name + b"\0" * (-len(name) % 8 or 8)
    body = padded + data
    header = (f"#1/{len(padded)}".ljust(16) + "0".ljust(12) + "0".ljust(6) + "0".ljust(6) + "644".ljust(8)
              + str(len(body)).ljust(10) + "`\n").encode()
    return header + body + (b"\n" if len(body) % 2 else b"")


@pytest.mark.parametrize("symdef", [b"__.SYMDEF SORTED", b"__.SYMDEF_64 SORTED", b"__.SYMDEF_64"])
def test_bsd_symbol_table_variants(symdef: bytes) -> None:
    """cctools ranlib's tables (llvm-ar writes only __.SYMDEF and __.SYMDEF_64), made by hand."""
    names = [b"_a", b"_bb", b"_ccc"]
    strtab = b"".join(n + b"\0" for n in names) + b"\0\0\0"
    wide = b"64" in symdef
    word = struct.Struct("<Q" if wide else "<I")
    offsets = [0, 3, 7]
    ranlibs = b"".join(word.pack(o) + word.pack(100) for o in offsets)
    table = word.pack(len(ranlibs)) + ranlibs + word.pack(len(strtab)) + strtab
    archive = b"!<arch>\n" + _bsd_member(symdef, table)
    found = read_symbol_table(archive, "x")
    assert found == ArchiveSymbolTable(3, b"_a\0_bb\0_ccc\0")
    assert found.find([b"_a", b"_ccc", b"_c", b"_bbb"]) == {b"_a", b"_ccc"}


_NAME = st.binary(min_size=1, max_size=12).filter(lambda b: b"\0" not in b)
_SMALL_ALPHABET = st.lists(st.sampled_from([b"a", b"b", b"_", b".", b"(", b"\\", b"\xff"]), min_size=1,
                           max_size=6).map(b"".join)


# A table this long is searched with the prefix-tree expression; a shorter one by splitting its names.
_FILLER = [b"\x01filler%d" % i for i in range(_SPLIT_BELOW)]


def _table(listed: list[bytes], long: bool) -> tuple[ArchiveSymbolTable, list[bytes]]:
    names = listed + _FILLER if long else listed
    return ArchiveSymbolTable(len(names), b"".join(n + b"\0" for n in names)), names


@FUZZ
@given(listed=st.lists(_NAME | _SMALL_ALPHABET, max_size=40),
       wanted=st.lists(_NAME | _SMALL_ALPHABET, max_size=30), long=st.booleans())
def test_table_find_is_set_membership(listed: list[bytes], wanted: list[bytes], long: bool) -> None:
    table, names = _table(listed, long)
    assert table.find(wanted + listed[:3]) == set(wanted + listed[:3]) & set(names)


@pytest.mark.parametrize("long", [False, True], ids=["split", "expression"])
def test_table_find_many_and_deep(long: bool) -> None:
    listed = [b"jl_%d" % i for i in range(0, 2000, 3)] + [b"a" * i for i in range(1, 200, 2)]
    table, names = _table(listed, long)
    many = [b"jl_%d" % i for i in range(300)]  # more words than the regex path takes
    assert table.find(many) == set(many) & set(names)
    deep = [b"a" * i for i in range(1, 120)]  # each a prefix of the next: too deep a tree
    assert table.find(deep) == set(deep) & set(names)
    assert table.find(deep[:30]) == set(deep[:30]) & set(names)


# -- fuzzing -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def seeds(built: dict[str, Path]) -> dict[str, bytes]:
    objects = {k.removesuffix("-pkg.o"): v.read_bytes() for k, v in built.items() if k.endswith("-pkg.o")}
    result = {name: objects[name] for name in ("linux-x86_64", "macos-aarch64", "windows-x86_64", "windows-i686")}
    result["coff-bigobj"] = to_bigobj(objects["windows-x86_64"])
    for key in ("linux-x86_64", "macos-x86_64", "windows-aarch64"):
        result[f"{key}.a"] = built[key].read_bytes()
    return result


def _mutate(data: st.DataObject, blob: bytes) -> bytes:
    """Bit flips and smashed 32-bit words, half of them in the first 512 bytes (headers, load
    commands, archive symbol table) or the last 40% (section headers, symbol and string tables)."""
    out = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        region = data.draw(st.sampled_from([(0, min(512, len(out))), (len(out) * 3 // 5, len(out)), (0, len(out))]))
        at = data.draw(st.integers(region[0], max(region[0], region[1] - 1)))
        action = data.draw(st.sampled_from(["flip", "huge", "zero", "random", "small"]))
        if action == "flip":
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        else:
            value = {"huge": 0xFFFFFFFF, "zero": 0, "small": data.draw(st.integers(0, 300)),
                     "random": data.draw(st.integers(0, 0xFFFFFFFF))}[action]
            out[at:at + 4] = struct.pack("<I", value)[:len(out[at:at + 4])]
    if data.draw(st.booleans()):
        del out[data.draw(st.integers(0, len(out))):]
    return bytes(out)


def _outcome(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except InputError as exc:
        assert exc.path is not None and "fuzz" in str(exc.path)
        assert exc.offset is not None and exc.offset >= 0
        return None


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_fuzz_scan_object(seeds: dict[str, bytes], data: st.DataObject) -> None:
    """Malformed objects: InputError with the file and an offset, never another exception; where the
    full reader reads the object too, both give the same answers."""
    name = data.draw(st.sampled_from([k for k in seeds if not k.endswith(".a")]))
    blob = _mutate(data, seeds[name])
    start = data.draw(st.sampled_from([0, 3]))  # also as a member at an odd offset of a bigger buffer
    buffer = bytes(start) + blob + bytes(data.draw(st.integers(0, 8)))
    refs = _outcome(lambda: scan_object(buffer, "fuzz.o", start, len(blob)))
    syms = _outcome(lambda: read_object_symbols(blob, "fuzz.o"))
    if refs is not None and syms is not None:
        assert (refs.format, refs.arch) == (syms.format, syms.arch)  # type: ignore[attr-defined]
        assert syms.undefined <= refs.undefined  # type: ignore[attr-defined]
        assert refs.undefined - syms.undefined <= syms.defined  # type: ignore[attr-defined]
        assert refs.data_hints - syms.data_hints <= syms.defined  # type: ignore[attr-defined]
        assert syms.data_hints <= refs.data_hints  # type: ignore[attr-defined]


@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_fuzz_archives(seeds: dict[str, bytes], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Malformed archives: the symbol table reader gives a table or None, examine_inputs a summary
    or an InputError naming the archive."""
    name = data.draw(st.sampled_from([k for k in seeds if k.endswith(".a")]))
    blob = _mutate(data, seeds[name])
    table = read_symbol_table(blob, "fuzz.a")
    if table is not None:
        assert table.names.count(b"\0") == table.count
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.a"
    path.write_bytes(blob)
    target = parse_target(name.removesuffix(".a"))
    try:
        examine_inputs([path], target, probes=_probes(target))
    except InputError as exc:
        assert exc.path is not None and "fuzz.a" in str(exc.path)
