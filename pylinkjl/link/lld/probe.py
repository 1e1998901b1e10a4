"""Probing a candidate: run ``--version`` once (with a timeout), remember the answer per binary in memory and
on disk, and say what is wrong with one that cannot be used."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from pylinkjl.link.cachedir import read_json, write_json
from pylinkjl.link.lld.search import LldCandidate
from pylinkjl.process import run_process

log = logging.getLogger("pylinkjl.link.lld")

MIN_VERSION = (14, 0, 0)  # the oldest LLD a Julia release bundled for pkgimages (1.9: LLVM 14)
_VERSION_RE = re.compile(r"LLD (\d+)\.(\d+)\.(\d+)")


@dataclass(frozen=True)
class LldProbe:
    """An LLD candidate and what running ``--version`` told about it."""

    candidate: LldCandidate
    version: tuple[int, int, int] | None
    version_text: str
    problem: str | None

    @property
    def usable(self) -> bool:
        return self.problem is None and self.version is not None and self.version >= MIN_VERSION

    @property
    def version_string(self) -> str | None:
        return None if self.version is None else ".".join(map(str, self.version))


_probe_cache: dict[tuple[object, ...], tuple[tuple[int, int, int] | None, str, str | None]] = {}
_probe_lock = threading.Lock()


def clear_probe_cache() -> None:
    with _probe_lock:
        _probe_cache.clear()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "(no output)"


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def version_argv(candidate: LldCandidate) -> list[str]:
    if candidate.driver == "generic":
        return [str(candidate.path), "-flavor", "gnu", "--version"]
    return [str(candidate.path), "--version"]


def _run_probe(candidate: LldCandidate, timeout: float, environ: Mapping[str, str]) \
        -> tuple[tuple[int, int, int] | None, str, str | None, bool]:
    """(version, version_text, problem, cacheable)."""
    path = candidate.path
    if not path.exists():
        return None, "", "does not exist", False
    if not path.is_file():
        return None, "", "is not a file", False
    if not os.access(path, os.X_OK):
        return None, "", f"is not executable (chmod +x {path})", False
    try:
        done = run_process(version_argv(candidate), env={**environ, **candidate.env}, timeout=timeout)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return None, "", f"cannot be started: {why} (a binary for another OS or architecture?)", True
    if done.timed_out:
        return None, "", f"did not answer --version within {timeout:g} s", False
    m = _VERSION_RE.search(done.output)
    text = _first_line(done.output)
    if done.returncode < 0:
        return None, text, f"crashed ({_signal_name(done.returncode)}) running --version: {text}", True
    if done.returncode != 0 or m is None:
        if "generic driver" in done.output:
            problem = f"refused to run as a generic driver without -flavor: {text}"
        elif done.returncode != 0:
            problem = f"crashed (exit status {done.returncode}) running --version: {text}"
            if "shared librar" in done.output or "Library not loaded" in done.output:
                problem += " (its libLLVM is not on the library path)"
        else:
            problem = f"printed no LLD version: {text}"
        return None, text, problem, True
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if version < MIN_VERSION:
        return version, text, (
            f"LLD {'.'.join(map(str, version))} is older than {MIN_VERSION[0]}, the oldest LLD Julia used for "
            "pkgimages; install a newer one (apt-get install lld-19)"), True
    return version, text, None, True


def probe(candidate: LldCandidate, timeout: float = 5.0, *, environ: Mapping[str, str] | None = None) -> LldProbe:
    """Run ``--version`` once per binary (cached by path, size, mtime and environment)."""
    base = os.environ if environ is None else environ
    key: tuple[object, ...] | None
    try:
        st = os.stat(candidate.path)
        key = (str(candidate.path), candidate.driver, st.st_size, st.st_mtime_ns, tuple(sorted(candidate.env.items())))
    except OSError:
        key = None
    if key is not None:
        with _probe_lock:
            hit = _probe_cache.get(key)
        if hit is None:
            hit = _disk_probe(key)
            if hit is not None:  # read the record once per process, not once per link
                with _probe_lock:
                    _probe_cache[key] = hit
        if hit is not None:
            return LldProbe(candidate, *hit)
    version, text, problem, cacheable = _run_probe(candidate, timeout, base)
    log.debug("probed %s: %s %s", candidate.path, text, problem or "")
    if key is not None and cacheable:
        with _probe_lock:
            _probe_cache[key] = (version, text, problem)
        _remember_probe(key, version, text, problem)
    return LldProbe(candidate, version, text, problem)


_PROBES_FILE = "lld-probes.json"


def _disk_probe(key: tuple[object, ...]) -> tuple[tuple[int, int, int] | None, str, str | None] | None:
    """A probe another pylinkjl process made of the same binary (same path, size, mtime, environment):
    saves starting LLD once per command (~15 ms)."""
    entry = read_json(_PROBES_FILE).get(repr(key))
    if not (isinstance(entry, list) and len(entry) == 3):
        return None
    version, text, problem = entry
    parsed = tuple(version) if isinstance(version, list) and len(version) == 3 else None
    return (parsed, str(text), problem if isinstance(problem, str) else None)


def _remember_probe(key: tuple[object, ...], version: tuple[int, int, int] | None, text: str,
                    problem: str | None) -> None:
    records = read_json(_PROBES_FILE)
    if len(records) > 64:  # binaries come and go; keep the record small
        records.clear()
    records[repr(key)] = [list(version) if version else None, text, problem]
    write_json(_PROBES_FILE, records)
