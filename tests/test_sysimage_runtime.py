"""The real Julia 1.13.1 runtime (tests/realruntime.py) booted with system images pylinkjl links, through the
runtime judge's loader (``jl_init_with_image_file`` in a child: natively, under Wine and under qemu-aarch64).
The real juliac library boots; an image linked from a generated archive passes the runtime's RTLD consistency
check, its unpacker and CPU target selection, and stops only at the generated heap, which is not a real one;
where ``inspect`` says the image does not start on this machine, the runtime refuses it with the same words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.caches.inspection import inspect_image
from pylinkjl.caches.verdict import Session
from pylinkjl.images.judge import JudgeResult, judge_with_runtime
from pylinkjl.link.api import link_image
from pylinkjl.target import host_target, parse_target

from .test_runtime_judge import tree, wineprefix  # noqa: F401 - the shared Wine prefix (autouse)

pytestmark = pytest.mark.skipif(host_target() != parse_target("linux-x86_64"),
                                reason="boots the real runtimes natively, under Wine and qemu: needs a Linux x86_64 host")


def _sysimage(tmp: Path, target: str, name: str, cpu_targets: tuple[str, ...], compress: bool) -> Path:
    t = parse_target(target)
    spec = FixtureSpec(t, layout="1.13", julia_version="1.13.0", kind="sysimage", cpu_targets=cpu_targets,
                       compress=compress)
    archive = generate_archive(spec, tmp / f"{name}.a")
    out = tmp / f"{name}.{t.dlext}"
    home, _ = tree(target)
    link_image(archive, out, target=t, julia_version="release-1.13", julia_home=home, kind="sysimage",
               stub_missing=True)  # the wheels have no C runtime files (crti.o, ...): those come from stubs
    return out


def _boot(target: str, sysimage: Path | None = None) -> JudgeResult:
    """Boot the runtime with ``sysimage`` (default: the wheel's juliac library); the image it is then asked to
    restore is that juliac library, which matters only when the boot succeeds."""
    home, juliac = tree(target)
    result = judge_with_runtime(juliac, home, sysimage=sysimage or juliac)
    assert result.applicable and result.julia_version in (None, "1.13.1"), (result.reason, result.output)
    return result


@pytest.mark.parametrize("target", ["linux-x86_64", "windows-x86_64", "linux-aarch64"])
def test_real_juliac_library_boots(target: str) -> None:
    result = _boot(target)
    assert result.stage("boot").status == "passed", (result.render(), result.output)


@pytest.mark.parametrize(("target", "name", "cpu_targets", "compress"), [
    ("linux-x86_64", "generic", ("generic",), True),
    ("linux-x86_64", "plain", ("generic", "haswell,clone_all"), False),
    ("linux-x86_64", "avx512", ("skylake-avx512",), False),
    ("linux-x86_64", "sapphirerapids", ("sapphirerapids",), True),
    ("windows-x86_64", "generic", ("generic", "haswell,clone_all"), True),
    ("windows-x86_64", "avx512", ("skylake-avx512",), False),
    ("linux-aarch64", "generic", ("generic", "neoverse-n1,clone_all"), True),
])
def test_runtime_agrees_with_inspect(target: str, name: str, cpu_targets: tuple[str, ...], compress: bool,
                                     tmp_path: Path) -> None:
    image = _sysimage(tmp_path, target, name, cpu_targets, compress)
    result = _boot(target, image)
    boot = result.stage("boot")
    assert boot.status == "failed", (result.render(), result.output)  # a generated heap never boots
    said = f"{result.message or ''}\n{result.output}"
    assert "consistency check" not in said and "could not load" not in said, said
    if target == "linux-aarch64":  # qemu shows the runtime a generic CPU: only the generic image is compared
        assert "Unable to find compatible target" not in said, said
        return
    ours = inspect_image(image, Session())["starts"]
    if ours["ok"]:
        # past the consistency check, the unpacker and target selection: the generated heap is where it stops
        assert "Unable to find compatible target" not in said, said
    else:
        for line in ours["message"].splitlines():
            assert line in said, (line, said)


def test_inspect_shows_the_runtimes_verdict_beside_ours(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from pylinkjl.cli.inspect import inspect_command

    image = _sysimage(tmp_path, "linux-x86_64", "avx512", ("skylake-avx512",), False)
    home, _ = tree("linux-x86_64")
    res = CliRunner().invoke(inspect_command, [str(image), "--runtime", str(home), "--json"])
    report = json.loads(res.output)
    judged = report["runtime"]
    assert judged["stopped_at"] == "boot" and judged["outcome"] == "boot-failed", judged
    assert (report["starts"]["ok"] is False) == ("Unable to find compatible target" in (judged["message"] or ""))
    text = CliRunner().invoke(inspect_command, [str(image), "--runtime", str(home)]).output
    assert "start      DOES NOT START" in text or "start      STARTS" in text
    assert "runtime judge: Julia 1.13.1 (linux-x86_64, native)" in text
