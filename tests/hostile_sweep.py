"""The hostile sweep (issue 9): run pylinkjl as a careless or hostile user would and print the table of
docs/hostile-sweep.md (case | command | expected | result | held). Needs root (private tmpfs and bind
mounts, device nodes, chattr, setpriv), LLD 19, clang-19 and shared/fixtures/real. Everything happens in a
fresh temporary folder; every mount is undone at the end.

    sudo .venv/bin/python -m tests.hostile_sweep > table.md
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.realdata import REAL
from tests.toolnames import CLANG

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
ARCH = REPO / "tests/data/archives/mv-1.11-linux-x86_64.a"
GLOB = REAL / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob"
REAL_SO, REAL_JI = GLOB / "3FzEV_ujJ6A.so", GLOB / "3FzEV_ujJ6A.ji"
W = Path(tempfile.mkdtemp(prefix="pylinkjl-hostile-sweep-"))
W.chmod(0o755)  # the cases run as nobody must reach their files
CACHE = W / "cache"
ENV = {**os.environ, "PYLINKJL_CACHE_DIR": str(CACHE)}
L = ["--target", "linux-x86_64"]
ROWS: list[tuple[str, str, str, str, bool]] = []
MOUNTS: list[Path] = []


def run(args: list[str | bytes | Path], *, env: dict[str, str] | None = None, timeout: float = 60,
        cwd: Path | None = None, user: str | None = None) -> tuple[int | str, str, str, float]:
    argv: list[str | bytes] = [PY, "-m", "pylinkjl", *(a if isinstance(a, bytes) else str(a) for a in args)]
    if user:
        argv = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *argv]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout, env=env or ENV, cwd=cwd, check=False)
    except subprocess.TimeoutExpired:
        return "HANG", "", "", time.perf_counter() - start
    return (done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
            time.perf_counter() - start)


def fresh(name: str) -> Path:
    d = W / name
    d.mkdir(parents=True)
    return d


def dots(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def record(case: str, command: str, expected: str, result: str, held: bool) -> None:
    ROWS.append((case, command, expected, result, held))
    print(("HELD " if held else "BROKE") + f" {case}: {result}", file=sys.stderr, flush=True)


def simple(case: str, args: list[str | bytes | Path], shown: str, want_rc: int | set[int], expected: str, *,
           must: str = "", folder: Path | None = None, env: dict[str, str] | None = None, timeout: float = 60,
           cwd: Path | None = None, user: str | None = None) -> None:
    rc, out, err, secs = run(args, env=env, timeout=timeout, cwd=cwd, user=user)
    wants = {want_rc} if isinstance(want_rc, int) else want_rc
    text = out + err
    held = rc in wants and (not must or must in text) and "Traceback" not in text and "internal error" not in text
    first = (err.strip().splitlines() or out.strip().splitlines() or [""])[0]
    if len(first) > 150:
        first = first[:150] + "..."
    result = f"rc {rc} in {secs:.2f} s: {first}"
    if folder is not None and dots(folder):
        held = False
        result += f"; left {dots(folder)}"
    record(case, shown, expected, result, held)


def mount_tmpfs(point: Path, opts: str) -> Path:
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], check=True)
    MOUNTS.append(point)
    return point


def slow_lld(d: Path) -> tuple[Path, Path]:
    marker = d / "lld.pid"
    fake = d / "slow-lld"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = --version ] && echo "LLD 19.1.7 (compatible with GNU '
                    'linkers)" && exit 0; done\n' f'echo $$ > "{marker}"\nexec sleep 60\n')
    fake.chmod(0o755)
    return fake, marker


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def signal_case(case: str, args: list[str], sig: int, want: int, watch: Path, marker: Path, shown: str, *,
                env: dict[str, str] | None = None) -> None:
    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([PY, "-m", "pylinkjl", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            env=env or ENV)
    t0 = time.monotonic()
    while not marker.exists() and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    try:
        _, err_b = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        record(case, shown, f"rc {want}, LLD dead, no litter", "HANG", False)
        return
    err = err_b.decode(errors="replace")
    time.sleep(0.3)
    pid = int(marker.read_text()) if marker.exists() else -1
    alive = pid > 0 and _alive(pid)
    litter = [p.name for p in watch.iterdir() if p.name not in ("lld.pid", "slow-lld", "x.so", "out", "tmp")]
    if sig == signal.SIGKILL:
        record(case, shown, "LLD dies with pylinkjl (PR_SET_PDEATHSIG)",
               f"rc {proc.returncode}; LLD {'ALIVE' if alive else 'dead'}; left {litter} (SIGKILL cannot be caught: "
               "a stale staging folder stays until the next link cleans it, branch safeout)", not alive)
        for p in watch.glob(".pylinkjl-*"):
            shutil.rmtree(p)
        return
    held = proc.returncode == want and not alive and not litter and "Traceback" not in err
    record(case, shown, f"rc {want}, LLD dead, no litter",
           f"rc {proc.returncode}; LLD {'ALIVE' if alive else 'dead'}; left {litter}", held)


def special_outputs() -> None:
    d = fresh("special")
    os.mknod(d / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(d / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    (d / "dir").mkdir()
    for name in ("null", "fifo", "sock", "dir"):
        simple(f"-o is a {name} (private node)", ["link", ARCH, "-o", d / name, *L], f"link pkg.a -o {name}", 3,
               "rc 3, node untouched", folder=d)
    simple("-o equals the input", ["link", ARCH, "-o", ARCH, *L], "link pkg.a -o pkg.a", 3, "rc 3, input untouched")
    sock.close()


def fifos() -> None:
    d = fresh("fifo")
    for n in ("f.a", "f.so", "f.ji", "f.json"):
        os.mkfifo(d / n)
    simple("FIFO as link input", ["link", d / "f.a", "-o", d / "x.so", *L], "link f.a -o x.so", 3, "rc 3 at once",
           must="FIFO")
    simple("FIFO as image (verify)", ["verify", d / "f.so"], "verify f.so", 3, "rc 3 at once", must="FIFO")
    simple("FIFO as image (inspect)", ["inspect", d / "f.so"], "inspect f.so", 3, "rc 3 at once", must="FIFO")
    simple("FIFO as .ji (inspect)", ["inspect", d / "f.ji"], "inspect f.ji", 3, "rc 3 at once", must="FIFO")
    simple("FIFO as .ji (reseal)", ["reseal", d / "f.ji"], "reseal f.ji", 3, "rc 3 at once", must="FIFO")
    simple("FIFO as --ji", ["link", ARCH, "-o", d / "x.so", *L, "--ji", d / "f.ji"], "link pkg.a -o x.so --ji f.ji",
           3, "rc 3, x.so not written", must="FIFO")
    simple("FIFO as --object", ["verify", REAL_SO, "--object", d / "f.a"], "verify real.so --object f.a", 3,
           "rc 3 at once", must="FIFO")
    simple("FIFO as manifest", ["relink", "--manifest", d / "f.json"], "relink --manifest f.json", 3, "rc 3 at once",
           must="FIFO")
    pkg = d / "depot/compiled/v1.10/Glob"
    pkg.mkdir(parents=True)
    shutil.copy(REAL_JI, pkg)
    shutil.copy(REAL_SO, pkg)
    os.mkfifo(pkg / "AbCdE_FgHiJ.ji")
    simple("FIFO *.ji inside a depot", ["depot", d / "depot"], "depot D (one .ji is a FIFO)", {0, 3},
           "no hang; the FIFO named as an error, the real cache reported", must="FIFO")
    header = d / "julia/include/julia"
    header.mkdir(parents=True)
    os.mkfifo(header / "julia_version.h")
    simple("FIFO julia_version.h in --julia-home", ["link", ARCH, "-o", d / "x.so", *L, "--julia-home", d / "julia"],
           "link --julia-home J (julia_version.h a FIFO)", {2, 3}, "clear error, no hang")


def devices_and_links() -> None:
    d = fresh("dev")
    os.mknod(d / "zero", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    simple("private /dev/zero node as input", ["link", d / "zero", "-o", d / "x.so", *L], "link zero (char 1,5)", 3,
           "rc 3, nothing read", must="character device")
    simple("private /dev/zero node as image", ["verify", d / "zero"], "verify zero", 3, "rc 3, nothing read",
           must="character device")
    simple("folder as image", ["verify", d], "verify DIR", 3, "rc 3", must="folder")
    os.symlink(d / "loop-b", d / "loop-a")
    os.symlink(d / "loop-a", d / "loop-b")
    simple("symlink loop as input", ["link", d / "loop-a", "-o", d / "x.so", *L], "link loop-a (a -> b -> a)", 3,
           "rc 3 naming the loop", must="symbolic links")
    simple("symlink loop as output", ["link", ARCH, "-o", d / "loop-a", *L], "link pkg.a -o loop-a", 8,
           "rc 8 (FileSystemError)", must="symbolic links")
    os.symlink(d / "nowhere" / "x.so", d / "dangling.so")
    simple("dangling symlink as output", ["link", ARCH, "-o", d / "dangling.so", *L], "link pkg.a -o dangling.so", 0,
           "rc 0: the link itself is replaced by the image (as LLD does)")


def sparse_files() -> None:
    d = fresh("sparse")

    def sparse(src: Path | None, name: str, size: int) -> Path:
        p = d / name
        if src:
            shutil.copy(src, p)
        with open(p, "ab") as f:
            f.truncate(size)
        return p

    simple("inspect a 50 GB sparse file", ["inspect", sparse(None, "z50.ji", 50 << 30)], "inspect z50.ji (zeros)", 3,
           "rc 3 well under 1 s", must="more than the 4 GiB")
    simple("inspect a real .ji padded to 50 GB", ["inspect", sparse(REAL_JI, "j50.ji", 50 << 30)], "inspect j50.ji",
           3, "rc 3 at once", must="4 GiB")
    simple("verify a real .so padded to 5 GB", ["verify", sparse(REAL_SO, "s5.so", 5 << 30)], "verify s5.so", 3,
           "rc 3 at once", must="4 GiB")
    simple("verify a real .so padded to 3 GB", ["verify", sparse(REAL_SO, "s3.so", 3 << 30)], "verify s3.so", 3,
           "rc 3 at once (its headers describe 84 KB)", must="after its end")
    simple("inspect a real .ji padded to 3 GB", ["inspect", sparse(REAL_JI, "j3.ji", 3 << 30)], "inspect j3.ji", 3,
           "rc 3 at once (its source text ends at 20 KB)", must="after its end")
    simple("link a 50 GB sparse archive", ["link", sparse(None, "a50.a", 50 << 30), "-o", d / "x.so", *L],
           "link a50.a", 3, "rc 3 at once", must="4 GiB")
    pkg = d / "depot/compiled/v1.10/Glob"
    pkg.mkdir(parents=True)
    os.rename(d / "j50.ji", pkg / REAL_JI.name)
    shutil.copy(REAL_SO, pkg)
    simple("depot with a .ji padded to 50 GB", ["depot", d / "depot"], "depot D", {0, 3},
           "at once; the file named as an error", timeout=30, must="4 GiB")


def environment() -> None:
    d = fresh("env")
    ro = mount_tmpfs(d / "ro", "size=1m,ro")
    simple("read-only file system", ["link", ARCH, "-o", ro / "x.so", *L], "link -o RO/x.so", 10, "rc 10, named",
           must="Read-only file system")
    imm = mount_tmpfs(d / "imm", "size=1m")
    shutil.copy(W / "warm.so", imm / "x.so")
    subprocess.run(["chattr", "+i", str(imm / "x.so")], check=True)
    simple("immutable output (chattr +i)", ["link", ARCH, "-o", imm / "x.so", *L], "link -o IMM/x.so", 11,
           "rc 11, output untouched", must="Operation not permitted", folder=imm)
    subprocess.run(["chattr", "-i", str(imm / "x.so")], check=True)
    busy = d / "busy.so"
    busy.touch()
    subprocess.run(["mount", "--bind", str(W / "warm.so"), str(busy)], check=True)
    MOUNTS.append(busy)
    simple("busy bind-mounted output", ["link", ARCH, "-o", busy, *L], "link -o busy.so (a bind mount)", 12,
           "rc 12", must="busy")
    full = mount_tmpfs(d / "full", "size=4k")
    simple("no space left (4 KiB tmpfs)", ["link", ARCH, "-o", full / "x.so", *L], "link -o FULL/x.so", 9,
           "rc 9 'no space left on <device>'", must="no space left on", folder=full)
    simple("no space left, new folders", ["link", ARCH, "-o", full / "a/b/x.so", *L], "link -o FULL/a/b/x.so", 9,
           "rc 9, a/b/ removed again", must="no space left on")
    if os.listdir(full):
        case, command, expected, result, _ = ROWS[-1]
        ROWS[-1] = (case, command, expected, result + f"; left {os.listdir(full)}", False)
    simple("file name too long", ["link", ARCH, "-o", d / ("n" * 300 + ".so"), *L], "link -o n{300}.so", 13, "rc 13",
           must="File name too long")
    simple("path too long", ["link", ARCH, "-o", str(d) + "/" + "d/" * 2100 + "x.so", *L], "link -o d/{2100}x.so", 13,
           "rc 13", must="too long")
    (d / "file").write_text("x")
    simple("a file where a folder belongs", ["link", ARCH, "-o", d / "file/x.so", *L], "link -o file/x.so", 14,
           "rc 14")
    simple("-o an existing folder", ["link", ARCH, "-o", d, *L], "link -o DIR", 3, "rc 3 'is a folder'",
           must="is a folder")
    simple("-o .", ["link", ARCH, "-o", ".", *L], "link -o .", 3, "rc 3 'is a folder'", cwd=d, must="is a folder")
    simple("-o ''", ["link", ARCH, "-o", "", *L], "link -o ''", 2, "rc 2", cwd=d, must="empty")
    simple("-o out/ (trailing slash)", ["link", ARCH, "-o", "out/", *L], "link -o out/", 2, "rc 2, nothing written",
           cwd=d)
    simple("PYLINKJL_CACHE_DIR a file", ["link", ARCH, "-o", d / "y.so", *L], "PYLINKJL_CACHE_DIR=FILE link", 14,
           "rc 14 naming PYLINKJL_CACHE_DIR", env={**ENV, "PYLINKJL_CACHE_DIR": str(d / "file")},
           must="PYLINKJL_CACHE_DIR")
    simple("PYLINKJL_CACHE_DIR on a read-only fs", ["link", ARCH, "-o", d / "y.so", *L],
           "PYLINKJL_CACHE_DIR=RO/c link", 10, "rc 10", env={**ENV, "PYLINKJL_CACHE_DIR": str(ro / "c")})
    simple("output on /proc", ["link", ARCH, "-o", "/proc/pylinkjl-test.so", *L], "link -o /proc/x.so",
           {8, 11, 14}, "a named file-system error")
    simple("output on /sys", ["link", ARCH, "-o", "/sys/pylinkjl-test.so", *L], "link -o /sys/x.so", {8, 10, 11},
           "a named file-system error")
    perm = fresh("perm")
    os.chmod(perm, 0o755)
    (perm / "locked").mkdir(mode=0o555)
    shutil.copy(ARCH, perm / "pkg.a")
    os.chmod(perm / "pkg.a", 0o644)
    home = perm / "home"
    home.mkdir()
    shutil.chown(home, "nobody", "nogroup")
    as_nobody = {**ENV, "PYLINKJL_CACHE_DIR": str(home / "cache"), "HOME": str(home)}
    simple("permission-denied folder (as nobody)", ["link", perm / "pkg.a", "-o", perm / "locked/x.so", *L],
           "(nobody) link -o locked/x.so", 11, "rc 11", user="nobody", env=as_nobody, must="Permission denied")
    os.chmod(perm / "pkg.a", 0o000)
    simple("unreadable input (as nobody)", ["link", perm / "pkg.a", "-o", home / "x.so", *L],
           "(nobody) link pkg.a (mode 000)", {2, 3}, "rc 2 (click: not readable) or 3", user="nobody", env=as_nobody, must="readable")
    simple("TMPDIR missing (verify --reproducible)", ["verify", W / "warm.so", "--object", ARCH, "--reproducible"],
           "TMPDIR=/nonexistent verify --reproducible", {0, 8}, "a result or a named error",
           env={**ENV, "TMPDIR": "/nonexistent"})


def options() -> None:
    for v in ("9.9", "2.0", "1.15"):
        simple(f"--julia-version {v}", ["link", ARCH, "-o", W / "x.so", *L, "--julia-version", v, "--dry-run"],
               f"link --julia-version {v}", 2, "rc 2")
    simple("--julia-version 1.14 (master)", ["link", ARCH, "-o", W / "x.so", *L, "--julia-version", "1.14",
                                             "--dry-run"], "link --julia-version 1.14 --dry-run", 0, "rc 0 (master)")
    simple("--target ''", ["link", ARCH, "-o", W / "x.so", "--target", ""], "link --target ''", 2, "rc 2")
    simple("--julia-flags unterminated", ["inspect", REAL_JI, "--julia-flags", '"unterminated'],
           "inspect --julia-flags '\"unterminated'", 2, "rc 2")
    for v in ("inf", "nan", "0", "-1"):
        simple(f"--timeout {v}", ["link", ARCH, "-o", W / "x.so", *L, "--timeout", v], f"link --timeout {v}", 2,
               "rc 2, LLD not started")
    simple("depot --cpu nosuchcpu", ["depot", W, "--cpu", "nosuchcpu"], "depot D --cpu nosuchcpu", 2,
           "rc 2 at once (branch fleet)")
    simple("relink -j 0", ["relink", ARCH, "--out-dir", W / "jobs", *L, "-j", "0"], "relink -j 0", 2, "rc 2")
    bad = os.fsencode(W) + b"/bad\xff.ji"
    shutil.copy(REAL_JI, bad)
    rc, out, _err, _ = run([b"inspect", b"--json", bad])
    ok = rc == 0 and "\\udc" not in out and "\\ufffd" in out
    shown = json.loads(out)["path"][-10:] if rc == 0 else "?"
    record("--json with a non-UTF-8 path", "inspect --json $'bad\\xff.ji'", "valid UTF-8, U+FFFD, no \\udcXX",
           f"rc {rc}; path ends {shown!r}", ok)


def names() -> None:
    d = fresh("names")
    for label, name in (("a newline", "a\nb.so"), ("unicode", "ünï cødé ✓.so"), ("a leading dash", "-o.so"),
                        ("quotes and $", "it's \"$HOME\".so")):
        shown = repr(name)
        simple(f"output name with {label}", ["link", ARCH, "-o", d / name, *L], f"link -o {shown}", 0, "rc 0",
               folder=d)
        simple(f"output name with {label}, response file", ["link", ARCH, "-o", d / ("r" + name), *L,
                                                           "--response-file"], f"link -o {shown} --response-file", 0,
               "rc 0", folder=d)
    nl = d / "in\nput.a"
    shutil.copy(ARCH, nl)
    simple("input name with a newline", ["link", nl, "-o", d / "nl.so", *L], "link $'in\\nput.a'", 0, "rc 0")
    simple("LC_ALL=C and a unicode path", ["link", ARCH, "-o", d / "ç.so", *L], "LC_ALL=C link -o ç.so", 0, "rc 0",
           env={**ENV, "LC_ALL": "C", "LANG": "C"})


def huge_argv() -> None:
    d = fresh("argv")
    (d / "e.c").write_text("")
    subprocess.run([CLANG, "--target=x86_64-linux-gnu", "-c", str(d / "e.c"), "-o", str(d / "e.o")], check=True)
    objs: list[str | bytes | Path] = []
    for i in range(3000):
        p = d / (f"{i:05d}-" + "x" * 240 + ".o")
        os.link(d / "e.o", p)
        objs.append(p)
    simple("huge argv (3000 inputs, 0.8 MB)", ["link", ARCH, *objs, "-o", d / "big.so", *L],
           "link pkg.a + 3000 objects with 240-character names", 0, "rc 0", folder=d, timeout=300)


def signals() -> None:
    d = fresh("sig")
    fake, marker = slow_lld(d)
    (d / "x.so").write_bytes(b"old")
    for sig, want in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGQUIT, 131)):
        name = signal.Signals(sig).name
        signal_case(f"{name} during link", ["link", str(ARCH), "-o", str(d / "x.so"), *L, "--lld", str(fake)],
                    sig, want, d, marker, f"link (a hanging LLD) + kill -{name[3:]}")
    if (d / "x.so").read_bytes() != b"old":
        record("old output after the signals", "", "untouched", "CHANGED", False)
    signal_case("SIGKILL during link", ["link", str(ARCH), "-o", str(d / "k.so"), *L, "--lld", str(fake)],
                signal.SIGKILL, -9, d, marker, "link (a hanging LLD) + kill -KILL")
    out = d / "out"
    out.mkdir()
    signal_case("SIGTERM during relink", ["relink", str(ARCH), "--out-dir", str(out), *L, "--lld", str(fake)],
                signal.SIGTERM, 143, out, marker, "relink (a hanging LLD) + kill -TERM")
    tmp = d / "tmp"
    tmp.mkdir()
    signal_case("SIGHUP during verify --reproducible", ["verify", str(W / "warm.so"), "--object", str(ARCH),
                                                        "--reproducible"], signal.SIGHUP, 129, tmp, marker,
                "verify --reproducible (a hanging LLD) + kill -HUP",
                env={**ENV, "PYLINKJL_LLD": str(fake), "TMPDIR": str(tmp)})
    bad = []
    for delay in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5):
        p = subprocess.Popen([PY, "-m", "pylinkjl", "link", str(ARCH), "-o", str(d / "s.so"), *L, "--dry-run"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        _, e = p.communicate(timeout=30)
        if p.returncode not in (0, 130, -2) or b"Aborted" in e:
            bad.append((delay, p.returncode))
    record("Ctrl-C at 7 points of start-up", "link --dry-run + SIGINT after 50 ... 500 ms",
           "rc 130 (0 if it finished), never 'Aborted!' rc 1", f"not so: {bad}" if bad else
           "every run 130 or 0 (-2 only before Python reaches pylinkjl)", not bad)


def concurrency() -> None:
    d = fresh("conc")
    procs = [subprocess.Popen([PY, "-m", "pylinkjl", "link", str(ARCH), "-o", str(d / "same.so"), *L],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV) for _ in range(12)]
    rcs = [p.wait(timeout=120) for p in procs]
    vr, _, _, _ = run(["verify", d / "same.so"])
    record("12 concurrent links to one output", "12 x link pkg.a -o same.so", "all rc 0, a valid image, no litter",
           f"rcs {sorted(set(rcs))}; verify rc {vr}; left {dots(d)}", set(rcs) == {0} and vr == 0 and not dots(d))
    cold = d / "cold-cache"
    procs = [subprocess.Popen([PY, "-m", "pylinkjl", "link", str(ARCH), "-o", str(d / f"c{i}.so"), *L],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**ENV, "PYLINKJL_CACHE_DIR": str(cold)}) for i in range(8)]
    rcs = [p.wait(timeout=120) for p in procs]
    stubs = cold / "stubs"
    tmps = [p.name for p in stubs.iterdir() if p.name.startswith(".")] if stubs.exists() else []
    record("8 concurrent links filling one cold stub cache", "8 x link (an empty PYLINKJL_CACHE_DIR)",
           "all rc 0, one complete stub set", f"rcs {sorted(set(rcs))}; temporary folders left {tmps}",
           set(rcs) == {0} and not tmps)
    jd = fresh("conc-ji")
    shutil.copy(REAL_JI, jd)
    procs = [subprocess.Popen([PY, "-m", "pylinkjl", "reseal", str(jd / REAL_JI.name), "--image", str(REAL_SO)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV) for _ in range(6)]
    rcs = [p.wait(timeout=120) for p in procs]
    record("6 concurrent reseals of one .ji", "6 x reseal X.ji --image X.so", "one outcome for all, no litter",
           f"rcs {sorted(set(rcs))}; left {dots(jd)}", len(set(rcs)) == 1 and not dots(jd))
    p1 = subprocess.Popen([PY, "-m", "pylinkjl", "cpu-target", "--recommend", "x86_64"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=ENV)
    assert p1.stdout is not None
    p1.stdout.close()
    _, e = p1.communicate(timeout=30)
    record("stdout closed early (EPIPE)", "cpu-target --recommend x86_64 | (closed)", "no traceback",
           f"rc {p1.returncode}", b"Traceback" not in e)


def main() -> None:
    rc, _, err, _ = run(["link", ARCH, "-o", W / "warm.so", *L])
    assert rc == 0, err
    for part in (special_outputs, fifos, devices_and_links, sparse_files, environment, options, names, huge_argv,
                 signals, concurrency):
        part()


if __name__ == "__main__":
    try:
        main()
    finally:
        for m in reversed(MOUNTS):
            subprocess.run(["chattr", "-R", "-i", str(m)], capture_output=True, check=False)
            subprocess.run(["umount", "-l", str(m)], capture_output=True, check=False)
        shutil.rmtree(W, ignore_errors=True)
        print("| # | case | command | expected | result | held |")
        print("|---|---|---|---|---|---|")
        for i, (case, command, expected, result, held) in enumerate(ROWS, 1):
            cells = [c.replace("|", "\\|").replace("\n", "\\n") for c in (case, command, expected, result)]
            print(f"| {i} | {cells[0]} | `{cells[1]}` | {cells[2]} | {cells[3]} | {'yes' if held else '**no**'} |")
        print(f"\n{sum(r[4] for r in ROWS)} of {len(ROWS)} held", file=sys.stderr)
