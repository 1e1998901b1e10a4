"""``judge_with_runtime``: let the real Julia runtime of a tree load a package image, in a child process.

How the child runs is decided first (:func:`plan_runner`, pure): natively for a runtime of this host's
platform, under ``qemu-aarch64`` with the arm64 cross C library for a linux-aarch64 runtime on an x86_64
host, under Wine for a windows-x86_64 runtime; anything else (a macOS runtime on Linux, ...) is not
applicable, with the reason. Then the loader is built (cached), the child is started through
:mod:`pylinkjl.process` (timeout and process-group kill included) and its output is read back
(:mod:`pylinkjl.images.judge.result`). The child boots Julia's signal handlers and may die: that is why
it is a child, and a death is reported, not raised.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.errors import InputError, PylinkjlError, TargetError
from pylinkjl.images.judge.loader import CROSS_SYSROOT, build_loader
from pylinkjl.images.judge.result import JudgeResult, parse_output
from pylinkjl.images.judge.stamp import stamp
from pylinkjl.images.judge.tree import RuntimeTree, open_runtime_tree
from pylinkjl.process import run_process, which

log = logging.getLogger("pylinkjl.images.judge")

DEFAULT_TIMEOUT = 300.0  # the first Wine run creates its prefix (tens of seconds)


@dataclass(frozen=True)
class Runner:
    """How the loader runs: ``prefix`` goes before the loader's path; ``guest_env`` is given to the loader
    (through qemu's -E for qemu, so that qemu itself does not read it)."""

    name: str  # native | qemu-aarch64 | wine64 | none
    loader_platform: str | None
    prefix: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)  # for the runner itself
    windows_paths: bool = False
    reason: str = ""  # why not applicable

    @property
    def applicable(self) -> bool:
        return self.loader_platform is not None


def _which(names: tuple[str, ...], extra: tuple[str, ...], environ: Mapping[str, str]) -> str | None:
    for name in names:
        found = which(name, environ)
        if found:
            return found
    return next((p for p in extra if os.access(p, os.X_OK)), None)


def plan_runner(runtime_platform: str, host_platform: str, environ: Mapping[str, str] = os.environ) -> Runner:
    """How a runtime of ``runtime_platform`` can run on ``host_platform`` (looks up programs, runs nothing)."""
    if not host_platform.startswith("linux-"):
        return Runner("none", None, reason=f"the runtime judge runs on Linux hosts; this host is {host_platform}")
    if runtime_platform == host_platform:
        return Runner("native", host_platform)
    if runtime_platform == "linux-aarch64" and host_platform == "linux-x86_64":
        qemu = environ.get("PYLINKJL_QEMU_AARCH64") or _which(("qemu-aarch64", "qemu-aarch64-static"), (), environ)
        sysroot = environ.get("PYLINKJL_AARCH64_SYSROOT", CROSS_SYSROOT["linux-aarch64"])
        if qemu is None:
            return Runner("none", None, reason="a linux-aarch64 runtime needs qemu-aarch64 on this x86_64 host "
                                               "(apt-get install qemu-user libc6-arm64-cross)")
        if not (Path(sysroot) / "lib" / "ld-linux-aarch64.so.1").exists():
            return Runner("none", None, reason=f"a linux-aarch64 runtime needs the arm64 C library in {sysroot} "
                                               "(apt-get install libc6-arm64-cross)")
        return Runner("qemu-aarch64", "linux-aarch64", (qemu, "-L", sysroot))
    if runtime_platform == "windows-x86_64" and host_platform == "linux-x86_64":
        wine = environ.get("PYLINKJL_WINE") or _which(("wine64",), ("/usr/lib/wine/wine64",), environ)
        if wine is None:
            return Runner("none", None, reason="a windows-x86_64 runtime needs Wine (wine64) on this host")
        from pylinkjl.link.cachedir import default_cache_root

        prefix = environ.get("PYLINKJL_WINEPREFIX") or str(default_cache_root() / "judge" / "wineprefix")
        return Runner("wine64", "windows-x86_64", (wine,), {
            "WINEPREFIX": prefix, "WINEDEBUG": "-all", "WINEDLLOVERRIDES": "mscoree,mshtml="},
            windows_paths=True)
    if runtime_platform.startswith("macos-"):
        why = f"a {runtime_platform} runtime cannot run on a Linux host (no Mach-O loader here)"
    else:
        why = f"no way to run a {runtime_platform} runtime on a {host_platform} host"
    return Runner("none", None, reason=why)


