"""The pure-Python readers (ar, sniff, symbols) against real files: objects from clang-19 for all seven
targets, archives from llvm-ar-19 in every layout, import libraries from llvm-dlltool-19, bigobj COFF
from llvm-mc-19, images linked by LLD 19, and the real Julia images in fixtures/real. LLVM's own tools
(llvm-ar, llvm-nm) are the reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pylinkjl.binfmt.ar import iter_member_data, parse_archive, read_members
from pylinkjl.binfmt.sniff import sniff_bytes, sniff_file
from pylinkjl.binfmt.symbols import input_symbols, read_object_symbols, summarize
from pylinkjl.errors import InputError
from pylinkjl.target import ALL_TARGETS, Target

from .realdata import REAL
from .toolnames import (
    CLANG,
    LD64_LLD,
    LD_LLD,
    LLD_LINK,
    LLVM_AR,
    LLVM_DLLTOOL,
    LLVM_LIPO,
    LLVM_MC,
    LLVM_NM,
    compile_c,
    run_tool,
)

TOOLS = (CLANG, LLVM_AR, LLVM_NM, LLVM_MC, LLVM_DLLTOOL, LD_LLD, LLD_LINK,
         LD64_LLD, LLVM_LIPO)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs clang-19 and LLVM 19 tools")

DATA = Path(__file__).parent / "data" / "binfmt"
TARGET_IDS = [t.name for t in ALL_TARGETS]
JULIA_MEMBERS = ["text#0.o", "metadata.o", "sysimg.o", "a_member_name_longer_than_sixteen_chars.o"]




def _compile(source: Path, target: Target, out: Path) -> Path:
    return compile_c(source, target, out, "-ffreestanding", "-fPIC", "-fcommon", "-O2")


def _nm(path: Path, *flags: str) -> dict[str, set[str]]:
    """``llvm-nm -A -j``: {file or archive:member -> names}."""
    out: dict[str, set[str]] = {}
    for line in run_tool([LLVM_NM, "-A", "-j", *flags, str(path)]).splitlines():
        if ": " in line:
            where, name = line.rsplit(": ", 1)
            out.setdefault(where, set()).add(name)
    return out


def _nm_all(path: Path, *flags: str) -> set[str]:
    return set().union(*_nm(path, *flags).values())


def _unimp(names: set[str]) -> set[str]:
    return {n.removeprefix("__imp_") for n in names}


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """pkg.c and meta.c compiled for every target: {"<target>" / "<target>-meta" -> object}."""
    out = tmp_path_factory.mktemp("binfmt-objects")
    result = {}
    for t in ALL_TARGETS:
        result[t.name] = _compile(DATA / "pkg.c", t, out / f"pkg-{t.name}.o")
        result[f"{t.name}-meta"] = _compile(DATA / "meta.c", t, out / f"meta-{t.name}.o")
    return result


def _julia_archive(objects: dict[str, Path], target: str, where: Path, fmt: str, name: str,
                   env: dict[str, str] | None = None) -> Path:
    """An archive with Julia's member names (plus one name too long for the 16-byte field)."""
    staging = where / f"{name}.d"
    staging.mkdir()
    for member, source in zip(JULIA_MEMBERS, (objects[target], objects[f"{target}-meta"],
                                              objects[f"{target}-meta"], objects[target])):
        shutil.copyfile(source, staging / member)
    run_tool([LLVM_AR, "rcs", f"--format={fmt}", str(where / name), *JULIA_MEMBERS], cwd=staging, env=env)
    return where / name


