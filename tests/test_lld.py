"""LLD discovery: candidate order, dedup, Julia's environment, probing (real lld-19 and fake ones), choice."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import pylinkjl.link.lld.search as lldsearch
from pylinkjl.errors import LldNotFoundError, TargetError
from pylinkjl.link.juliatree import open_tree
from pylinkjl.link.lld import (
    LldCandidate,
    candidates,
    describe,
    driver_of,
    find_lld,
    flavor_args,
    julia_lld_env,
    probe,
    version_notes,
)
from pylinkjl.target import Target

from .toolnames import LD64_LLD, LD_LLD, LLD, LLVM_FOLDER

REAL_LLD = Path("/usr/lib", LLVM_FOLDER, "bin", "lld")
needs_real_lld = pytest.mark.skipif(not REAL_LLD.is_file(), reason=f"needs Debian {LLD}")


def write(path: Path, data: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return path


def fake_lld(path: Path, body: str) -> Path:
    """An executable the kernel runs through its shebang (no shell command line involved)."""
    write(path, "#!/bin/sh\n" + body + "\n").chmod(0o755)
    return path


def make_tree(home: Path, libjulia: str = "lib/libjulia.so.1", lld_at: tuple[str, ...] = ()) -> Path:
    write(home / "include/julia/julia_version.h", '#define JULIA_VERSION_STRING "1.11.7"\n')
    write(home / libjulia)
    for rel in lld_at:
        fake_lld(home / rel, 'echo "LLD 16.0.6 (compatible with GNU linkers)"')
    return home


@pytest.fixture
def no_llvm_folders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make searches host-independent: this machine has /usr/lib/llvm-19/bin/lld."""
    def nothing() -> Iterator[Path]:
        return iter(())
    monkeypatch.setattr(lldsearch, "_llvm_folder_candidates", nothing)


# -- names, flavors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "kind"), [
    ("lld", "generic"), (LLD, "generic"), ("lld.exe", "generic"), ("mylinker", "generic"),
    ("ld.lld", "ld.lld"), (LD_LLD, "ld.lld"), ("ld", "ld.lld"), ("x86_64-w64-mingw32-ld", "ld.lld"),
    ("lld-gnu", "ld.lld"), ("ld64.lld", "ld64.lld"), (LD64_LLD, "ld64.lld"), ("lld-darwin", "ld64.lld"),
    ("LD64.LLD.EXE", "ld64.lld"), ("lld-link", "lld-link"), ("lld-link.exe", "lld-link"), ("wasm-ld", "wasm-ld"),
])
def test_kind_follows_lld_dispatch_by_name(name: str, kind: str) -> None:
    assert driver_of(Path("/x") / name) == kind


def test_flavor_args() -> None:
    def cand(kind: str) -> LldCandidate:
        return LldCandidate(Path("/x"), "PATH", {}, kind)  # type: ignore[arg-type]

    assert flavor_args(cand("generic"), "gnu") == ["-flavor", "gnu"]
    assert flavor_args(cand("generic"), "darwin") == ["-flavor", "darwin"]
    assert flavor_args(cand("ld.lld"), "gnu") == []  # MinGW (-m i386pep) goes through this driver too
    assert flavor_args(cand("ld64.lld"), "darwin") == []
    assert flavor_args(cand("ld64.lld"), "ld64") == []
    for kind, flavor in [("ld.lld", "darwin"), ("ld64.lld", "gnu"), ("lld-link", "gnu"), ("lld-link", "darwin")]:
        with pytest.raises(LldNotFoundError, match=f"cannot link -flavor {flavor}"):
            flavor_args(cand(kind), flavor)
    with pytest.raises(TargetError):
        flavor_args(cand("generic"), "bogus")


# -- Julia's environment -----------------------------------------------------------------------------------