def _winpath(path: Path) -> str:
    """The path Wine's Z: drive gives a host path."""
    return "Z:" + str(path).replace("/", "\\")


def _image_facts(image: Path) -> tuple[list[str], bytes, str]:
    """(DT_NEEDED / imported DLL names, serialized target list, the Julia version that list is written for)
    of the image; empty when unreadable: the runtime will say what is wrong with it."""
    needed: list[str] = []
    targets, version = b"", ""
    try:
        from pylinkjl.binfmt.lief import open_binary

        with open_binary(image) as view:
            needed = list(view.needed_libraries)
    except (PylinkjlError, ImportError) as exc:
        log.debug("cannot read the libraries %s needs: %s", image, exc)
    try:
        from pylinkjl.caches.inspection import layout_version
        from pylinkjl.images.decode import read_image

        info = read_image(image)
        targets, version = bytes(info.target_list), layout_version(info.layout, list(info.targets))
    except (PylinkjlError, ImportError) as exc:
        log.debug("cannot read the target list of %s: %s", image, exc)
    return needed, targets, version


def _platform_mismatch(image: Path, runtime_platform: str) -> str:
    """Why a runtime of ``runtime_platform`` cannot judge ``image`` (an image of another OS or architecture),
    or "" (also when the image cannot be read: the runtime will say what is wrong with it)."""
    try:
        from pylinkjl.images.decode import read_image

        info = read_image(image)
    except (PylinkjlError, ImportError):
        return ""
    image_os = {"elf": "linux", "macho": "macos", "pe": "windows"}.get(info.format)
    image_platform = f"{image_os}-{info.arch}"
    if image_os is None or image_platform == runtime_platform:
        return ""
    return f"the image is for {image_platform}, the runtime tree is {runtime_platform}: choose a runtime of the image's platform"


def _shim_names(version: str | None) -> set[str]:
    """The names a stock tree of this version gives libjulia and libjulia-internal: no version, the major
    version, major.minor and the full version (``libjulia.so.1.13.1`` down to ``libjulia.so``)."""
    parts = (version or "").split(".")[:3]
    suffixes = [""] + ["." + ".".join(parts[:n]) for n in range(1, len(parts) + 1) if parts[0]]
    return {f"{lib}.so{s}" for lib in ("libjulia", "libjulia-internal") for s in suffixes}


def _shim(tree: RuntimeTree, needed: list[str], folder: Path) -> list[str]:
    """Links named as the image asks for libjulia (``libjulia.so.1.13``, ...) to the tree's own, possibly grafted,
    files, where the tree has no file of that name: what a stock tree's symlinks would provide. Only names
    of the tree's own version: an image asking for ``libjulia.so.1.10`` of a 1.13 tree is left to fail."""
    made = []
    have = {p.name for d in tree.library_dirs if d.is_dir() for p in d.iterdir()}
    names = _shim_names(tree.version)
    for name in needed:
        if name in have or name not in names:
            continue
        real = tree.libjulia_internal if name.startswith("libjulia-internal") else tree.libjulia
        if real is None:
            continue
        (folder / name).symlink_to(real)
        made.append(f"{name} -> {real.name}")
    return made


