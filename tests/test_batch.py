"""Batch relinking with real LLD: several targets in one batch, failures that do not stop the others,
LLD's --threads capped, outputs that would collide, verification, and stopping in the middle."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from pylinkjl import batch
from pylinkjl.batch import BatchInterrupted, BatchItem, ItemResult, relink_many
from pylinkjl.errors import InputError, LinkError, TargetError, VerificationError
from pylinkjl.process import kill_running, run_process
from pylinkjl.target import Target, parse_target

from .toolnames import CLANG, LLD, LLVM_AR

TOOLS = (LLD, CLANG, LLVM_AR)
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason="needs lld-19, clang-19, llvm-ar-19")

# A package-image-like object: exported code calling into the Julia runtime.
SOURCE = """
typedef struct jl_value_t jl_value_t;
jl_value_t *ijl_apply_generic(jl_value_t *f, jl_value_t **args, unsigned n);
__attribute__((visibility("default"))) jl_value_t *pkg_call(jl_value_t *f) { return ijl_apply_generic(f, 0, 0); }
"""
TARGETS = ("linux-x86_64", "windows-x86_64", "macos-arm64")
MAGIC = {"linux": b"\x7fELF", "windows": b"MZ", "macos": b"\xcf\xfa\xed\xfe"}


def make_archive(folder: Path, target: Target, name: str) -> Path:
    src = folder / "pkg.c"
    src.write_text(SOURCE)
    obj = folder / f"{name}.o"
    done = run_process([CLANG, f"--target={target.llvm_triple}", "-c", "-O1", "-fPIC", "-ffreestanding",
                        str(src), "-o", str(obj)], timeout=60)
    assert done.returncode == 0, done.output
    archive = folder / f"{name}.a"
    done = run_process([LLVM_AR, "rcs", str(archive), str(obj)], timeout=60)
    assert done.returncode == 0, done.output
    obj.unlink()
    return archive


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One small archive per target in TARGETS, built once."""
    root = tmp_path_factory.mktemp("batch-inputs")
    return {name: make_archive(root, parse_target(name), f"pkg-{name}") for name in TARGETS}


@pytest.fixture(autouse=True)
def private_stub_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYLINKJL_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "batch-stub-cache"))


