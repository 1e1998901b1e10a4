"""Stub libraries, the pure part: who provides what, names per target, rendered files, cache keys."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pylinkjl.errors import InputError
from pylinkjl.link.stubs.elfobject import FUNCTION_SIZE, stub_object
from pylinkjl.link.stubs.libraries import (
    MANIFEST_NAME,
    build_commands,
    cached_stub_dir,
    default_cache_root,
    lld_argv,
    plan_stub_libraries,
    render,
    stub_cache_key,
    stub_dir_for,
)
from pylinkjl.link.stubs.providers import assign_providers, c_name, exported_data
from pylinkjl.target import ALL_TARGETS, Target

from .toolnames import LLD

LINUX = Target("linux", "x86_64")
MAC = Target("macos", "aarch64")
WIN64 = Target("windows", "x86_64")
WIN32 = Target("windows", "i686")
WINDOWS_LIBS = ["julia", "julia-internal", "openlibm", "ssp", "gcc_s", "gcc", "msvcrt"]


def test_exported_data_list_ships_with_the_package() -> None:
    data = exported_data()
    assert {"jl_nothing", "jl_true", "jl_options", "jl_any_type"} <= data
    assert not any(n.startswith("#") or " " in n for n in data) and len(data) > 100


@pytest.mark.parametrize(("target", "raw", "plain"), [
    (LINUX, "jl_nothing", "jl_nothing"),
    (MAC, "_jl_nothing", "jl_nothing"),
    (MAC, "ltmp0", None),  # no "_": a compiler-local name
    (WIN64, "__imp_jl_nothing", "jl_nothing"),
    (WIN32, "__imp__jl_nothing", "jl_nothing"),
    (WIN32, "_GetProcAddress@8", "GetProcAddress@8"),
    (WIN64, "@feat.00", None),
    (WIN64, ".refptr.jl_true", None),
    (LINUX, "_GLOBAL_OFFSET_TABLE_", None),
    (MAC, "dyld_stub_binder", None),
])
def test_c_name(target: Target, raw: str, plain: str | None) -> None:
    assert c_name(target, raw) == plain


def test_julia_split_on_windows() -> None:
    undefined = ["ijl_apply_generic", "jl_f_tuple", "__imp_jl_nothing", "__imp_jl_small_typeof",
                 "julia__gnu_h2f_ieee", "__julia_personality", "get_jl_RTLD_DEFAULT_handle_addr",
                 "jl_image_unpack_zstd", "sin", "fmaf", "__divti3", "___chkstk_ms", "__stack_chk_fail",
                 "memcpy", "jl_RTLD_DEFAULT_handle", "my_global"]
    got = assign_providers(WIN64, undefined, ["my_global"], WINDOWS_LIBS)
    assert got == {
        "julia": ((), ("jl_nothing",)),
        "julia-internal": (("__julia_personality", "get_jl_RTLD_DEFAULT_handle_addr", "ijl_apply_generic",
                            "jl_f_tuple", "jl_image_unpack_zstd", "julia__gnu_h2f_ieee"),
                           ("jl_RTLD_DEFAULT_handle", "jl_small_typeof")),
        "openlibm": (("fmaf", "sin"), ()),
        "ssp": (("__stack_chk_fail",), ()),
        "gcc_s": (("___chkstk_ms", "__divti3"), ()),
        "msvcrt": (("memcpy",), ("my_global",)),  # data_hints decide data vs function
    }


def test_fallbacks_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pylinkjl.link.stubs.providers")
    # Julia 1.13's Windows line has no -lssp: __stack_chk_fail falls to the C library.
    got = assign_providers(WIN64, ["__stack_chk_fail", "sin"], [], ["julia", "julia-internal", "msvcrt"])
    assert got == {"msvcrt": (("__stack_chk_fail", "sin"), ())}
    assert "ssp is not on the link line" in caplog.text
    # No libjulia on the line: its data goes to libjulia-internal.
    got = assign_providers(LINUX, ["jl_nothing"], [], ["julia-internal"])
    assert got == {"julia-internal": ((), ("jl_nothing",))}
    # Nothing fitting on a COFF line (which must resolve everything): libjulia-internal, with a warning.
    got = assign_providers(WIN64, ["memcpy"], [], ["julia", "julia-internal"])
    assert got == {"julia-internal": (("memcpy",), ())}
    assert "memcpy: none of msvcrt/msvcrt-os/ucrt/ucrtbase is on the link line" in caplog.text
    # macOS: left to -undefined dynamic_lookup; ELF lines without -z defs: left to the loader.
    assert assign_providers(MAC, ["_memcpy", "_sin"], [], ["julia", "julia-internal"]) == {}
    assert assign_providers(LINUX, ["memcpy", "sin"], [], ["julia", "julia-internal"]) == {}


def test_plan_names_per_target() -> None:
    links = WINDOWS_LIBS + ["c", "atomic"]
    plan = {t: {lib.link_name: lib for lib in plan_stub_libraries(t, [], [], links)} for t in ALL_TARGETS}
    lin = plan[LINUX]
    assert (lin["julia"].file_name, lin["julia"].load_name, lin["julia"].aliases) == \
        ("libjulia.so", "libjulia.so.1", ("libjulia.so.1",))
    assert (lin["openlibm"].load_name, lin["openlibm"].aliases) == ("libopenlibm.so.4", ("libopenlibm.so.4",))
    assert (lin["c"].load_name, lin["c"].aliases) == ("libc.so.6", ())  # never shadow the real libc
    assert (lin["gcc_s"].load_name, lin["atomic"].load_name) == ("libgcc_s.so.1", "libatomic.so.1")
    assert (lin["gcc"].kind, lin["gcc"].file_name) == ("static", "libgcc.a")
    mac = plan[MAC]
    assert (mac["julia"].file_name, mac["julia"].load_name) == ("libjulia.tbd", "@rpath/libjulia.1.dylib")
    assert mac["julia-internal"].load_name == "@rpath/libjulia-internal.dylib"
    assert mac["openlibm"].load_name == "@rpath/libopenlibm.4.dylib"
    win = plan[WIN64]
    names = ("julia", "julia-internal", "openlibm", "ssp", "msvcrt")
    assert [(win[n].file_name, win[n].load_name) for n in names] == [
        ("libjulia.dll.a", "libjulia.dll"), ("libjulia-internal.dll.a", "libjulia-internal.dll"),
        ("libopenlibm.dll.a", "libopenlibm.dll"), ("libssp.dll.a", "libssp-0.dll"),
        ("libmsvcrt.dll.a", "msvcrt.dll")]
    assert win["gcc_s"].load_name == "libgcc_s_seh-1.dll"
    assert plan[WIN32]["gcc_s"].load_name == "libgcc_s_sjlj-1.dll"
    assert plan[Target("windows", "aarch64")]["gcc_s"].load_name == "libgcc_s_seh-1.dll"


def test_plan_versions_and_repeated_names() -> None:
    # Julia 1.13's Windows line repeats -lmingwex/-lmsvcrt-os: one stub each.
    line = ["julia", "mingwex", "msvcrt-os", "mingwex", "msvcrt-os", "kernel32"]
    libs = plan_stub_libraries(WIN64, [], [], line)
    assert [(lib.link_name, lib.kind, lib.load_name) for lib in libs] == [
        ("julia", "shared", "libjulia.dll"), ("mingwex", "static", ""), ("msvcrt-os", "shared", "msvcrt.dll"),
        ("kernel32", "shared", "KERNEL32.dll")]
    lin = plan_stub_libraries(LINUX, [], [], ["julia", "julia-internal"], soname_version="1.11")
    assert [lib.load_name for lib in lin] == ["libjulia.so.1.11", "libjulia-internal.so.1.11"]
    mac = plan_stub_libraries(MAC, [], [], ["julia"], soname_version="1.11", julia_version="1.11.7")
    assert (mac[0].load_name, mac[0].current_version, mac[0].compatibility_version) == \
        ("@rpath/libjulia.1.11.dylib", "1.11.7", "1.11.0")


def test_render_def_and_tbd() -> None:
    undefined = ["_ijl_apply_generic", "__imp__jl_nothing", "_GetModuleHandleA@4", "_memcpy"]
    line = ["julia", "julia-internal", "kernel32", "msvcrt"]
    libs = {lib.link_name: lib for lib in plan_stub_libraries(WIN32, undefined, [], line)}
    assert render(libs["julia"], WIN32) == \
        {"libjulia.def": b'LIBRARY "libjulia.dll"\nEXPORTS\n  "jl_nothing" DATA\n'}
    assert render(libs["kernel32"], WIN32)["libkernel32.def"].decode().splitlines()[2] == \
        '  "_GetModuleHandleA@4" == GetModuleHandleA'
    mac = plan_stub_libraries(MAC, ["_ijl_apply_generic", "_jl_nothing"], [], ["julia-internal"])[0]
    text = render(mac, MAC)["libjulia-internal.tbd"].decode()
    assert "install-name:    '@rpath/libjulia-internal.dylib'" in text
    assert "targets:         [ arm64-macos ]" in text
    assert "symbols:         [ '_ijl_apply_generic',\n                     '_jl_nothing' ]" in text
    empty = plan_stub_libraries(Target("macos", "x86_64"), [], [], ["julia"])[0]
    assert "exports" not in render(empty, Target("macos", "x86_64"))["libjulia.tbd"].decode()


@pytest.mark.parametrize(("target", "name"), [(WIN64, 'bad"name'), (MAC, "_two\nlines"), (LINUX, "bell\a")])
def test_render_rejects_names_a_stub_cannot_hold(target: Target, name: str) -> None:
    libs = plan_stub_libraries(target, [name], [], ["julia-internal", "c", "System", "msvcrt"])
    (lib,) = [lib for lib in libs if lib.functions]
    with pytest.raises(InputError, match="cannot be written"):
        render(lib, target)


def test_build_commands() -> None:
    lib = plan_stub_libraries(WIN32, [], [], ["julia"])[0]
    assert build_commands(lib, WIN32, "/opt/lld", "/w") == [[
        "/opt/lld", "-flavor", "link", "/lib", "/def:/w/libjulia.def", "/machine:x86",
        "/out:/w/libjulia.dll.a"]]
    aarch = Target("linux", "aarch64")
    elf = plan_stub_libraries(aarch, [], [], ["julia"])[0]
    assert build_commands(elf, aarch, "lld", "/w") == [
        ["lld", "-flavor", "gnu", "-shared", "-m", "aarch64linux", "-soname", "libjulia.so.1",
         "--build-id=none", "-o", "/w/libjulia.so", "/w/libjulia.so.o"]]
    assert build_commands(plan_stub_libraries(MAC, [], [], ["julia"])[0], MAC, "lld", "/w") == []
    assert build_commands(plan_stub_libraries(LINUX, [], [], ["gcc"])[0], LINUX, "lld", "/w") == []


@pytest.mark.parametrize(("path", "flavor", "argv"), [
    ("/usr/bin/lld-19", "gnu", ["/usr/bin/lld-19", "-flavor", "gnu"]),
    ("/usr/bin/ld.lld-19", "gnu", ["/usr/bin/ld.lld-19"]),
    ("/usr/bin/ld.lld-19", "link", ["/usr/bin/ld.lld-19", "-flavor", "link"]),
    ("C:/julia/libexec/lld-link.exe", "link", ["C:/julia/libexec/lld-link.exe"]),
    ("C:/julia/libexec/lld.exe", "link", ["C:/julia/libexec/lld.exe", "-flavor", "link"]),
])
def test_lld_argv(path: str, flavor: str, argv: list[str]) -> None:
    assert lld_argv(path, flavor) == argv


_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$.@", min_size=1,
                max_size=40)


@settings(max_examples=40, deadline=None)
@given(arch=st.sampled_from(["x86_64", "aarch64"]),
       names=st.lists(_NAME, unique=True, max_size=30), split=st.integers(0, 30),
       sizes=st.dictionaries(_NAME, st.integers(0, 4096), max_size=5))
def test_elf_stub_object_reads_back(arch: str, names: list[str], split: int, sizes: dict[str, int]) -> None:
    """Whatever the names, an independent reader (LIEF) sees exactly the symbols we wrote."""
    import lief

    functions, data = names[:split], names[split:]
    binary = lief.ELF.parse(stub_object(arch, functions, data, sizes))
    assert binary is not None
    assert binary.header.machine_type == (lief.ELF.ARCH.X86_64 if arch == "x86_64" else lief.ELF.ARCH.AARCH64)
    got = {s.name: (s.type, s.size, s.binding) for s in binary.symbols if s.name}
    want = {n: (lief.ELF.Symbol.TYPE.FUNC, FUNCTION_SIZE, lief.ELF.Symbol.BINDING.GLOBAL) for n in functions}
    want.update({n: (lief.ELF.Symbol.TYPE.OBJECT, max(1, sizes.get(n, 8)), lief.ELF.Symbol.BINDING.GLOBAL)
                 for n in data})
    assert got == want
    bss = binary.get_section(".bss")
    assert all(s.value + s.size <= bss.size for s in binary.symbols if s.name in data)


def test_cache_key_tracks_what_matters() -> None:
    libs = plan_stub_libraries(WIN64, ["ijl_apply_generic"], [], WINDOWS_LIBS)
    key = stub_cache_key(WIN64, libs, "LLD 19.1.7")
    assert key == stub_cache_key(WIN64, plan_stub_libraries(WIN64, ["ijl_apply_generic"], [], WINDOWS_LIBS),
                                 "LLD 19.1.7")
    assert len(key) == 64
    assert key != stub_cache_key(WIN64, libs, "LLD 20.1.0")
    assert key != stub_cache_key(WIN64, plan_stub_libraries(WIN64, ["ijl_box_int64"], [], WINDOWS_LIBS),
                                 "LLD 19.1.7")
    assert key != stub_cache_key(Target("windows", "aarch64"), libs, "LLD 19.1.7")
    assert stub_dir_for(WIN64, libs, "LLD 19.1.7", "/c") == Path("/c/stubs") / key


def test_default_cache_root(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_root({"PYLINKJL_CACHE_DIR": "/a", "XDG_CACHE_HOME": "/b"}) == Path("/a")
    assert default_cache_root({"XDG_CACHE_HOME": "/b"}) == Path("/b/pylinkjl")
    monkeypatch.setenv("HOME", "/home/someone")
    assert default_cache_root({}) == Path("/home/someone/.cache/pylinkjl")


@pytest.mark.skipif(shutil.which(LLD) is None, reason="needs lld-19")
@pytest.mark.parametrize("target", [LINUX, MAC, WIN64], ids=str)
def test_cached_stub_dir_builds_once(target: Target, tmp_path: Path) -> None:
    lld = shutil.which(LLD)
    assert lld is not None
    line = ["julia", "julia-internal", "gcc"]
    libs = plan_stub_libraries(target, [target.mangle("ijl_apply_generic")], [], line)
    first = cached_stub_dir(target, libs, lld, "LLD 19.1.7", cache_root=tmp_path)
    assert first == stub_dir_for(target, libs, "LLD 19.1.7", tmp_path)
    manifest = json.loads((first / MANIFEST_NAME).read_text())
    assert manifest["key"] == first.name and manifest["target"] == target.name
    names = sorted(p.name for p in first.iterdir())
    assert {lib.file_name for lib in libs} <= set(names)
    assert not any(n.endswith((".o", ".def")) for n in names)  # inputs are not kept
    # A hit does not run LLD at all (this path does not exist).
    assert cached_stub_dir(target, libs, str(tmp_path / "no-lld"), "LLD 19.1.7", cache_root=tmp_path) == first
    # An incomplete directory (no manifest) is rebuilt in place.
    (first / MANIFEST_NAME).unlink()
    (first / libs[0].file_name).unlink()
    assert cached_stub_dir(target, libs, lld, "LLD 19.1.7", cache_root=tmp_path) == first
    assert sorted(p.name for p in first.iterdir()) == names
    assert [p.name for p in (tmp_path / "stubs").iterdir()] == [first.name]  # no temporary leftovers


_ANY_NAME = st.text(min_size=0, max_size=24)


@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(ALL_TARGETS), undefined=st.lists(_ANY_NAME, max_size=12),
       hints=st.lists(_ANY_NAME, max_size=3),
       link_names=st.lists(st.sampled_from(WINDOWS_LIBS + ["c", "System", "kernel32", "atomic", "foo"]),
                           max_size=8))
def test_planning_never_crashes(target: Target, undefined: list[str], hints: list[str],
                                link_names: list[str]) -> None:
    """Any names at all: a plan where each symbol lands once, and rendering succeeds or says why."""
    libs = plan_stub_libraries(target, undefined, hints, link_names)
    assert [lib.link_name for lib in libs] == list(dict.fromkeys(link_names))
    placed = [n for lib in libs for n in (*lib.functions, *lib.data)]
    assert len(placed) == len(set(placed))
    for lib in libs:
        try:
            files = render(lib, target)
        except InputError as exc:
            assert "cannot be written" in str(exc)
        else:
            assert files and all(isinstance(v, bytes) for v in files.values())
    stub_cache_key(target, [lib for lib in libs if lib.kind == "static"])


@pytest.mark.skipif(shutil.which(LLD) is None, reason="needs lld-19")
def test_concurrent_builders_share_one_directory(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    lld = shutil.which(LLD)
    assert lld is not None
    libs = plan_stub_libraries(LINUX, ["ijl_apply_generic", "sin", "memcpy"], [],
                               ["julia", "julia-internal", "openlibm", "c"])
    with ThreadPoolExecutor(2) as pool:
        dirs = list(pool.map(lambda _: cached_stub_dir(LINUX, libs, lld, "v", cache_root=tmp_path), range(2)))
    assert dirs[0] == dirs[1]
    assert sorted(p.name for p in dirs[0].iterdir()) == sorted(
        [MANIFEST_NAME, "libjulia.so", "libjulia.so.1", "libjulia-internal.so", "libjulia-internal.so.1",
         "libopenlibm.so", "libopenlibm.so.4", "libc.so"])
    assert [p.name for p in (tmp_path / "stubs").iterdir()] == [dirs[0].name]


def test_a_planned_stub_set_is_built_from_its_own_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stub set is rendered once, when planned; building it renders nothing again."""
    import pylinkjl.link.stubs.libraries as stublibs

    libs = plan_stub_libraries(LINUX, ["ijl_apply_generic"], [], ["julia", "julia-internal"])
    stubs = stublibs.plan_stub_set(LINUX, libs, "19.1.7", tmp_path)

    def no_render(*args: object) -> None:
        raise AssertionError("rendered twice")

    monkeypatch.setattr(stublibs, "render", no_render)
    lld = shutil.which(LLD)
    assert lld is not None, f"needs {LLD}"
    built = stublibs.ensure_stub_set(stubs, lld)
    assert built == stubs.directory and (built / "libjulia.so").is_file()
