"""The real Julia 1.13.1 runtime as the judge (``verify --runtime``): images pylinkjl links on the release-1.13
line from multi-versioned generated archives pass every check of the runtime's native loader and stop only
at the generated heap; incompatible target lists are refused, and inspect's CPU verdict agrees with the
runtime's in every case; a 1.12-layout image is refused with the runtime's own message, a stock 1.12-line one
already at dlopen. Images linked with no tree (stub libraries) bind every import, with its symbol version, in
the real runtime. Natively (Linux x86_64), under Wine (Windows x86_64) and under qemu-aarch64 (Linux aarch64).

The runtime comes from tests/realruntime.py (PyPI's juliac wheels); their trees have no lib/julia/sys.*, so
the juliac library of the same wheel is the system image. Generated heaps carry the version 1.13.0: the
header check then refuses them with its message (with 1.13.1 the check reads Base.GIT_VERSION_INFO, which the
trimmed juliac system image lacks, and the 1.13.1 runtime dies of SIGSEGV: see docs/real-runtime-judge.md).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.binfmt.symversions import with_needed_version
from pylinkjl.caches.inspection import inspect_image
from pylinkjl.caches.verdict import Session
from pylinkjl.cli import main
from pylinkjl.cpu.sysimage import read_sysimage
from pylinkjl.errors import InputError
from pylinkjl.images.judge import JudgeResult, judge_with_runtime
from pylinkjl.images.judge.loader import build_loader
from pylinkjl.images.judge.result import parse_output
from pylinkjl.images.judge.run import plan_runner
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from .elffacts import elf_facts, version_definitions
from .realdata import require_real
from .realruntime import default_cache, require_runtime

PLATFORM = {"linux-x86_64": "manylinux_2_28_x86_64", "windows-x86_64": "win_amd64",
            "linux-aarch64": "manylinux_2_28_aarch64", "macos-aarch64": "macosx_11_0_arm64"}
HEADER_REFUSAL = "Precompile file header verification checks failed."
NATIVE = ("dlopen", "rtld", "unpack", "cpu-target", "shards")

# Several target lists per architecture: clone_all, base(n), feature exclusions; all of them load on any CPU
# that runs the tests (a generic first target), except where a test says otherwise.
X86_LISTS = ("generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)",
             "generic;haswell,clone_all;skylake,base(1)",
             "generic,clone_all;nehalem,base(0);sandybridge,-avx,base(0)")
ARM_LISTS = ("generic;cortex-a57;thunderx2t99,clone_all", "generic;neoverse-n1,clone_all;cortex-a76,base(1)")


@pytest.fixture(scope="module", autouse=True)
def wineprefix() -> Iterator[None]:
    """One Wine prefix for every run of the suite (creating one takes about 20 s), beside the runtime cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYLINKJL_WINEPREFIX", os.environ.get("PYLINKJL_WINEPREFIX") or str(default_cache() / "wineprefix"))
        yield


def tree(platform: str) -> tuple[Path, Path]:
    """(runtime tree, its juliac library as the system image)."""
    info = require_runtime(PLATFORM[platform])
    return Path(info["libjulia"]).parent.parent, Path(info["image"])  # <tree>/lib/libjulia*, <tree>/bin/libjulia.dll


Build = Callable[..., Path]


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    root = tmp_path_factory.mktemp("judge-images")
    made: dict[tuple[str, str, str, str | None, str | None], Path] = {}

    def get(target: str, cpu: str, layout: str = "1.13", heap_version: str | None = None,
            line: str | None = None) -> Path:
        """An image of ``layout`` linked with no tree (stub libraries) by the command of ``line`` (default: the
        layout's own line)."""
        key = (target, cpu, layout, heap_version, line)
        if key not in made:
            t = parse_target(target)
            version, own_line = ("1.13.0", "release-1.13") if layout == "1.13" else ("1.12.1", "1.12")
            version, line = heap_version or version, line or own_line
            spec = FixtureSpec(t, layout=layout, cpu_targets=tuple(cpu.split(";")), nshards=2, nfuncs=12,  # type: ignore[arg-type]
                               ngvars=8, julia_version=version)
            name = f"img{len(made)}"
            archive = generate_archive(spec, root / f"{name}.a")
            made[key] = root / f"{name}.{t.dlext}"
            link_image(archive, made[key], target=t, julia_version=line)
        return made[key]

    return get


def judge(image: Path, platform: str, **kw: object) -> JudgeResult:
    home, sysimage = tree(platform)
    result = judge_with_runtime(image, home, sysimage=sysimage, **kw)  # type: ignore[arg-type]
    assert result.applicable, result.reason
    assert result.julia_version == "1.13.1", result.output
    return result