def judge_with_runtime(image: str | os.PathLike[str], runtime: str | os.PathLike[str], *,
                       sysimage: str | os.PathLike[str] | None = None, cpu_target: str | None = None,
                       handler: bool = True, timeout: float = DEFAULT_TIMEOUT,
                       environ: Mapping[str, str] | None = None) -> JudgeResult:
    """Boot the real runtime of the tree ``runtime`` with ``sysimage`` (default: the tree's
    ``lib/julia/sys.*``; a juliac library works) and let it restore ``image`` with
    ``jl_restore_package_image_from_file``. ``cpu_target`` is the session's ``-C``. ``handler=False``
    calls it without an exception handler (an error then ends the child, and is read from its output).
    Raises InputError for a missing image, tree or system image; otherwise what the runtime said, or why
    it could not be asked, is in the result."""
    from pylinkjl.target import host_target

    env_in = dict(os.environ if environ is None else environ)
    path = Path(os.path.abspath(image))
    if not path.is_file():
        raise InputError(path, "no such file")
    tree = open_runtime_tree(runtime)
    sys_path = Path(os.path.abspath(sysimage)) if sysimage is not None else tree.sysimage
    host = host_target().name
    runner = plan_runner(tree.platform, host, env_in)
    why_not = runner.reason or _platform_mismatch(path, tree.platform)
    if why_not:  # decided before the system image is asked for: a runtime that cannot judge needs none
        result = JudgeResult(image=str(path), runtime=tree.to_dict(), sysimage=None if sys_path is None else
                             str(sys_path), platform=tree.platform, runner="none", cpu_target=cpu_target)
        result.applicable, result.reason, result.outcome = False, why_not, "not-applicable"
        return result
    if sys_path is None:
        raise InputError(tree.home, "the runtime tree has no system image (lib/julia/sys.*)",
                         hint="pass --sysimage IMAGE (a juliac library of the same runtime works)")
    if not sys_path.is_file():
        raise InputError(sys_path, "system image not found")
    if timeout is None or not timeout > 0 or timeout == float("inf"):
        raise TargetError(f"timeout must be a positive number of seconds, not {timeout!r}")
    result = JudgeResult(image=str(path), runtime=tree.to_dict(), sysimage=str(sys_path), platform=tree.platform,
                         runner=runner.name, cpu_target=cpu_target)
    assert runner.loader_platform is not None
    loader = build_loader(runner.loader_platform)
    result.loader = str(loader.path)
    needed, targets, targets_version = _image_facts(path)
    conv = _winpath if runner.windows_paths else str
    guest = {
        "PYLINKJL_JUDGE_LIBJULIA": conv(tree.libjulia), "PYLINKJL_JUDGE_BINDIR": conv(tree.bindir),
        "PYLINKJL_JUDGE_SYSIMAGE": conv(sys_path),
        "PYLINKJL_JUDGE_PKGNAME": path.stem.split("_")[0] or "Package",
        # processor.cpp of Julia > 1.13 prints its target selection with this; 1.13.1 has no such switch
        "JULIA_DEBUG": "cpufeatures",
    }
    if cpu_target:
        guest["PYLINKJL_JUDGE_CPU"] = cpu_target
    if targets:
        guest["PYLINKJL_JUDGE_TARGETS"] = targets.hex()
        guest["PYLINKJL_JUDGE_TARGETS_LINE"] = targets_version
    if not handler:
        guest["PYLINKJL_JUDGE_EH_OFFSET"] = "none"
    with tempfile.TemporaryDirectory(prefix="pylinkjl-judge-") as work:
        shim = Path(work)
        links = [] if runner.windows_paths else _shim(tree, needed, shim)
        if links:
            log.info("names the image needs, linked to the tree's libraries: %s", ", ".join(links))
        stamped = None if runner.windows_paths else stamp(path, tree, shim / "image")
        if stamped is not None:
            log.info("the image, for the tree: %s", stamped[1])
        result.adapted = links + ([stamped[1]] if stamped is not None else [])
        guest["PYLINKJL_JUDGE_IMAGE"] = conv(path if stamped is None else stamped[0])
        if not runner.windows_paths:
            dirs = [shim] + tree.library_dirs
            guest["LD_LIBRARY_PATH"] = os.pathsep.join(map(str, dirs))
        env = {k: v for k, v in env_in.items() if k not in ("LD_LIBRARY_PATH", "DISPLAY", "WAYLAND_DISPLAY")}
        env.update(runner.env)
        argv = list(runner.prefix)
        if runner.name.startswith("qemu"):
            for key, value in guest.items():
                argv += ["-E", f"{key}={value}"]
        else:
            env.update(guest)
        stdio = shim / "runtime-output.txt"
        if runner.windows_paths:  # Julia under Wine cannot boot with a pipe as its stdout (see loader.c)
            env["PYLINKJL_JUDGE_STDIO"] = _winpath(stdio)
        argv.append(str(loader.path))
        result.argv = argv
        done = run_process(argv, env=env, timeout=timeout, cwd=work)
        output = done.output
        if stdio.is_file():
            output += "\n" + stdio.read_text(encoding="utf-8", errors="replace")
    result.seconds = done.seconds
    return parse_output(result, output, done.returncode, done.timed_out)


def judge_inspected(image: str | os.PathLike[str], runtime: str | os.PathLike[str], *, system_image: bool,
                    sysimage: str | os.PathLike[str] | None = None, cpu_target: str | None = None) -> JudgeResult:
    """The runtime's verdict beside ``inspect``'s: a package image is restored (as :func:`judge_with_runtime`
    does); a system image is booted as the session's system image, so its ``boot`` stage is the answer to
    "does Julia start here"."""
    if system_image:
        return judge_with_runtime(image, runtime, sysimage=image, cpu_target=cpu_target)
    return judge_with_runtime(image, runtime, sysimage=sysimage, cpu_target=cpu_target)
