"""The wheel ships stubs/, toolchains/ and the samples: build it, install it into a fresh venv, link from there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(check=False, args=[sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "hatchling" in (done.stdout + done.stderr):
        pytest.skip("hatchling is not installed for --no-isolation builds")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (whl,) = out.glob("pylinkjl-*.whl")
    return whl


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("pylinkjl/py.typed", "pylinkjl/_data/toolchains/linux.toml", "pylinkjl/_data/toolchains/lines.toml",
                   "pylinkjl/_data/stubs/dllmain-x86_64.o", "pylinkjl/_data/stubs/dllmain-i686.s",
                   "pylinkjl/samples/pkgimage-1.11-windows-x86_64.a", "pylinkjl/data/libjulia-exported-data.txt",
                   "pylinkjl/images/judge/loader.c"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "fixturegen/", "pylinkjl/fixturegen/")) for n in names)


def test_installed_wheel_links(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with zipfile.ZipFile(wheel) as zf:  # what pip does for a pure wheel, without needing pip or the network
        zf.extractall(site)
    # Dependencies (click, lief, ...) come from this interpreter's site-packages. PYTHONPATH entries do not
    # process .pth files, so an editable install of the source tree stays invisible.
    deps = sysconfig.get_paths()["purelib"]
    env = dict(os.environ, PYTHONPATH=deps)
    code = "import pylinkjl, pylinkjl.resources as r; print(pylinkjl.__file__); print(r.data_dir('stubs'))"
    where = subprocess.run(check=False, args=[str(py), "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    module, stubs = where.stdout.split()
    assert module.startswith(site) and stubs.startswith(site), where.stdout
    for target, ext in (("windows-x86_64", "dll"), ("macos-arm64", "dylib"), ("linux-x86_64", "so")):
        sample = Path(site) / "pylinkjl" / "samples" / f"pkgimage-1.11-{target.replace('arm64', 'aarch64')}.a"
        done = subprocess.run(check=False, args=[str(py), "-m", "pylinkjl", "link", str(sample), "-o", str(tmp_path / f"x.{ext}"),
                               "--target", target], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / f"x.{ext}").stat().st_size > 1000