def assert_native_ok(result: JudgeResult) -> None:
    """Every native check passed; the runtime stopped at the generated heap, with its own words."""
    assert result.outcome == "refused" and result.stopped_at == "heap", (result.render(), result.output)
    assert result.message == HEADER_REFUSAL
    assert [s.name for s in result.stages if s.status == "passed"] == ["boot", *NATIVE]
    assert result.stage("heap").status == "failed" and result.native_ok and not result.accepted
    assert result.clones["verdict"] == "accepted"


def cpu_agrees(image: Path, result: JudgeResult, cpu_target: str = "native") -> None:
    """inspect's verdict (caches/verdict.py) for the same session (this CPU, -C, the same system image)
    against the runtime's: the same yes/no, and when no target fits, the same reason for every target."""
    assert result.sysimage is not None
    ours = inspect_image(image, Session(cpu_target=cpu_target, sysimage=read_sysimage(result.sysimage)))["cpu"]
    theirs = result.stage("cpu-target").status == "passed"
    assert ours["ok"] is theirs, (ours, result.render())
    assert (result.clones["verdict"] == "accepted") is theirs
    if not theirs:
        assert [(t["index"], t["name"], t["reason"]) for t in ours["targets"]] == \
            [(t["index"], t["name"], t["reason"]) for t in result.targets]


# -- Linux x86_64, natively ------------------------------------------------------------------------------

@pytest.mark.parametrize("cpu", X86_LISTS)
def test_linux_x86_64_images_pass_every_native_check(build: Build, cpu: str) -> None:
    image = build("linux-x86_64", cpu)
    result = judge(image, "linux-x86_64")
    assert result.runner == "native" and result.host_cpu and result.host_features
    assert_native_ok(result)
    cpu_agrees(image, result)


@pytest.mark.parametrize(("cpu", "session", "accepted"), [
    ("haswell;skylake,clone_all", "sandybridge", False),  # AVX2 targets on an AVX session
    ("haswell;skylake,clone_all", "haswell", True),
    ("nehalem;sandybridge,clone_all", "core2", False),
    ("generic;haswell,clone_all", "core2", True),  # the generic target fits any session
])
def test_target_lists_against_a_session_cpu(build: Build, cpu: str, session: str, accepted: bool) -> None:
    """The session's -C (jl_parse_opts) decides; the runtime and inspect -C agree, reasons included."""
    image = build("linux-x86_64", cpu)
    result = judge(image, "linux-x86_64", cpu_target=session)
    cpu_agrees(image, result, session)
    if accepted:
        assert_native_ok(result)
    else:
        assert result.outcome == "thrown" and result.stopped_at == "cpu-target", result.render()
        assert result.message.startswith("Unable to find compatible target in cached code image.\nTarget 0 (")
        assert [s.status for s in result.stages[:5]] == ["passed"] * 4 + ["failed"]
        assert {t["reason"] for t in result.targets} == {"Rejecting this target due to use of runtime-disabled features"}


def test_a_session_julia_cannot_start_is_refused_at_boot_by_both(build: Build) -> None:
    """-C x86-64-v3 is no CPU name of Julia 1.13.1: its JIT target has no features, and the CX16 rule stops the
    boot. inspect, told the same system image, says Julia does not start, in the runtime's words."""
    image = build("linux-x86_64", "haswell;skylake,clone_all")
    result = judge(image, "linux-x86_64", cpu_target="x86-64-v3")
    assert result.outcome == "boot-failed" and result.exit_code == 1
    assert result.sysimage is not None
    ours = inspect_image(image, Session(cpu_target="x86-64-v3", sysimage=read_sysimage(result.sysimage)))["cpu"]
    assert ours["ok"] is False and ours["sysimage"]["starts"] is False
    assert result.message is not None and result.message in ours["message"]
    assert result.message.startswith("Your CPU does not support the CX16 instruction")


def test_a_target_list_this_cpu_cannot_run_is_refused(build: Build) -> None:
    """znver4 needs AMD-only features (sse4a, ...): refused on this machine unless it is a Zen 4 or newer;
    whichever it is, inspect says the same as the runtime."""
    image = build("linux-x86_64", "znver4;znver4,-avx512f,clone_all")
    result = judge(image, "linux-x86_64")
    cpu_agrees(image, result)
    if result.stage("cpu-target").status == "failed":
        assert "Unable to find compatible target in cached code image" in (result.message or "")