def test_julia_env_linux(tmp_path: Path) -> None:
    tree = open_tree(make_tree(tmp_path / "j"))
    lld = tree.libexecdir / "lld"
    h = tmp_path / "j"
    assert julia_lld_env(tree, lld, {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/opt/x"}) == {
        "LD_LIBRARY_PATH": f"{h}/lib/julia:{h}/lib:/opt/x", "PATH": f"{h}/libexec/julia:/usr/bin:/bin"}
    assert julia_lld_env(tree, lld, {}) == {"LD_LIBRARY_PATH": f"{h}/lib/julia:{h}/lib", "PATH": f"{h}/libexec/julia"}
    # the in-tree build location keeps Julia's unnormalised joinpath
    assert julia_lld_env(tree, tree.bindir / ".." / "tools" / "lld", {"LD_LIBRARY_PATH": ""})["PATH"] == \
        f"{h}/bin/../tools"


def test_julia_env_macos(tmp_path: Path) -> None:
    h = make_tree(tmp_path / "j", libjulia="lib/libjulia.1.11.dylib")
    tree = open_tree(h)
    lld = tree.libexecdir / "lld"
    assert julia_lld_env(tree, lld, {"HOME": "/Users/me", "PATH": "/usr/bin"}) == {
        "DYLD_FALLBACK_LIBRARY_PATH": f"{h}/lib/julia:{h}/lib:/Users/me/lib:/usr/local/lib:/lib:/usr/lib",
        "PATH": f"{h}/libexec/julia:/usr/bin"}
    assert julia_lld_env(tree, lld, {"DYLD_FALLBACK_LIBRARY_PATH": "/opt/lib"})["DYLD_FALLBACK_LIBRARY_PATH"] == \
        f"{h}/lib/julia:{h}/lib:/opt/lib"


def test_julia_env_windows_does_not_add_lld_dir_to_path(tmp_path: Path) -> None:
    h = make_tree(tmp_path / "j", libjulia="bin/libjulia.dll")
    tree = open_tree(h)
    lld = tree.libexecdir / "lld.exe"
    assert julia_lld_env(tree, lld, {"Path": r"C:\Windows;C:\tools"}) == {
        "PATH": f"{h}/lib/julia;{h}/bin;C:\\Windows;C:\\tools"}
    assert julia_lld_env(tree, lld, {}) == {"PATH": f"{h}/lib/julia;{h}/bin"}


# -- order and dedup ---------------------------------------------------------------------------------------

def test_candidate_order(tmp_path: Path, no_llvm_folders: None) -> None:
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    for rel in ["p1/lld-13", "p1/ld64.lld", "p1/lld-17", "p2/lld", "p2/lld-19", "p2/ld.lld", "p2/lld-17",
                "p2/ld.lld-18", "p2/lld-link", "p1/lld-x", "explicit/mylld", "env/envlld"]:
        write(tmp_path / rel, rel)  # distinct contents: nothing is a duplicate
    home = make_tree(tmp_path / "julia", lld_at=("libexec/julia/lld", "bin/lld"))
    environ = {"PATH": f"{p1}{os.pathsep}{p2}", "PYLINKJL_LLD": str(tmp_path / "env/envlld")}
    got = [(c.source, c.path, c.driver) for c in candidates(explicit=tmp_path / "explicit/mylld", julia_home=home,
                                                          environ=environ)]
    assert got == [
        ("explicit", tmp_path / "explicit/mylld", "generic"),
        ("PYLINKJL_LLD", tmp_path / "env/envlld", "generic"),
        ("julia", home / "libexec/julia/lld", "generic"),
        ("julia", home / "bin/lld", "generic"),
        ("PATH", p2 / "lld", "generic"),
        ("PATH", p2 / LLD, "generic"),
        ("PATH", p1 / "lld-17", "generic"),
        ("PATH", p2 / "lld-17", "generic"),
        ("PATH", p1 / "lld-13", "generic"),
        ("PATH", p2 / "ld.lld", "ld.lld"),
        ("PATH", p2 / "ld.lld-18", "ld.lld"),
        ("PATH", p1 / "ld64.lld", "ld64.lld"),
    ]


def test_julia_on_path_is_used_without_julia_home(tmp_path: Path, no_llvm_folders: None) -> None:
    home = make_tree(tmp_path / "julia", lld_at=("libexec/julia/lld",))
    fake_lld(home / "bin/julia", "exit 0")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/julia").symlink_to(home / "bin/julia")
    got = list(candidates(environ={"PATH": str(tmp_path / "bin")}))
    assert [(c.source, c.path) for c in got] == [("julia", home / "libexec/julia/lld")]
    assert got[0].env["LD_LIBRARY_PATH"] == f"{home}/lib/julia:{home}/lib"


def test_dedup_by_binary_and_driver(tmp_path: Path, no_llvm_folders: None) -> None:
    real = write(tmp_path / "llvm/bin/lld", "binary")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/lld-19").symlink_to(real)
    (tmp_path / "bin/lld").symlink_to(real)
    (tmp_path / "bin/ld.lld-19").symlink_to(real)  # same file, other driver: kept
    got = [(c.source, c.path.name, c.driver) for c in candidates(explicit=real, environ={"PATH": str(tmp_path / "bin")})]
    assert got == [("explicit", "lld", "generic"), ("PATH", LD_LLD, "ld.lld")]


def test_explicit_bare_name_is_looked_up_on_path(tmp_path: Path, no_llvm_folders: None) -> None:
    target = write(tmp_path / "bin/ld.lld-42")
    got = next(candidates(explicit="ld.lld-42", environ={"PATH": str(tmp_path / "bin")}))
    assert (got.path, got.driver) == (target, "ld.lld")


# -- probing -----------------------------------------------------------------------------------------------

def test_probe_fake_versions(tmp_path: Path) -> None:
    ok = probe(LldCandidate(fake_lld(tmp_path / "lld", 'echo "Debian LLD 19.1.7 (compatible with GNU linkers)"'),
                            "PATH", {}, "generic"))
    assert ok.usable and ok.version == (19, 1, 7) and ok.problem is None
    old = probe(LldCandidate(fake_lld(tmp_path / "lld-13", 'echo "LLD 13.0.1"'), "PATH", {}, "generic"))
    assert not old.usable and old.version == (13, 0, 1)
    assert old.problem is not None and old.problem.startswith("LLD 13.0.1 is older than 14, the oldest LLD Julia")


def test_probe_passes_flavor_only_to_generic(tmp_path: Path) -> None:
    script = 'if [ "$1" = "-flavor" ]; then echo "LLD 19.1.0"; else echo "lld is a generic driver." >&2; exit 1; fi'
    generic = probe(LldCandidate(fake_lld(tmp_path / "a/lld", script), "PATH", {}, "generic"))
    assert generic.usable
    named = probe(LldCandidate(fake_lld(tmp_path / "b/ld.lld", 'echo "$1"; echo "LLD 19.1.0"'), "PATH", {}, "ld.lld"))
    assert named.usable and named.version_text == "--version"


def test_probe_timeout(tmp_path: Path) -> None:
    found = probe(LldCandidate(fake_lld(tmp_path / "lld", "exec sleep 30"), "PATH", {}, "generic"), timeout=0.2)
    assert not found.usable and found.problem == "did not answer --version within 0.2 s"


def test_probe_crash_signal(tmp_path: Path) -> None:
    found = probe(LldCandidate(fake_lld(tmp_path / "lld", 'echo "PLEASE submit a bug report"; kill -SEGV $$'),
                               "PATH", {}, "generic"))
    assert found.problem == "crashed (SIGSEGV) running --version: PLEASE submit a bug report"


def test_probe_missing_libllvm_keeps_first_line(tmp_path: Path) -> None:
    msg = ("lld: error while loading shared libraries: libLLVM-14jl.so: cannot open shared object file: "
           "No such file or directory")
    found = probe(LldCandidate(fake_lld(tmp_path / "lld", f'echo "{msg}" >&2; exit 127'), "PATH", {}, "generic"))
    assert found.problem == f"crashed (exit status 127) running --version: {msg} (its libLLVM is not on the library path)"


def test_probe_other_problems(tmp_path: Path) -> None:
    assert probe(LldCandidate(tmp_path / "nope", "explicit", {}, "generic")).problem == "does not exist"
    plain = write(tmp_path / "plain/lld", "#!/bin/sh\necho LLD 19.1.0\n")  # not chmod +x
    assert probe(LldCandidate(plain, "PATH", {}, "generic")).problem.startswith("is not executable")  # type: ignore[union-attr]
    junk = write(tmp_path / "junk/lld", "\x00\x01garbage")
    junk.chmod(0o755)
    assert probe(LldCandidate(junk, "PATH", {}, "generic")).problem.startswith("cannot be started")  # type: ignore[union-attr]
    chatty = fake_lld(tmp_path / "chatty/lld", "echo hello")
    assert probe(LldCandidate(chatty, "PATH", {}, "generic")).problem == "printed no LLD version: hello"


def test_probe_uses_candidate_env(tmp_path: Path) -> None:
    """A bundled lld that only runs with Julia's library path, as in JuliaLang/julia#51221."""
    home = make_tree(tmp_path / "julia")
    fake_lld(home / "libexec/julia/lld", 'case "$LD_LIBRARY_PATH" in */lib/julia:*) echo "LLD 16.0.6";; '
                                         '*) echo "libLLVM-16jl.so: cannot open shared object file" >&2; exit 127;; esac')
    cand = next(candidates(julia_home=home, environ={"PATH": ""}))
    assert probe(cand).version == (16, 0, 6)
    bare = probe(LldCandidate(cand.path, "PATH", {"LD_LIBRARY_PATH": ""}, "generic"), environ={})
    assert bare.problem is not None and "libLLVM-16jl.so" in bare.problem


def test_probe_runs_once_per_binary(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    lld = fake_lld(tmp_path / "lld", f'echo run >> "{counter}"; echo "LLD 18.1.8"')
    cand = LldCandidate(lld, "PATH", {}, "generic")
    assert probe(cand).version == probe(LldCandidate(lld, "julia", {}, "generic")).version == (18, 1, 8)
    assert counter.read_text().count("run") == 1
    assert probe(LldCandidate(lld, "julia", {}, "generic")).candidate.source == "julia"
    fake_lld(lld, f'echo run >> "{counter}"; echo "LLD 18.1.8 rebuilt"')  # size changes: probe again
    probe(cand)
    assert counter.read_text().count("run") == 2


@needs_real_lld
def test_real_lld_19(tmp_path: Path) -> None:
    for name, kind in [("lld", "generic"), ("ld.lld", "ld.lld"), ("ld64.lld", "ld64.lld"), ("lld-link", "lld-link")]:
        link = tmp_path / name
        link.symlink_to(REAL_LLD)
        found = probe(LldCandidate(link, "PATH", {}, driver_of(link)))
        assert found.candidate.driver == kind
        assert found.usable and found.version is not None and found.version[0] == 19, found


@needs_real_lld
def test_real_generic_driver_message(tmp_path: Path) -> None:
    link = tmp_path / "lld"
    link.symlink_to(REAL_LLD)
    found = probe(LldCandidate(link, "PATH", {}, "ld.lld"))  # wrong kind on purpose: no -flavor is passed
    assert found.problem is not None and found.problem.startswith("refused to run as a generic driver")
    assert "lld is a generic driver." in found.problem


# -- choosing ----------------------------------------------------------------------------------------------

def test_find_lld_skips_old_and_broken(tmp_path: Path, no_llvm_folders: None) -> None:
    fake_lld(tmp_path / "a/lld", 'echo "LLD 13.0.1"')
    fake_lld(tmp_path / "b/lld-17", "exit 3")
    good = fake_lld(tmp_path / "b/lld-14", 'echo "LLD 14.0.6"')
    found = find_lld(environ={"PATH": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"})
    assert found.candidate.path == good and found.version == (14, 0, 6)


def test_unusable_explicit_is_an_error(tmp_path: Path, no_llvm_folders: None) -> None:
    old = fake_lld(tmp_path / "old/lld", 'echo "LLD 13.0.1"')
    fake_lld(tmp_path / "bin/lld", 'echo "LLD 19.1.7"')
    environ = {"PATH": str(tmp_path / "bin")}
    with pytest.raises(LldNotFoundError, match=r"--lld .*old/lld cannot be used: LLD 13\.0\.1 is older than 14"):
        find_lld(explicit=old, environ=environ)
    with pytest.raises(LldNotFoundError, match="does not exist"):
        find_lld(explicit=tmp_path / "missing", environ=environ)
    # the same file in PYLINKJL_LLD only warns and the search goes on
    assert find_lld(environ={**environ, "PYLINKJL_LLD": str(old)}).candidate.path == tmp_path / "bin/lld"


def test_flavor_decides_between_named_drivers(tmp_path: Path, no_llvm_folders: None) -> None:
    fake_lld(tmp_path / "bin/ld.lld", 'echo "LLD 19.1.7"')
    ld64 = fake_lld(tmp_path / "bin/ld64.lld", 'echo "LLD 19.1.7"')
    environ = {"PATH": str(tmp_path / "bin")}
    assert find_lld(flavor="gnu", environ=environ).candidate.driver == "ld.lld"
    found = find_lld(flavor="darwin", environ=environ)
    assert found.candidate.path == ld64 and flavor_args(found.candidate, "darwin") == []
    with pytest.raises(LldNotFoundError, match="--lld .* cannot be used: ld.lld cannot link -flavor darwin"):
        find_lld(explicit=tmp_path / "bin/ld.lld", flavor="darwin", environ=environ)


def test_not_found_lists_every_candidate(tmp_path: Path, no_llvm_folders: None) -> None:
    fake_lld(tmp_path / "bin/lld", 'echo "LLD 13.0.1"')
    fake_lld(tmp_path / "bin/ld.lld", 'echo "LLD 19.1.7"')
    with pytest.raises(LldNotFoundError) as err:
        find_lld(flavor="darwin", environ={"PATH": str(tmp_path / "bin")})
    text = str(err.value)
    assert "no usable LLD for -flavor darwin" in text
    assert f"1. {tmp_path}/bin/lld (PATH, generic): LLD 13.0.1 is older than 14" in text
    assert f"2. {tmp_path}/bin/ld.lld (PATH, ld.lld): ld.lld cannot link -flavor darwin" in text
    assert "apt-get install lld-19" in text and "--lld PATH" in text and "PYLINKJL_LLD" in text
    assert err.value.exit_code == 4
    with pytest.raises(LldNotFoundError, match="Nothing found"):
        find_lld(environ={"PATH": str(tmp_path / "empty")})


@needs_real_lld
def test_find_real_lld_in_llvm_folder() -> None:
    found = find_lld(environ={"PATH": ""})
    assert found.candidate.source == "llvm-folder" and found.version is not None and found.version[0] >= 19


def test_describe_and_notes(tmp_path: Path) -> None:
    found = probe(LldCandidate(fake_lld(tmp_path / "lld", 'echo "LLD 14.0.6"'), "PATH", {"X": "1"}, "generic"))
    assert describe([found]) == [{"source": "PATH", "path": str(tmp_path / "lld"), "kind": "generic",
                                  "version": "14.0.6", "usable": True, "problem": None, "env": {"X": "1"}}]
    assert any("fixup_chains" in n for n in version_notes(found, Target("macos", "aarch64")))
    win = version_notes(found, Target("windows", "x86_64"))
    assert any("--entry=" in n for n in win) and any("pseudo-relocations" in n for n in win)
    assert version_notes(found, Target("linux", "x86_64")) == []

