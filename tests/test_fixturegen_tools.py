"""The fixture generator with real LLVM tools: byte-exact regeneration of the committed archives, the
symbol tables llvm-nm reads back, and the errors when a tool is missing or fails."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fixturegen import (
    FixtureSpec,
    ToolFailedError,
    ToolNotFoundError,
    Tools,
    find_tools,
    generate_archive,
)
from fixturegen.catalog import MANIFEST, committed_specs, load_manifest, regenerate
from pylinkjl.process import run_process
from pylinkjl.target import Target, parse_target

from .toolnames import CLANG, LLC, LLVM_AR, LLVM_FOLDER, LLVM_NM

REPO = Path(__file__).resolve().parent.parent
MANIFEST_DATA = load_manifest(REPO)
LLVM_NM = shutil.which(LLVM_NM)
HAVE_LLC = shutil.which(LLC) is not None and shutil.which(LLVM_AR) is not None


def _tools_or_skip() -> Tools:
    try:
        tools = find_tools()
    except ToolNotFoundError as err:
        pytest.skip(str(err))
    if tools.llvm_version.split(".")[0] != MANIFEST_DATA["llvm_version"].split(".")[0]:
        pytest.skip(f"committed archives were made with LLVM {MANIFEST_DATA['llvm_version']}, "
                    f"this machine has {tools.llvm_version}")
    return tools


def test_regeneration_reproduces_the_committed_bytes(tmp_path: Path) -> None:
    tools = _tools_or_skip()
    (tmp_path / "tests").mkdir()
    manifest = regenerate(tmp_path, tools=tools)
    assert manifest["archives"] == MANIFEST_DATA["archives"]
    for rel in committed_specs():
        assert (tmp_path / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    if tools.llvm_version == MANIFEST_DATA["llvm_version"]:
        assert (tmp_path / MANIFEST).read_bytes() == (REPO / MANIFEST).read_bytes()


# -- symbols as llvm-nm reads them from each member ------------------------------------------------
_NM_LINE = re.compile(r"^(?:[0-9a-fA-F]+)?\s+([A-Za-z?-])\s+(\S+)$")
# What compilers add on their own and the manifest leaves out.
_GENERATED = re.compile(r"^(\.refptr\..*|@feat\.00|ltmp\d+|l_.*|\.L.*|__imp_.*|\.text|\.data|\.bss|\.rdata|"
                        r"\.xdata|\.pdata|\.drectve|\.file)$")


def _unmangle(name: str, target: Target) -> str:
    if target.format == "coff" and name.startswith("__imp_"):
        return "__imp_" + _unmangle(name[6:], target)
    if name in ("__DllMainCRTStartup@12",):
        return "_DllMainCRTStartup"
    return name.removeprefix(target.symbol_prefix)


def _nm(archive: Path, target: Target) -> dict[str, dict[str, set[str]]]:
    assert LLVM_NM is not None
    done = run_process([LLVM_NM, str(archive)], timeout=60)
    assert done.returncode == 0, done.output
    out: dict[str, dict[str, set[str]]] = {}
    current: dict[str, set[str]] = {}
    for line in done.output.splitlines():
        if line.endswith(":") and "(" not in line:
            current = out.setdefault(line[:-1].split(":")[0].strip(), {"global": set(), "local": set(),
                                                                       "undefined": set()})
            continue
        m = _NM_LINE.match(line)
        if not m:
            continue
        kind, raw = m.groups()
        name = _unmangle(raw, target)
        if _GENERATED.match(raw) or _GENERATED.match(name):
            if raw.startswith("__imp_") and kind == "U":  # a dllimport reference: the symbol itself is needed
                current["undefined"].add(name[6:])
            continue
        if kind == "U":
            current["undefined"].add(name)
        elif kind.isupper():
            current["global"].add(name)
        else:
            current["local"].add(name)
    return out


@pytest.mark.skipif(LLVM_NM is None, reason="llvm-nm-19 is not installed")
@pytest.mark.parametrize("rel", list(MANIFEST_DATA["archives"]))
def test_members_define_what_the_manifest_says(rel: str) -> None:
    entry = MANIFEST_DATA["archives"][rel]
    target = parse_target(entry["target"])
    seen = _nm(REPO / rel, target)
    assert list(seen) == entry["members"]
    for member, expected in entry["member_symbols"].items():
        got = seen[member]
        assert got["global"] == set(expected["exported"]) | set(expected["global"]), member
        assert set(expected["local"]) <= got["local"], member
        assert got["undefined"] == set(expected["undefined"]), member


@pytest.mark.skipif(LLVM_NM is None, reason="llvm-nm-19 is not installed")
@pytest.mark.parametrize("rel", [r for r, e in MANIFEST_DATA["archives"].items()
                                 if e["target"] in ("macos-aarch64", "windows-i686")])
def test_prefixed_targets_carry_underscores(rel: str) -> None:
    done = run_process([LLVM_NM, "--defined-only", str(REPO / rel)], timeout=60)
    names = {line.split()[-1] for line in done.output.splitlines() if len(line.split()) == 3}
    assert "_pkg_answer" in names and "pkg_answer" not in names
    if "windows" in rel:
        assert "__DllMainCRTStartup@12" in names


# -- failures ------------------------------------------------------------------------------------
def test_missing_tools_are_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    for var in ("PYLINKJL_LLC", "PYLINKJL_CLANG", "PYLINKJL_LLVM_AR"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ToolNotFoundError, match="llc \\(or clang\\) and llvm-ar") as info:
        find_tools()
    assert info.value.exit_code == 4 and LLVM_FOLDER in str(info.value)


@pytest.mark.skipif(not HAVE_LLC, reason="llc-19 / llvm-ar-19 not installed")
def test_a_failing_compiler_leaves_nothing_behind(tmp_path: Path) -> None:
    tools = find_tools()
    broken = Tools(shutil.which("false") or "/bin/false", "llc", tools.llvm_ar, tools.llvm_version)
    out = tmp_path / "x.a"
    with pytest.raises(ToolFailedError, match="false failed with exit code 1") as info:
        generate_archive(FixtureSpec(Target("linux", "x86_64"), "1.10"), out, tools=broken)
    assert info.value.exit_code == 5
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not HAVE_LLC, reason="llc-19 / llvm-ar-19 not installed")
def test_clang_can_stand_in_for_llc(tmp_path: Path) -> None:
    clang = shutil.which(CLANG)
    if clang is None:
        pytest.skip("clang-19 is not installed")
    tools = find_tools()
    via_clang = Tools(clang, "clang", tools.llvm_ar, tools.llvm_version)
    out = generate_archive(FixtureSpec(Target("macos", "x86_64"), "1.13"), tmp_path / "c.a", tools=via_clang)
    assert _nm(out, Target("macos", "x86_64"))["metadata.o"]["global"] >= {"jl_image_pointers"}