def test_a_1_12_layout_image_is_refused_with_the_runtimes_message(build: Build) -> None:
    """A stock 1.12-line image needs libjulia.so.1.12, which a 1.13 tree does not have (as the real 1.10.10 image
    needs libjulia.so.1.10); linked with the 1.13 command, the 1.12 layout loads and the unpacker refuses it."""
    result = judge(build("linux-x86_64", X86_LISTS[0], "1.11"), "linux-x86_64")
    assert result.stopped_at == "dlopen" and "libjulia.so.1.12: cannot open shared object file" in result.message
    result = judge(build("linux-x86_64", X86_LISTS[0], "1.11", line="release-1.13"), "linux-x86_64")
    assert result.outcome == "thrown" and result.stopped_at == "unpack"
    assert result.message.startswith('could not load symbol "jl_image_unpack":')
    assert [s.status for s in result.stages[:4]] == ["passed", "passed", "passed", "failed"]  # RTLD check passed
    assert result.clones == {}  # another version's target list is never shown to jl_check_pkgimage_clones


def test_without_a_handler_the_child_dies_and_the_runtime_report_is_read(build: Build) -> None:
    """An error thrown with no handler ends the child (exit 1): the runtime's own report of it is the answer."""
    result = judge(build("linux-x86_64", X86_LISTS[0], "1.11", line="release-1.13"), "linux-x86_64", handler=False)
    assert result.exit_code == 1 and result.outcome == "thrown" and result.stopped_at == "unpack"
    assert "fatal: error thrown and no exception handler available." in result.output
    assert result.message.startswith('could not load symbol "jl_image_unpack":')