@pytest.fixture(scope="session")
def archives(objects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("binfmt-archives")
    result = {
        "gnu": _julia_archive(objects, "linux-x86_64", out, "gnu", "gnu.a"),
        "gnu-sym64": _julia_archive(objects, "linux-aarch64", out, "gnu", "sym64.a", {"SYM64_THRESHOLD": "0"}),
        "darwin": _julia_archive(objects, "macos-aarch64", out, "darwin", "darwin.a"),
        "darwin-sym64": _julia_archive(objects, "macos-x86_64", out, "darwin", "darwin64.a",
                                       {"SYM64_THRESHOLD": "0"}),
        "coff": _julia_archive(objects, "windows-x86_64", out, "coff", "coff.a"),
        "gnu-mingw-i686": _julia_archive(objects, "windows-i686", out, "gnu", "mingw-i686.a"),
    }
    # duplicate member names, as `ar q` makes them
    dup = out / "dup.a"
    run_tool([LLVM_AR, "qc", str(dup), str(objects["linux-x86_64"])])
    run_tool([LLVM_AR, "qc", str(dup), str(objects["linux-x86_64"])])
    result["dup"] = dup
    return result


@pytest.fixture(scope="session")
def import_libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("binfmt-implibs")
    deffile = out / "libjulia.def"
    deffile.write_text("LIBRARY libjulia.dll\nEXPORTS\njl_foo\njl_bar_ptr DATA\n")
    machines = {"x86_64": "i386:x86-64", "i686": "i386", "aarch64": "arm64"}
    result = {}
    for arch, machine in machines.items():
        lib = out / f"libjulia-{arch}.dll.a"
        run_tool([LLVM_DLLTOOL, "-m", machine, "-d", str(deffile), "-l", str(lib)])
        result[arch] = lib
    return result


# -- ar ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["gnu", "gnu-sym64", "darwin", "darwin-sym64", "coff", "gnu-mingw-i686"])
def test_members_match_llvm_ar(archives: dict[str, Path], variant: str, tmp_path: Path) -> None:
    archive = archives[variant]
    members = read_members(archive)
    assert [m.name for m in members] == run_tool([LLVM_AR, "t", str(archive)]).split() == JULIA_MEMBERS
    run_tool([LLVM_AR, "x", str(archive)], cwd=tmp_path)
    for member, blob in iter_member_data(archive):
        assert blob == (tmp_path / member.name).read_bytes(), member
        assert len(blob) == member.size


def test_duplicate_member_names_are_all_reported(archives: dict[str, Path], objects: dict[str, Path]) -> None:
    members = read_members(archives["dup"])
    assert [m.name for m in members] == [objects["linux-x86_64"].name] * 2
    assert members[0].offset != members[1].offset


def _bsd_member(name: bytes, data: bytes) -> bytes:
    padded = name + b"\0" * (-len(name) % 4 or 4)
    body = padded + data
    header = (f"#1/{len(padded)}".ljust(16) + "0".ljust(12) + "0".ljust(6) + "0".ljust(6) + "644".ljust(8)
              + str(len(body)).ljust(10) + "`\n").encode()
    return header + body + (b"\n" if len(body) % 2 else b"")


@pytest.mark.parametrize("symdef", [b"__.SYMDEF SORTED", b"__.SYMDEF_64 SORTED", b"__.SYMDEF_64"])
def test_bsd_symbol_table_variants(objects: dict[str, Path], tmp_path: Path, symdef: bytes) -> None:
    """The sorted tables of cctools ranlib (llvm-ar never writes them) are skipped like `__.SYMDEF`."""
    obj = objects["macos-x86_64"].read_bytes()
    table = bytes(16 if b"64" in symdef else 8)  # empty ranlib array, empty string table
    archive = tmp_path / "sorted.a"
    archive.write_bytes(b"!<arch>\n" + _bsd_member(symdef, table) + _bsd_member(b"text#0.o", obj)
                        + _bsd_member(b"metadata.o", obj[:-1]))
    assert run_tool([LLVM_AR, "t", str(archive)]).split() == ["text#0.o", "metadata.o"]
    got = list(iter_member_data(archive))
    assert [(m.name, blob) for m, blob in got] == [("text#0.o", obj), ("metadata.o", obj[:-1])]


def test_thin_archive_is_refused(objects: dict[str, Path], tmp_path: Path) -> None:
    thin = tmp_path / "thin.a"
    run_tool([LLVM_AR, "rcs", "--thin", str(thin), str(objects["linux-x86_64"])])
    with pytest.raises(InputError, match="thin archives are not supported") as info:
        read_members(thin)
    assert info.value.path == thin and info.value.offset is not None
    assert sniff_file(thin).description.startswith("thin ar archive")
    empty_thin = tmp_path / "empty-thin.a"
    run_tool([LLVM_AR, "rcs", "--thin", str(empty_thin)])
    assert read_members(empty_thin) == []


def test_empty_and_malformed_archives(archives: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.a"
    run_tool([LLVM_AR, "rcs", str(empty)])
    assert read_members(empty) == [] and sniff_file(empty).kind == "archive"
    data = archives["gnu"].read_bytes()
    last = read_members(archives["gnu"])[-1]
    with pytest.raises(InputError, match=r"at offset 0x[0-9a-f]+\): member claims \d+ bytes") as info:
        parse_archive(data[:last.offset + 10], "cut.a")
    assert info.value.offset == last.offset - 60
    broken = bytearray(data)
    broken[last.offset - 2:last.offset] = b"XX"  # the header terminator
    with pytest.raises(InputError, match="no '`\\\\n' terminator"):
        parse_archive(bytes(broken), "broken.a")
    with pytest.raises(InputError, match="not an ar archive"):
        parse_archive(b"!<arch>", "short.a")
    with pytest.raises(InputError, match="cannot open archive"):
        read_members(tmp_path / "missing.a")


# -- sniff ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ALL_TARGETS, ids=TARGET_IDS)
def test_sniff_objects(objects: dict[str, Path], target: Target) -> None:
    kind = sniff_file(objects[target.name])
    assert (kind.format, kind.kind, kind.arch) == (target.format, "object", target.arch)
    assert kind == sniff_bytes(objects[target.name].read_bytes()[:4096])


def test_sniff_archives(archives: dict[str, Path], import_libs: dict[str, Path]) -> None:
    expected = {"gnu": ("x86_64", "ELF"), "gnu-sym64": ("aarch64", "ELF"), "darwin": ("aarch64", "Mach-O"),
                "darwin-sym64": ("x86_64", "Mach-O"), "coff": ("x86_64", "COFF"), "gnu-mingw-i686": ("i686", "COFF")}
    for variant, (arch, fmt) in expected.items():
        kind = sniff_file(archives[variant])
        assert (kind.format, kind.kind, kind.arch) == ("ar", "archive", arch), variant
        assert kind.description == f"ar archive, 4 members of {fmt} {arch} objects"
    for arch, lib in import_libs.items():
        kind = sniff_file(lib)
        assert (kind.format, kind.kind, kind.arch) == ("ar", "import-library", arch)
        assert "libjulia.dll" in kind.description


@pytest.fixture(scope="session")
def linked(objects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Images linked by LLD 19 from self-contained code (nothing left undefined)."""
    out = tmp_path_factory.mktemp("binfmt-linked")
    src = out / "leaf.c"
    src.write_text("int leaf(int x) { return x * 3; }\n")
    result: dict[str, Path] = {}
    for t in ALL_TARGETS:
        obj = _compile(src, t, out / f"leaf-{t.name}.o")
        if t.os == "linux":
            run_tool([LD_LLD, "-shared", str(obj), "-o", str(out / f"{t.name}.so")])
            run_tool([LD_LLD, "-e", "leaf", str(obj), "-o", str(out / f"{t.name}.exe")])
            result[f"{t.name}.so"], result[f"{t.name}.exe"] = out / f"{t.name}.so", out / f"{t.name}.exe"
        elif t.os == "macos":
            dylib = out / f"{t.name}.dylib"
            run_tool([LD64_LLD, "-arch", t.darwin_arch, "-platform_version", "macos", t.default_macos_version,
                  t.default_macos_version, "-dylib", str(obj), "-o", str(dylib)])
            result[f"{t.name}.dylib"] = dylib
        else:
            dll, exe = out / f"{t.name}.dll", out / f"{t.name}.exe"
            run_tool([LLD_LINK, "/dll", "/noentry", f"/machine:{t.coff_machine}", str(obj), f"/out:{dll}"])
            run_tool([LLD_LINK, f"/machine:{t.coff_machine}", "/subsystem:console", "/entry:leaf", str(obj),
                  f"/out:{exe}"])
            result[f"{t.name}.dll"], result[f"{t.name}.exe"] = dll, exe
    fat = out / "fat.dylib"
    run_tool([LLVM_LIPO, "-create", str(result["macos-x86_64.dylib"]), str(result["macos-aarch64.dylib"]),
          "-output", str(fat)])
    result["fat.dylib"] = fat
    return result


@pytest.mark.parametrize("target", ALL_TARGETS, ids=TARGET_IDS)
def test_sniff_linked_images(linked: dict[str, Path], target: Target) -> None:
    shared = sniff_file(linked[f"{target.name}.{target.dlext}"])
    assert (shared.format, shared.kind, shared.arch) == (target.format, "shared", target.arch)
    if target.os != "macos":
        exe = sniff_file(linked[f"{target.name}.exe"])
        assert (exe.format, exe.kind, exe.arch) == (target.format, "executable", target.arch)
    if target.os == "windows":
        assert "DLL" in shared.description and ("PE32+" in shared.description) == (target.arch != "i686")


def test_sniff_universal_dylib(linked: dict[str, Path]) -> None:
    kind = sniff_file(linked["fat.dylib"])
    assert (kind.format, kind.kind, kind.arch) == ("macho", "shared", None)
    assert kind.description == "Mach-O universal dylib (x86_64, aarch64)"


def test_sniff_real_julia_images() -> None:
    images = sorted(REAL.glob("*/*/compiled/*/*/*.so")) + sorted(REAL.glob("*/*/compiled/*/*/*.dylib"))
    assert len(images) > 20
    for image in images:
        kind = sniff_file(image)
        platform = image.relative_to(REAL).parts[1]  # e.g. linux-x86_64, darwin-arm64
        arch = {"arm64": "aarch64"}.get(platform.split("-")[1], platform.split("-")[1])
        expected = ("elf" if image.suffix == ".so" else "macho", "shared", arch)
        assert (kind.format, kind.kind, kind.arch) == expected, image
    for cache in sorted(REAL.glob("*/*/compiled/*/*/*.ji"))[:5]:
        assert sniff_file(cache).description == "Julia cache file (.ji)"


def test_sniff_odd_inputs(objects: dict[str, Path], tmp_path: Path) -> None:
    assert sniff_bytes(b"").description == "empty file"
    assert sniff_bytes(b"hello world\n" * 10).format == "unknown"
    truncated = sniff_bytes(objects["linux-x86_64"].read_bytes()[:10])
    assert (truncated.format, truncated.kind, truncated.arch) == ("elf", "other", None)
    assert "truncated" in truncated.description
    bitcode = tmp_path / "x.bc"
    run_tool([CLANG, "--target=x86_64-linux-gnu", "-c", "-emit-llvm", str(DATA / "meta.c"), "-o", str(bitcode)])
    assert sniff_file(bitcode).description == "LLVM bitcode"
    with pytest.raises(InputError, match="cannot open"):
        sniff_file(tmp_path / "missing.o")


# -- symbols -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ALL_TARGETS, ids=TARGET_IDS)
def test_object_symbols_match_llvm_nm(objects: dict[str, Path], target: Target) -> None:
    path = objects[target.name]
    [(name, syms)] = input_symbols(path)
    assert name == str(path)
    assert (syms.format, syms.arch) == (target.format, target.arch)
    assert syms.defined == _nm_all(path, "-g", "--defined-only")
    assert syms.undefined == _unimp(_nm_all(path, "-u"))
    m = target.mangle
    assert {m("jl_pkg_entry"), m("jl_pkg_getptr"), m("jl_image_data"), m("jl_pkg_name"), m("jl_hidden_fn"),
            m("jl_weak_def"), m("jl_common_var"), "julia_\u2218_12"} <= syms.defined
    assert {m("jl_foo"), m("jl_bar_ptr"), m("jl_imp_data")} <= syms.undefined
    assert not any(n.startswith("__imp_") for n in syms.undefined)
    if target.os == "windows":
        # jl_imp_data only through __imp_, jl_bar_ptr only through .refptr: both must be DATA in a .def
        assert syms.data_hints == {m("jl_bar_ptr"), m("jl_imp_data")}
        assert "__imp_" + m("jl_imp_data") in _nm_all(path, "-u")
    else:
        assert syms.data_hints == frozenset()


@pytest.mark.parametrize("variant", ["gnu", "darwin", "coff", "gnu-mingw-i686"])
def test_archive_symbols_per_member(archives: dict[str, Path], variant: str) -> None:
    archive = archives[variant]
    entries = input_symbols(archive)
    assert [n for n, _ in entries] == [f"{archive}({m})" for m in JULIA_MEMBERS]
    defined, undefined = _nm(archive, "-g", "--defined-only"), _nm(archive, "-u")
    for (name, syms), member in zip(entries, JULIA_MEMBERS):
        key = f"{archive}:{member}"
        assert syms.defined == defined.get(key, set()), member
        assert syms.undefined == _unimp(undefined.get(key, set())), member


@pytest.fixture(scope="session")
def bigobjs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real bigobj COFF objects: llvm-mc switches to ANON_OBJECT_HEADER_BIGOBJ beyond 65279 sections."""
    out = tmp_path_factory.mktemp("binfmt-bigobj")
    result: dict[str, Path] = {}
    for t in (t for t in ALL_TARGETS if t.os == "windows"):
        lines = [f'.section .data$s{i},"dw"\n.byte {i % 256}\n' for i in range(65280)]
        call = "bl" if t.arch == "aarch64" else "call"
        ret = "ret" if t.arch == "aarch64" else ("retl" if t.arch == "i686" else "retq")
        lines.append(f".text\n.globl {t.mangle('big_entry')}\n{t.mangle('big_entry')}:\n"
                     f"  {call} {t.mangle('big_ext')}\n  {ret}\n")
        source = out / f"big-{t.arch}.s"
        source.write_text("".join(lines))
        obj = out / f"big-{t.arch}.o"
        run_tool([LLVM_MC, f"-triple={t.triple}", "-filetype=obj", str(source), "-o", str(obj)])
        result[t.arch] = obj
    return result


@pytest.mark.parametrize("arch", ["x86_64", "i686", "aarch64"])
def test_bigobj_symbols(bigobjs: dict[str, Path], arch: str) -> None:
    path = bigobjs[arch]
    assert path.read_bytes()[:4] == b"\0\0\xff\xff"
    kind = sniff_file(path)
    assert (kind.format, kind.kind, kind.arch) == ("coff", "object", arch) and "bigobj" in kind.description
    [(_, syms)] = input_symbols(path)
    prefix = "_" if arch == "i686" else ""
    assert syms.defined == {prefix + "big_entry"} == _nm_all(path, "-g", "--defined-only")
    assert syms.undefined == {prefix + "big_ext"} == _nm_all(path, "-u")


def test_import_library_symbols(import_libs: dict[str, Path]) -> None:
    for arch, lib in import_libs.items():
        p = "_" if arch == "i686" else ""
        entries = input_symbols(lib)
        defined = set().union(*(s.defined for _, s in entries))
        assert defined == _nm_all(lib, "-g", "--defined-only")
        assert {f"__imp_{p}jl_foo", f"{p}jl_foo", f"__imp_{p}jl_bar_ptr"} <= defined
        assert f"{p}jl_bar_ptr" not in defined  # DATA: no thunk


def test_summarize_mingw_inputs(objects: dict[str, Path], import_libs: dict[str, Path], tmp_path: Path) -> None:
    obj = objects["windows-x86_64"]
    summary = summarize([obj])
    assert summary.undefined == {"jl_foo", "jl_bar_ptr", "jl_imp_data"}
    assert summary.data_hints == {"jl_bar_ptr", "jl_imp_data"}
    # the import library covers jl_foo (code) and jl_bar_ptr (DATA: through __imp_, as auto-import does)
    summary = summarize([obj, import_libs["x86_64"]])
    assert summary.undefined == summary.data_hints == {"jl_imp_data"}
    assert summary.kinds[str(import_libs["x86_64"])].kind == "import-library"
    # another object calling jl_imp_data as a function: no longer DATA-only
    caller = tmp_path / "caller.c"
    caller.write_text("extern int jl_imp_data(void);\nint call_it(void) { return jl_imp_data(); }\n")
    caller_obj = _compile(caller, Target("windows", "x86_64"), tmp_path / "caller.o")
    summary = summarize([obj, caller_obj])
    assert "jl_imp_data" in summary.undefined and summary.data_hints == {"jl_bar_ptr"}


def test_summarize_elf_archive(archives: dict[str, Path]) -> None:
    summary = summarize([archives["gnu"]])
    assert summary.undefined == {"jl_foo", "jl_bar_ptr", "jl_imp_data", "jl_weak_ref"}
    assert "jl_image_pointers" in summary.defined and "jl_pkg_entry" in summary.defined
    assert summary.data_hints == frozenset()
    assert summary.kinds == {str(archives["gnu"]): sniff_file(archives["gnu"])}


def test_real_julia_image_symbols() -> None:
    so = REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Adapt/rUIgN_LJMjr.so"
    [(_, syms)] = input_symbols(so)
    assert {"jl_system_image_data", "jl_system_image_size", "jl_dispatch_target_ids",
            "jl_RTLD_DEFAULT_handle_pointer"} <= syms.defined
    assert syms.defined == _nm_all(so, "-g", "--defined-only")
    assert syms.undefined == _nm_all(so, "-u")
    dylib = REAL / "subhk__FeastKit.jl/darwin-x86_64/compiled/v1.11/Logging/PWFjL_GDH18.dylib"
    [(_, syms)] = input_symbols(dylib)
    assert {"_jl_image_pointers", "_jl_system_image_data", "_jl_system_image_size"} <= syms.defined
    assert syms.defined == _nm_all(dylib, "-g", "--defined-only")
    assert syms.undefined == _nm_all(dylib, "-u")


def test_input_symbols_refusals(archives: dict[str, Path], linked: dict[str, Path], tmp_path: Path) -> None:
    cache = next(REAL.glob("*/*/compiled/*/*/*.ji"))
    with pytest.raises(InputError, match=r"not an object file or archive: Julia cache file"):
        input_symbols(cache)
    with pytest.raises(InputError, match=r"not an object file: PE32\+ DLL"):
        input_symbols(linked["windows-x86_64.dll"])
    # a member that is not an object is reported as archive(member)
    staging = tmp_path / "s"
    staging.mkdir()
    (staging / "notes.txt").write_text("not an object\n")
    mixed = tmp_path / "mixed.a"
    run_tool([LLVM_AR, "rcS", str(mixed), "notes.txt"], cwd=staging)
    with pytest.raises(InputError, match=r"mixed\.a\(notes\.txt\) \(at offset 0x0\): not an object file"):
        input_symbols(mixed)
    with pytest.raises(InputError, match=r"tiny\.o \(at offset 0x0\): ELF header .* runs past the end"):
        read_object_symbols(b"\x7fELF", "tiny.o")


@pytest.mark.parametrize("triple, fmt, arch", [("i686-linux-gnu", "elf", "i686"),
                                               ("i386-apple-macos10.13", "macho", "i686")])
def test_32bit_objects(tmp_path: Path, triple: str, fmt: str, arch: str) -> None:
    """Not pkgimage targets, but the 32-bit ELF and Mach-O layouts are read all the same."""
    obj = tmp_path / "pkg32.o"
    run_tool([CLANG, f"--target={triple}", "-c", "-ffreestanding", "-fcommon", str(DATA / "pkg.c"), "-o", str(obj)])
    kind = sniff_file(obj)
    assert (kind.format, kind.kind, kind.arch) == (fmt, "object", arch) and "32-bit" in kind.description
    [(_, syms)] = input_symbols(obj)
    assert syms.defined == _nm_all(obj, "-g", "--defined-only") and "julia_\u2218_12" in syms.defined
    assert syms.undefined == _nm_all(obj, "-u")
