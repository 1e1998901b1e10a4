"""The real Julia 1.13.1 runtime (tests/realruntime.py, Linux x86_64) booted with system images pylinkjl links:
``jl_init_with_image_file`` in a child process (tests/data/boot/boot.c). The real juliac library boots; an image
linked from a generated archive passes the runtime's RTLD consistency check, its zstd unpacker and CPU target
selection, and stops only at the generated heap, which is not a real one; where ``inspect`` says the image does
not start on this machine, the runtime refuses it with the same words."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from fixturegen.build import generate_archive
from fixturegen.spec import FixtureSpec
from pylinkjl.caches.verdict import Session, inspect_image
from pylinkjl.link.api import link_image
from pylinkjl.process import run_process
from pylinkjl.target import host_target, parse_target

from .realruntime import require_runtime
from .toolnames import CLANG

BOOT = Path(__file__).parent / "data" / "boot" / "boot.c"
pytestmark = pytest.mark.skipif(host_target() != parse_target("linux-x86_64") or shutil.which(CLANG) is None,
                                reason="boots the real Linux x86_64 runtime: needs a Linux x86_64 host and clang")


@pytest.fixture(scope="module")
def boot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], tuple[int, str]]:
    info = require_runtime("manylinux_2_28_x86_64")
    libjulia = Path(info["libjulia"])
    exe = tmp_path_factory.mktemp("boot") / "boot"
    built = run_process([str(shutil.which(CLANG)), "-O1", "-o", str(exe), str(BOOT), "-ldl"], timeout=120)
    assert built.returncode == 0, built.output
    env = dict(os.environ, LD_LIBRARY_PATH=f"{libjulia.parent / 'julia'}:{libjulia.parent}")

    def run(image: Path) -> tuple[int, str]:
        done = run_process([str(exe), str(libjulia), info["bindir"], str(image)], env=env, timeout=120)
        return done.returncode, done.output

    return run


def _sysimage(tmp: Path, name: str, cpu_targets: tuple[str, ...], compress: bool) -> Path:
    info = require_runtime("manylinux_2_28_x86_64")
    spec = FixtureSpec(parse_target("linux-x86_64"), layout="1.13", julia_version="1.13.0", kind="sysimage",
                       cpu_targets=cpu_targets, compress=compress)
    archive = generate_archive(spec, tmp / f"{name}.a")
    out = tmp / f"{name}.so"
    home = Path(info["libjulia"]).parents[1]
    link_image(archive, out, target="linux-x86_64", julia_version="release-1.13", julia_home=home, kind="sysimage",
               stub_missing=True)  # the wheel has no C runtime files (crti.o, ...): those come from stubs
    return out


def test_real_juliac_library_boots(boot: Callable[[Path], tuple[int, str]]) -> None:
    code, output = boot(Path(require_runtime("manylinux_2_28_x86_64")["image"]))
    assert code == 0 and "BOOTED" in output, output


@pytest.mark.parametrize(("name", "cpu_targets", "compress"), [
    ("generic", ("generic",), True),
    ("plain", ("generic", "haswell,clone_all"), False),
    ("avx512", ("skylake-avx512",), False),
    ("sapphirerapids", ("sapphirerapids",), True),
])
def test_runtime_agrees_with_inspect(name: str, cpu_targets: tuple[str, ...], compress: bool, tmp_path: Path,
                                     boot: Callable[[Path], tuple[int, str]]) -> None:
    image = _sysimage(tmp_path, name, cpu_targets, compress)
    ours = inspect_image(image, Session())["starts"]
    code, output = boot(image)
    assert "consistency check" not in output and "could not load" not in output, output
    if ours["ok"]:
        # past the consistency check, the unpacker and target selection: the generated heap is where it stops
        assert "Unable to find compatible target" not in output, output
        assert code != 0 and "BOOTED" not in output, output
    else:
        assert code == 1, output
        for line in ours["message"].splitlines():
            assert line in output, (line, output)