def test_real_images() -> None:
    """The juliac library itself (a real 1.13.1 image) passes the native checks; a real 1.10.10 image is refused
    at dlopen (its libjulia.so.1.10 is not there); a real 1.9 one at the RTLD check."""
    _, sysimage = tree("linux-x86_64")
    own = judge(sysimage, "linux-x86_64")
    assert_native_ok(own)
    assert not [a for a in own.adapted if a.startswith("symbol version")]  # it needs the tree's own node
    real = require_real()
    glob_110 = real / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.so"
    result = judge(glob_110, "linux-x86_64")
    assert result.stopped_at == "dlopen" and "libjulia.so.1.10: cannot open shared object file" in result.message
    adapt_19 = next((real / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Adapt").glob("*.so"))
    result = judge(adapt_19, "linux-x86_64")
    assert result.stopped_at == "rtld"
    assert result.message == "Image file failed consistency check: maybe opened the wrong version?"


def test_a_stub_linked_image_binds_every_import_in_the_real_runtime(build: Build, tmp_path: Path) -> None:
    """A release-1.13 image linked with no tree needs what a stock 1.13 image needs: the sonames the tree's own
    version definitions name (libjulia.so.1.13, libjulia-internal.so.1.13) and the node JL_LIBJULIA_1.13. The
    wheel's runtime is privatised (JuliaC renamed the node), so the judge runs a copy stamped as JuliaC stamps
    the tree's own product. With LD_BIND_NOW=1 every import is bound when Julia opens the image (as RTLD_NOW):
    the runtime opens it and every native check passes (an image calling a function the runtime lacks is refused
    there). Renamed to a node the runtime lacks, it is refused at dlopen in glibc's words: the symbol version
    really is checked."""
    info = require_runtime(PLATFORM["linux-x86_64"])
    stock = [version_definitions(Path(info[key]))[0] for key in ("libjulia", "libjulia_internal")]
    (own,) = version_definitions(Path(info["libjulia"]))[1]
    salt = Path(info["libjulia"]).name.split("_libjulia")[0]
    stock_node = own.replace(f"JL_{salt}_", "JL_LIBJULIA_")  # what JuliaC's version stamp replaced
    image = build("linux-x86_64", X86_LISTS[0])
    needed, imports = elf_facts(image)
    assert needed[:2] == stock
    assert {version for lib, version in imports.values() if lib in stock} == {stock_node} != {own}
    bind_now = {**os.environ, "LD_BIND_NOW": "1"}
    result = judge(image, "linux-x86_64", environ=bind_now)
    assert_native_ok(result)
    assert f"symbol version {stock_node} -> {own} (the tree's privatised node) in a copy of the image" in result.adapted
    # LD_BIND_NOW binds functions too: the 1.12 layout calls jl_f__call_latest, which 1.13 no longer has
    stale = judge(build("linux-x86_64", X86_LISTS[0], "1.11", line="release-1.13"), "linux-x86_64", environ=bind_now)
    assert stale.stopped_at == "dlopen" and "undefined symbol: jl_f__call_latest" in (stale.message or "")
    other = tmp_path / image.name
    renamed = with_needed_version(image.read_bytes(), str(image), "JL_LIBJULIA_1.13", "JL_LIBJULIA_1.12")
    assert renamed is not None
    other.write_bytes(renamed)
    result = judge(other, "linux-x86_64")
    assert result.stopped_at == "dlopen" and "version `JL_LIBJULIA_1.12' not found" in (result.message or ""), \
        result.output


def test_a_crash_in_the_runtime_is_located(build: Build) -> None:
    """A heap whose header names 1.13.1 gets past the version check; the next check reads Base.GIT_VERSION_INFO,
    which the trimmed juliac system image lacks, and the real runtime dies of SIGSEGV. The loader's fault
    handler names the exported functions on the stack: the heap header check, so every native check passed."""
    result = judge(build("linux-x86_64", X86_LISTS[0], heap_version="1.13.1"), "linux-x86_64")
    assert result.outcome == "crashed" and result.signal == "SIGSEGV" and result.stopped_at == "heap", result.render()
    assert "ijl_read_verify_header" in result.fault_frames and result.native_ok
    assert "died of SIGSEGV" in (result.message or "")


def test_a_bad_system_image_fails_the_boot_with_the_runtimes_message(build: Build) -> None:
    home, _ = tree("linux-x86_64")
    result = judge_with_runtime(build("linux-x86_64", X86_LISTS[0]), home, sysimage=home / "lib" / "julia" /
                                "libz.so.1")
    assert result.outcome == "boot-failed" and result.stopped_at == "boot" and result.exit_code == 1
    assert "failed consistency check" in (result.message or ""), result.output
    assert all(s.status == "not_reached" for s in result.stages[1:])


def test_inputs_are_checked_before_anything_runs(build: Build, tmp_path: Path) -> None:
    home, sysimage = tree("linux-x86_64")
    with pytest.raises(InputError, match="no system image"):
        judge_with_runtime(build("linux-x86_64", X86_LISTS[0]), home)
    with pytest.raises(InputError, match="no such file"):
        judge_with_runtime(tmp_path / "missing.so", home, sysimage=sysimage)
    with pytest.raises(InputError, match="not a Julia (runtime )?tree"):
        judge_with_runtime(sysimage, tmp_path, sysimage=sysimage)


def test_a_runtime_that_does_not_finish_is_killed(build: Build) -> None:
    """The child runs through pylinkjl.process: at the timeout its process group is killed and the result says
    so (the loader is built before the clock starts)."""
    image = build("linux-x86_64", X86_LISTS[0])
    build_loader("linux-x86_64")
    home, sysimage = tree("linux-x86_64")
    result = judge_with_runtime(image, home, sysimage=sysimage, timeout=0.02)
    assert result.outcome == "timed-out" and result.exit_code == -9 and result.seconds < 5
    assert result.message == "the runtime did not finish in time"


def test_the_loader_is_built_once_per_content() -> None:
    first = build_loader("linux-x86_64")
    again = build_loader("linux-x86_64")
    assert again.path == first.path and not again.built and os.access(first.path, os.X_OK)


def test_cli_verify_runtime(build: Build) -> None:
    home, sysimage = tree("linux-x86_64")
    image = build("linux-x86_64", X86_LISTS[0])
    runner = CliRunner()
    done = runner.invoke(main, ["verify", str(image), "--runtime", str(home), "--sysimage", str(sysimage)])
    assert done.exit_code == 7, done.output
    assert "ok   runtime-rtld" in done.output and "FAIL runtime-heap" in done.output and HEADER_REFUSAL in done.output
    done = runner.invoke(main, ["verify", str(image), "--runtime", str(home), "--sysimage", str(sysimage), "--json",
                                "-C", "sandybridge"])
    report = json.loads(done.output)
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["runtime-cpu-target"] == "passed" and checks["runtime-heap"] == "failed"
    assert report["image"]["runtime_judge"]["cpu_target"] == "sandybridge"
    done = runner.invoke(main, ["verify", str(image), "--runtime", str(home)])
    assert done.exit_code == 3 and "--sysimage" in done.output
    done = runner.invoke(main, ["verify", str(image), "--sysimage", str(sysimage)])
    assert done.exit_code == 2


# -- Windows x86_64 under Wine, Linux aarch64 under qemu ---------------------------------------------------

@pytest.mark.parametrize("platform", ["windows-x86_64", "linux-aarch64"])
def test_foreign_platforms(build: Build, platform: str) -> None:
    """The same judge under Wine and qemu-aarch64: every native check passes, an incompatible list is refused
    and inspect agrees (on the CPU the emulated runtime sees), a 1.12-layout image is refused (on Linux linked with
    the 1.13 command: the 1.12 line's names are not in a 1.13 tree; Windows DLL names carry no version)."""
    lists = X86_LISTS[:2] if platform.startswith("windows") else ARM_LISTS
    for cpu in lists:
        image = build(platform, cpu)
        result = judge(image, platform)
        assert result.runner == ("wine64" if platform.startswith("windows") else "qemu-aarch64")
        assert_native_ok(result)
        if platform.startswith("windows"):  # Wine runs on this very CPU: inspect's host is the runtime's
            cpu_agrees(image, result)
    refused, session = (("haswell;skylake,clone_all", "sandybridge") if platform.startswith("windows") else
                        ("neoverse-v1;neoverse-v1,clone_all", "cortex-a57"))
    result = judge(build(platform, refused), platform, cpu_target=session)
    assert result.stopped_at == "cpu-target", result.render()
    assert result.message.startswith("Unable to find compatible target in cached code image.\nTarget 0 (")
    if platform.startswith("windows"):  # on this very CPU: the Wine runtime sees the host's
        cpu_agrees(build(platform, refused), result, session)
    result = judge(build(platform, X86_LISTS[0] if platform.startswith("windows") else ARM_LISTS[0], "1.11",
                         line=None if platform.startswith("windows") else "release-1.13"), platform)
    assert result.stopped_at == "unpack" and 'could not load symbol "jl_image_unpack"' in result.message


def test_a_macos_runtime_is_not_applicable_here(build: Build) -> None:
    home, sysimage = tree("macos-aarch64")
    result = judge_with_runtime(build("linux-x86_64", X86_LISTS[0]), home, sysimage=sysimage)
    assert not result.applicable and result.outcome == "not-applicable"
    assert "cannot run on a Linux host" in result.reason
    assert [c.status for c in result.checks()] == ["not_applicable"]
    assert plan_runner("windows-i686", "linux-x86_64").reason.startswith("no way to run")
    assert plan_runner("linux-x86_64", "macos-aarch64").reason.startswith("the runtime judge runs on Linux")
    if shutil.which("wine64") is None and not Path("/usr/lib/wine/wine64").exists():
        pytest.fail("CI installs Wine")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from([
    '@@judge initialized "yes"', '@@judge stage "restore"', '@@judge thrown "ErrorException"',
    '@@judge thrown-message "Unable to find compatible target in cached code image.\\nTarget 0 (x): y"',
    '@@judge returned "ErrorException"', '@@judge returned-message "Precompile', '@@judge clones "rejected"',
    '@@judge backtrace "begin"', "fatal: error thrown and no exception handler available.", 'ErrorException("a\\n',
    "Features: a, b", "ERROR: x", '@@judge fault "SIGSEGV"'])), max_size=12), st.integers(-15, 3), st.booleans())
