"""Golden command lines: every (Julia line x target), host-independent, against fake Julia trees and
against generated stubs. The golden files are reviewed against docs/julia-linking.md §1.3-§1.5;
regenerate them with ``PYLINKJL_REGEN_GOLDEN=1 pytest tests/test_golden_argv.py`` after a deliberate change
and read the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pylinkjl.link.host import HostFacts
from pylinkjl.link.lld import LldCandidate, LldProbe
from pylinkjl.link.plan import LinkRequest, plan_link
from pylinkjl.link.toolchain import line_names
from pylinkjl.resources import data_dir
from pylinkjl.target import ALL_TARGETS, Target

from .fake_julia import make_fake_julia

GOLDEN = Path(__file__).parent / "golden"
ARCHIVES = Path(__file__).parent / "data" / "archives"
VERSION_OF_LINE = {"1.9.0": "1.9.4", "1.10.0": "1.10.0", "1.10.1": "1.10.2", "1.10.4": "1.10.9", "1.11": "1.11.7",
                   "1.12": "1.12.1", "1.13.0-rc1": "1.13.0-rc1", "release-1.13": "1.13.0", "master": "1.14.0-DEV"}


def normalize(argv: tuple[str, ...], replacements: dict[str, str]) -> str:
    text = "\n".join(argv)
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text + "\n"


def check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("PYLINKJL_REGEN_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with PYLINKJL_REGEN_GOLDEN=1 and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


def sample(target: Target) -> Path:
    return ARCHIVES / f"1.11-{target.name}.a"


# Made-up facts about the machine: no LLD runs, nothing is read from this process, nothing is monkeypatched.
FAKE_LLD = LldProbe(LldCandidate(Path("/opt/llvm/bin/lld"), "PATH"), (19, 1, 7), "LLD 19.1.7", None)
LOADED = {"libc": Path("/lib/LOADED/libc.so.6"), "dynamic_loader": Path("/lib/LOADED/ld.so.2")}


def host(target: Target, tmp_path: Path) -> HostFacts:
    """Julia runs on its own OS: the target is the host, with the libc and loader it has loaded."""
    return HostFacts(lld=FAKE_LLD, target=target, loaded=LOADED, cache_root=tmp_path / "cache")


@pytest.mark.parametrize("line", line_names())
@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_golden_with_julia_tree(line: str, target: Target, tmp_path: Path) -> None:
    home = make_fake_julia(tmp_path / "julia", target, VERSION_OF_LINE[line])
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "out" / f"AbCdE_FgHiJ.{target.dlext}",
                          target=target, julia_version=line, julia_home=home, macos_version="13.3.1",
                          macos_sdk="13.3", staging_token="STAGE")
    plan = plan_link(request, host=host(target, tmp_path))
    text = normalize(plan.argv[1:], {str(home): "<JULIA>", str(sample(target)): "<IN>",
                                     str(tmp_path / "out"): "<OUT>", str(data_dir("stubs")): "<PYLINKJL_STUBS>"})
    check(f"{line}/{target.name}.tree.txt", text)


@pytest.mark.parametrize("line", line_names())
@pytest.mark.parametrize("target", ALL_TARGETS, ids=str)
def test_golden_with_stubs(line: str, target: Target, tmp_path: Path) -> None:
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "out" / f"AbCdE_FgHiJ.{target.dlext}",
                          target=target, julia_version=line, staging_token="STAGE")
    plan = plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))
    assert plan.stub_dir is not None
    text = normalize(plan.argv[1:], {str(plan.stub_dir): "<STUBS>", str(sample(target)): "<IN>",
                                     str(tmp_path / "out"): "<OUT>", str(data_dir("stubs")): "<PYLINKJL_STUBS>"})
    check(f"{line}/{target.name}.stubs.txt", text)


def test_planning_with_host_facts_starts_no_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given HostFacts the planner is pure: it starts nothing and reads nothing of this process."""
    import subprocess

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the planner started a process")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr("pylinkjl.link.libraries.loaded_libraries", forbidden)
    target = Target("linux", "x86_64")
    request = LinkRequest(inputs=(sample(target),), output=tmp_path / "x.so", target=target, julia_version="1.12")
    plan = plan_link(request, host=HostFacts(lld=FAKE_LLD, cache_root=tmp_path / "cache"))
    assert plan.argv[0] == "/opt/llvm/bin/lld" and plan.stubs is not None
    assert not (tmp_path / "cache").exists()  # nothing is built or written while planning