def _copies(archive: Path, folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        dest = folder / f"item{i}.a"
        shutil.copyfile(archive, dest)
        out.append(dest)
    return out


def test_three_targets_in_one_batch_with_capped_threads(archives: dict[str, Path], tmp_path: Path) -> None:
    items = [BatchItem(inputs=(archives[t],), target=t) for t in TARGETS]
    seen: list[ItemResult] = []
    calling_thread = threading.get_ident()
    callback_threads: set[int] = set()

    def on_result(r: ItemResult) -> None:
        seen.append(r)
        callback_threads.add(threading.get_ident())

    results = relink_many(items, jobs=2, out_dir=tmp_path, on_result=on_result)
    assert [r.status for r in results] == ["ok"] * 3, [r.error for r in results]
    assert callback_threads == {calling_thread}  # callbacks never come from the pool
    assert sorted(map(id, seen)) == sorted(map(id, results))
    threads = batch.lld_threads(2, batch.cpu_count())
    for name, r in zip(TARGETS, results):
        target = parse_target(name)
        assert r.output == tmp_path / f"pkg-{name}.{target.dlext}"  # input stem + the target's extension
        assert r.output.read_bytes()[:4].startswith(MAGIC[target.os])
        assert r.link.size == r.output.stat().st_size
        assert f"--threads={threads}" in r.link.plan.argv  # each flavor of LLD accepted it
    assert not list(tmp_path.glob(".pylinkjl-*"))


def test_parallelism_is_decided_once_for_the_cli_and_the_library() -> None:
    cpus = batch.cpu_count()
    assert batch.parallelism(None, 100) == batch.Parallelism(cpus, cpus, 1)
    assert batch.parallelism(8, 3).jobs == 3  # never more jobs than items
    assert batch.parallelism(1, 5) == batch.Parallelism(cpus, 1, cpus)
    with pytest.raises(TargetError):
        batch.parallelism(0, 5)


def test_lld_threads_keep_the_total_near_the_core_count() -> None:
    assert batch.lld_threads(1, 8) == 8
    assert batch.lld_threads(4, 8) == 2
    assert batch.lld_threads(3, 8) == 2
    assert batch.lld_threads(16, 2) == 1
    assert batch.cpu_count() >= 1


def test_one_failure_does_not_stop_the_others(archives: dict[str, Path], tmp_path: Path) -> None:
    good = _copies(archives["linux-x86_64"], tmp_path / "in", 3)
    junk = tmp_path / "in" / "junk.a"
    junk.write_bytes(b"!<arch>\nnot really an archive")
    missing = tmp_path / "in" / "missing.a"
    wrong_target = archives["windows-x86_64"]  # a COFF object for an ELF target
    items = [good[0], junk, good[1], missing, wrong_target, good[2]]
    results = relink_many(items, jobs=2, target="linux-x86_64", out_dir=tmp_path / "out")
    assert [r.status for r in results] == ["ok", "failed", "ok", "failed", "failed", "ok"]
    assert [r.item.inputs[0] for r in results] == items  # the order given
    for r in results:
        if not r.ok:
            assert isinstance(r.error, InputError), r.error
            assert str(r.item.inputs[0]) in r.error.message
    assert "COFF" in results[4].error.message
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["item0.so", "item1.so", "item2.so"]
    assert batch.exit_code(results) == InputError.exit_code
    assert batch.exit_code([r for r in results if r.ok]) == 0
    data = results[1].to_dict()
    assert data["status"] == "failed" and data["error"]["type"] == "InputError"


def test_a_failing_lld_is_reported_per_item(archives: dict[str, Path], tmp_path: Path) -> None:
    """A link LLD refuses (a duplicate symbol across two inputs) fails alone, with LLD's output."""
    a = archives["linux-x86_64"]
    b = tmp_path / "dup.a"
    shutil.copyfile(a, b)
    results = relink_many([BatchItem(inputs=(a, b), output=tmp_path / "dup.so"), a], jobs=2,
                          target="linux-x86_64", out_dir=tmp_path)
    assert [r.status for r in results] == ["failed", "ok"]
    err = results[0].error
    assert isinstance(err, LinkError) and "duplicate symbol" in err.output
    assert not (tmp_path / "dup.so").exists()
    assert results[0].to_dict()["error"]["lld_output"] == err.output


def test_items_that_would_write_one_file_are_refused(archives: dict[str, Path], tmp_path: Path) -> None:
    a = archives["linux-x86_64"]
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / a.name
    shutil.copyfile(a, twin)
    results = relink_many([a, twin], target="linux-x86_64", out_dir=tmp_path / "out")
    assert [r.status for r in results] == ["ok", "failed"]
    assert "same output as item 0" in results[1].error.message


def test_bad_arguments() -> None:
    with pytest.raises(TargetError):
        relink_many([], jobs=0)
    with pytest.raises(TargetError):
        relink_many([], target="vax-vms")
    with pytest.raises(TargetError):
        relink_many([], threads=3)
    assert relink_many([]) == []


def test_manifest_overrides_target_and_version(archives: dict[str, Path], tmp_path: Path) -> None:
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"{archives['windows-x86_64']}\tout/a.dll\twindows-x86_64\t1.10.0\n"
                        f"{archives['linux-x86_64']}\t\t\t1.9\n")
    items = batch.read_manifest(manifest)
    results = relink_many(items, out_dir=tmp_path / "default", target="linux-x86_64", julia_version="1.11")
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert results[0].output == tmp_path / "out" / "a.dll"
    assert results[0].link.plan.line == "1.10.0"
    assert results[1].output == tmp_path / "default" / "pkg-linux-x86_64.so"
    assert results[1].link.plan.line == "1.9.0"