def test_any_child_output_gives_a_result(lines: list[str], returncode: int, timed_out: bool) -> None:
    """Whatever the child printed (cut short, garbled, interleaved), reading it gives a result, never an error."""
    result = parse_output(JudgeResult("x.so", {}, None, "linux-x86_64", "native"), "\n".join(lines), returncode,
                          timed_out)
    assert [s.name for s in result.stages] == ["boot", "dlopen", "rtld", "unpack", "cpu-target", "shards", "heap"]
    assert result.outcome
    json.dumps(result.to_dict())


def test_a_runtime_that_cannot_judge_the_image_says_why_before_asking_for_a_system_image(build: Build) -> None:
    """A tree of another platform than the image (an x86_64 image, an aarch64 runtime) is not applicable, with the
    reason (the runtime would only say its dlopen failed, and its CPU check would read an x86_64 target list as
    aarch64 features); a macOS tree on Linux is not applicable even when it has no system image."""
    image = build("linux-x86_64", X86_LISTS[0])
    home, sysimage = tree("linux-aarch64")
    result = judge_with_runtime(image, home, sysimage=sysimage)
    assert not result.applicable and result.outcome == "not-applicable"
    assert "linux-x86_64" in result.reason and "linux-aarch64" in result.reason
    mac, _ = tree("macos-aarch64")
    result = judge_with_runtime(image, mac)  # the wheel's tree has no lib/julia/sys.*
    assert not result.applicable and "cannot run on a Linux host" in result.reason
