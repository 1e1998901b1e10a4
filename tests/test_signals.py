"""SIGTERM, SIGHUP and SIGQUIT are handled as Ctrl-C is: the linker's process group is killed, the staging is
removed, an existing output is untouched, and the command exits 128 + n. Also for relink and
verify --reproducible (which link in a temporary folder), and for a signal during start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.target import Target, parse_target

from .test_link_cli import leftovers, slow_lld  # noqa: F401  (slow_lld is a fixture)

LINUX = parse_target("linux-x86_64")
SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGINT]


def _gone(pid: int) -> bool:
    for _ in range(100):  # SIGKILL is delivered asynchronously
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _signal_when_lld_runs(args: list[str], marker: Path, sig: int, env: dict[str, str] | None = None
                          ) -> tuple[int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "pylinkjl", *args], stderr=subprocess.PIPE, text=True,
                            env=env)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the fake LLD never started"
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    lld_pid = int(marker.read_text())
    assert _gone(lld_pid), "LLD outlived pylinkjl"
    return proc.returncode, err


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_link_signal_kills_lld_and_leaves_nothing(sig: int, clang_objects: dict[Target, Path], tmp_path: Path,
                                                   slow_lld: tuple[Path, Path]) -> None:  # noqa: F811
    fake, marker = slow_lld
    out = tmp_path / "x.so"
    out.write_bytes(b"the old image")
    rc, err = _signal_when_lld_runs(["link", str(clang_objects[LINUX]), "-o", str(out), "--target", "linux-x86_64",
                                     "--lld", str(fake)], marker, sig)
    assert rc == 128 + sig, err
    assert "interrupted" in err and "Traceback" not in err
    assert out.read_bytes() == b"the old image" and not leftovers(tmp_path)


def test_relink_sigterm_kills_lld_and_leaves_nothing(clang_objects: dict[Target, Path], tmp_path: Path,
                                                     slow_lld: tuple[Path, Path]) -> None:  # noqa: F811
    fake, marker = slow_lld
    outdir = tmp_path / "out"
    outdir.mkdir()
    rc, err = _signal_when_lld_runs(["relink", str(clang_objects[LINUX]), "--out-dir", str(outdir), "--target",
                                     "linux-x86_64", "--lld", str(fake), "-j", "1"], marker, signal.SIGTERM)
    assert rc == 143, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(outdir.iterdir()) == []


def test_verify_reproducible_sighup_removes_its_temporary_folder(clang_objects: dict[Target, Path], tmp_path: Path,
                                                                  slow_lld: tuple[Path, Path]) -> None:  # noqa: F811
    fake, marker = slow_lld
    image = tmp_path / "warm" / "x.so"  # linked by the fixture with the real LLD
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "PYLINKJL_LLD": str(fake), "TMPDIR": str(tmp)}
    rc, err = _signal_when_lld_runs(["verify", str(image), "--object", str(clang_objects[LINUX]), "--reproducible"],
                                    marker, signal.SIGHUP, env=env)
    assert rc == 129, err
    assert "Traceback" not in err
    assert list(tmp.iterdir()) == []


# A signal while the command's module is still being imported (before its own error reporting runs):
# simulated by sending it from inside the lazy command lookup.
_DURING_STARTUP = """
import os, signal, sys, time
import pylinkjl.cli as cli
original = cli.LazyGroup.get_command
def get_command(self, ctx, name):
    os.kill(os.getpid(), {sig})
    time.sleep(5)
    return original(self, ctx, name)
cli.LazyGroup.get_command = get_command
sys.argv = ["pylinkjl", "cpu-target", "generic"]
cli.main()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_signal_during_start_up_is_an_interrupt_not_aborted(sig: int) -> None:
    done = subprocess.run([sys.executable, "-c", _DURING_STARTUP.format(sig=int(sig))], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 128 + sig, done.stderr
    assert "Aborted" not in done.stderr and "Traceback" not in done.stderr
    assert "interrupted" in done.stderr


# A signal while Python is still importing click (the console script's first tens of milliseconds): the
# entry point (pylinkjl/__main__.py) records it and the command replays it as soon as its handling exists.
_DURING_IMPORTS = """
import os, signal, sys
class Hook:
    def find_spec(self, name, path, target=None):
        if name == "click":
            os.kill(os.getpid(), {sig})
        return None
sys.meta_path.insert(0, Hook())
sys.argv = ["pylinkjl", "cpu-target", "generic"]
from pylinkjl.__main__ import main
main()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: signal.Signals(s).name)
def test_signal_while_importing_click_is_an_interrupt(sig: int) -> None:
    done = subprocess.run([sys.executable, "-c", _DURING_IMPORTS.format(sig=int(sig))], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 128 + sig, done.stderr
    assert done.stderr.strip() == "error: interrupted"
