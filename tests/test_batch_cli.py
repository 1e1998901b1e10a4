"""``pylinkjl relink`` as a user runs it: results, exit codes, JSON, the progress bar on a terminal, and
Ctrl-C (a real SIGINT) in the middle of a batch leaving no partial outputs."""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pylinkjl.target import parse_target

from .test_batch import make_archive, slow_lld
from .toolnames import CLANG, LLD, LLVM_AR

TOOLS = (LLD, CLANG, LLVM_AR)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs lld-19, clang-19, llvm-ar-19")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_archive(tmp_path_factory.mktemp("relink-cli"), parse_target("linux-x86_64"), "pkg")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**os.environ, "PYLINKJL_CACHE_DIR": str(tmp_path_factory.mktemp("relink-cli-cache"))}


def _inputs(archive: Path, folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(archive, folder / f"{name}.a")
    return [folder / f"{name}.a" for name in names]


def relink(args: list[object], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    streams = kw or {"capture_output": True}
    return subprocess.run([sys.executable, "-m", "pylinkjl", "relink", *map(str, args)], check=False, text=True,
                          env=env, timeout=120, **streams)  # type: ignore[call-overload]


def test_json_results(archive: Path, env: dict[str, str], tmp_path: Path) -> None:
    inputs = _inputs(archive, tmp_path / "in", ["a", "b", "c"])
    done = relink([*inputs, "--out-dir", tmp_path / "out", "--target", "x86_64-linux-gnu", "-j", "2", "--json"], env)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["exit_code"] == 0 and doc["interrupted"] is False
    assert doc["jobs"] == 2 and doc["cpus"] >= 1 and doc["lld_threads"] >= 1
    assert [r["status"] for r in doc["results"]] == ["ok"] * 3
    assert [r["output"] for r in doc["results"]] == [str(tmp_path / "out" / f"{n}.so") for n in "abc"]
    assert all((tmp_path / "out" / f"{n}.so").stat().st_size == r["size"] for n, r in zip("abc", doc["results"]))


def test_plain_lines_failures_and_exit_code(archive: Path, env: dict[str, str], tmp_path: Path) -> None:
    inputs = _inputs(archive, tmp_path / "in", ["good"])
    bad = tmp_path / "in" / "bad.a"
    bad.write_text("not an archive")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"input": "in/good.a", "output": "custom/named.so"}]))
    done = relink([*inputs, bad, "--manifest", manifest, "--out-dir", tmp_path / "out"], env)
    assert done.returncode == 3, done.stdout + done.stderr  # InputError's exit code
    out = done.stdout
    assert f"FAILED     {bad}" in out and "is not an object file or archive" in out
    assert f"ok         {tmp_path / 'out' / 'good.so'}" in out
    assert f"ok         {tmp_path / 'custom' / 'named.so'}" in out
    assert "2 of 3 linked, 1 failed" in out.splitlines()[-1]


def test_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    assert relink([], env).returncode == 2
    done = relink([tmp_path / "x.a", "-j", "0"], env)
    assert done.returncode == 2 and "--jobs must be at least 1" in done.stderr
    bad_manifest = tmp_path / "m.json"
    bad_manifest.write_text("[{]")
    done = relink(["--manifest", bad_manifest, "--json"], env)
    assert done.returncode == 3
    assert json.loads(done.stdout)["error"]["type"] == "InputError"  # the one error shape (errors.py)


def test_progress_bar_on_a_terminal(archive: Path, env: dict[str, str], tmp_path: Path) -> None:
    inputs = _inputs(archive, tmp_path / "in", ["a", "b"])
    master, slave = pty.openpty()
    try:
        done = relink([*inputs, "--out-dir", tmp_path / "out"], env, stderr=slave, stdout=subprocess.PIPE)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert done.returncode == 0
    assert b"relinking" in shown and b"2/2" in shown
    assert f"ok         {tmp_path / 'out' / 'a.so'}" in done.stdout  # the results, listed after the bar


def test_sigint_stops_the_batch_and_leaves_no_partial_outputs(archive: Path, env: dict[str, str],
                                                                tmp_path: Path) -> None:
    lld, markers = slow_lld(tmp_path)
    inputs = _inputs(archive, tmp_path / "in", ["fast0", "slow1", "slow2", "slow3", "fast4"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "slow2.so").write_bytes(b"an older image")
    proc = subprocess.Popen([sys.executable, "-m", "pylinkjl", "relink", *map(str, inputs), "--out-dir", str(out),
                             "--lld", str(lld), "-j", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(markers.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert len(list(markers.iterdir())) == 2, "the slow links did not start"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)  # far less than the fake LLD's 60 s sleep
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stderr
    assert f"ok         {out / 'fast0.so'}" in stdout
    assert f"cancelled  {inputs[1]}" in stdout and f"cancelled  {inputs[4]}" in stdout
    assert "1 of 5 linked, 4 cancelled" in stdout
    for pid in (int(p.name) for p in markers.iterdir()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the sleeping linkers were killed, not orphaned
    assert sorted(p.name for p in out.iterdir()) == ["fast0.so", "slow2.so"]  # no staging folders, no partials
    assert (out / "slow2.so").read_bytes() == b"an older image"


SAMPLES = Path(__file__).resolve().parent.parent / "pylinkjl" / "samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the shipped sample archives are missing")
def test_all_seven_targets_from_one_manifest_verified(env: dict[str, str], tmp_path: Path) -> None:
    """The shipped samples, one per target, in one manifest: linked in parallel and verified (LIEF)."""
    from pylinkjl.target import ALL_TARGETS

    entries = [{"input": str(SAMPLES / f"pkgimage-1.11-{t.name}.a"), "target": t.name} for t in ALL_TARGETS]
    manifest = tmp_path / "all.json"
    manifest.write_text(json.dumps(entries))
    done = relink(["--manifest", manifest, "--out-dir", tmp_path / "out", "--verify", "--json", "-j", "3"], env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = json.loads(done.stdout)
    assert doc["lld_threads"] == 1 or doc["cpus"] > 3
    for t, r in zip(ALL_TARGETS, doc["results"]):
        assert r["status"] == "ok" and r["target"] == t.name
        assert r["output"] == str(tmp_path / "out" / f"pkgimage-1.11-{t.name}.{t.dlext}")
        assert r["verify"]["ok"] is True and r["verify"]["checks"]


def test_verify_failure_exit_code_and_report(archive: Path, env: dict[str, str], tmp_path: Path) -> None:
    """A plain C object is no Julia image: --verify fails the item (exit 7) and shows the failed checks."""
    done = relink([archive, "--out-dir", tmp_path, "--verify"], env)
    assert done.returncode == 7, done.stdout + done.stderr
    assert f"FAILED     {archive}" in done.stdout
    assert "failed verification" in done.stdout and "verification FAILED" in done.stdout