def test_verify_failure_fails_the_item(archives: dict[str, Path], tmp_path: Path) -> None:
    """A plain C object links fine but is no Julia package image: --verify must fail it (exit code 7)."""
    results = relink_many([archives["linux-x86_64"]], target="linux-x86_64", out_dir=tmp_path, verify=True)
    (r,) = results
    assert r.status == "failed"
    assert isinstance(r.error, VerificationError)
    assert r.verify is not None and not r.verify.ok
    assert not r.output.exists()  # a failed check fails the item before the rename: no new image lands
    assert r.to_dict()["verify"]["ok"] is False
    assert batch.exit_code(results) == 7


# -- stopping ----------------------------------------------------------------------------------------

SLOW_LLD = """#!{python}
# LLD that sleeps before links whose output name contains "slow"; everything else goes straight to LLD.
import os, sys, time
args = sys.argv[1:]
if any(".pylinkjl-" in a and "slow" in os.path.basename(a) for a in args):
    open(os.path.join({markers!r}, str(os.getpid())), "w").close()
    time.sleep(60)
os.execv({lld!r}, [{lld!r}] + args)
"""


def slow_lld(folder: Path) -> tuple[Path, Path]:
    """A fake LLD (see SLOW_LLD) and the folder where each sleeping link leaves its pid."""
    markers = folder / "markers"
    markers.mkdir(parents=True)
    script = folder / "lld"
    script.write_text(SLOW_LLD.format(python=sys.executable, markers=str(markers), lld=shutil.which(LLD)))
    script.chmod(0o755)
    return script, markers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_interrupt_kills_running_links_and_leaves_no_partial_output(archives: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    lld, markers = slow_lld(tmp_path)
    src = archives["linux-x86_64"]
    names = ["fast0", "slow1", "slow2", "slow3", "fast4"]
    inputs = []
    for name in names:
        shutil.copyfile(src, tmp_path / f"{name}.a")
        inputs.append(tmp_path / f"{name}.a")
    out = tmp_path / "out"
    out.mkdir()
    (out / "slow1.so").write_bytes(b"an older image")  # must survive untouched

    def on_result(r: ItemResult) -> None:
        # Once two slow links are sleeping inside LLD, "press Ctrl-C" in the calling thread.
        deadline = time.monotonic() + 60
        while len(list(markers.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(BatchInterrupted) as info:
        relink_many(inputs, jobs=3, target="linux-x86_64", out_dir=out, lld=lld, on_result=on_result)
    assert time.monotonic() - started < 40  # the sleeping LLDs were killed, not waited for
    statuses = {r.item.inputs[0].stem: r.status for r in info.value.results}
    assert statuses["fast0"] == "ok"
    assert statuses["slow1"] == statuses["slow2"] == "cancelled"
    assert statuses["fast4"] == "cancelled"  # never started
    assert info.value.exit_code == 130
    pids = [int(p.name) for p in markers.iterdir()]
    assert pids and not any(_alive(pid) for pid in pids)
    assert sorted(p.name for p in out.iterdir()) == ["fast0.so", "slow1.so"]  # no staging folders either
    assert (out / "slow1.so").read_bytes() == b"an older image"
    assert (out / "fast0.so").read_bytes()[:4] == b"\x7fELF"


def test_kill_running_from_another_thread() -> None:
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(
        run_process([sys.executable, "-c", "import time; time.sleep(60)"], timeout=120)))
    worker.start()
    deadline = time.monotonic() + 30
    killed = 0
    while not killed and time.monotonic() < deadline:
        killed = kill_running({worker.ident})  # type: ignore[arg-type]
        time.sleep(0.01)
    worker.join(30)
    assert killed == 1 and not worker.is_alive()
    assert got[0].returncode == -9  # type: ignore[attr-defined]
    assert kill_running() == 0
