"""Survey the caches of one or more Julia depots: one row per ``.ji``, a summary, and the files
that should not be there (orphans, leftovers).

``compiled/v*/<Package>/`` holds ``<slug>_<slug>.ji`` + ``.so``/``.dylib``/``.dll`` pairs. A
``.ji`` with native code whose image is gone, an image whose ``.ji`` is gone, a ``.dSYM`` without
its image, ``jl_XXXXXX`` temporaries of an interrupted precompile, and the staging folders and reseal
temporaries of a pylinkjl that was killed (provably stale only: :mod:`pylinkjl.fs.leftovers`) are named. Files are read in
a small thread pool: the CRCs run in C without the GIL, so the scan is bound by the disk.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pylinkjl.caches.ji import read_ji
from pylinkjl.caches.verdict import (
    Session,
    cpu_check,
    fleet_verdicts,
    image_facts,
    load_checks,
    tables_for,
    verdict,
)
from pylinkjl.errors import InputError, PylinkjlError
from pylinkjl.fs.leftovers import RESEAL_SUFFIX, STAGING_PREFIX, find_stale

log = logging.getLogger("pylinkjl.caches.depot")

IMAGE_EXTS = (".so", ".dylib", ".dll")
_VERSION_DIR = re.compile(r"^v\d+\.\d+$")
_TEMP = re.compile(r"^jl_[A-Za-z0-9]{4,6}(\.tmp)?$")


@dataclass
class CacheRow:
    path: str
    package: str
    uuid: str | None
    julia_version: str
    directory_version: str
    flags: str
    flags_byte: str
    targets: list[str]
    pkgimage: bool
    image: str | None
    image_exists: bool
    crc_ji_ok: bool | None
    crc_so_ok: bool | None
    loads: bool | None
    rejected_by: str | None
    reason: str | None
    size: int
    image_size: int | None
    cells: list[dict[str, Any]] | None = None  # with a fleet: one verdict per CPU (fleet_cell)

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        if self.cells is None:
            del out["cells"]
        return out


@dataclass
class DepotReport:
    depots: list[str]
    cpus: list[str] | None = None  # the fleet's CPU names (columns of the matrix), None: one session
    sysimage: dict[str, Any] | None = None
    rows: list[CacheRow] = field(default_factory=list)
    orphans: list[dict[str, str]] = field(default_factory=list)
    stale: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    bytes_hashed: int = 0

    @property
    def summary(self) -> dict[str, Any]:
        reasons = Counter(r.rejected_by for r in self.rows if r.loads is False)
        return {
            "caches": len(self.rows), "packages": len({r.package for r in self.rows}),
            "loads": sum(r.loads is True for r in self.rows), "rejected": sum(r.loads is False for r in self.rows),
            "unknown": sum(r.loads is None for r in self.rows), "rejected_by": dict(sorted(reasons.items())),
            "orphans": len(self.orphans), "stale": len(self.stale), "errors": len(self.errors),
            "bytes_hashed": self.bytes_hashed, "seconds": round(self.seconds, 3),
        }

    @property
    def fleet_summary(self) -> list[dict[str, Any]]:
        """Per CPU of the fleet: how many caches load, are rejected (and why), or do not apply (other arch)."""
        out = []
        for i, cpu in enumerate(self.cpus or []):
            cells = [r.cells[i] for r in self.rows if r.cells]
            reasons = Counter(c["rejected_by"] for c in cells if c["loads"] is False)
            out.append({"cpu": cpu, "loads": sum(c["loads"] is True for c in cells),
                        "rejected": sum(c["loads"] is False for c in cells),
                        "not_applicable": sum(not c["applies"] for c in cells),
                        "unknown": sum(c["applies"] and c["loads"] is None for c in cells),
                        "rejected_by": dict(sorted(reasons.items()))})
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"depots": self.depots, "summary": self.summary}
        if self.cpus:
            out.update(cpus=self.cpus, fleet=self.fleet_summary)
        if self.sysimage:
            out["sysimage"] = self.sysimage
        out.update(caches=[r.to_dict() for r in self.rows], orphans=self.orphans, stale=self.stale,
                   errors=self.errors)
        return out


def compiled_dirs(depot: Path) -> list[Path]:
    """The ``compiled/vX.Y`` directories of a depot (also accepts ``compiled`` or ``vX.Y`` itself)."""
    if not depot.is_dir():
        raise InputError(depot, "not a directory")
    if _VERSION_DIR.match(depot.name):
        return [depot]
    base = depot if depot.name == "compiled" else depot / "compiled"
    if not base.is_dir():
        raise InputError(depot, "no compiled/ directory: not a Julia depot", hint="pass e.g. ~/.julia")
    return sorted(p for p in base.iterdir() if p.is_dir() and _VERSION_DIR.match(p.name))


@dataclass
class _Plan:
    caches: list[tuple[Path, str]] = field(default_factory=list)  # (.ji, directory version)
    orphans: list[dict[str, str]] = field(default_factory=list)
    stale: list[dict[str, str]] = field(default_factory=list)


def _plan(depots: Iterable[Path]) -> _Plan:
    plan = _Plan()
    for depot in depots:
        for vdir in compiled_dirs(depot):
            for pkg_dir in sorted(p for p in vdir.iterdir() if p.is_dir()):
                _plan_package(pkg_dir, vdir.name, plan)
    return plan


def _plan_package(pkg_dir: Path, version_dir: str, plan: _Plan) -> None:
    entries = {e.name: e for e in os.scandir(pkg_dir)}
    stems_ji = {n[:-3] for n in entries if n.endswith(".ji")}
    for name in sorted(entries):
        path = pkg_dir / name
        stem, ext = os.path.splitext(name)
        if ext == ".ji":
            plan.caches.append((path, version_dir))
        elif ext in IMAGE_EXTS and stem not in stems_ji:
            plan.orphans.append({"path": str(path), "kind": "image", "why": "image without its .ji"})
        elif name.endswith(".dSYM") and name[:-5] not in entries:
            plan.orphans.append({"path": str(path), "kind": "dSYM", "why": "debug symbols without their image"})
        elif _TEMP.match(name):
            plan.stale.append({"path": str(path), "kind": "temporary",
                               "why": "left over by an interrupted precompile (jl_XXXXXX)"})
    if any(name.startswith(STAGING_PREFIX) or name.endswith(RESEAL_SUFFIX) for name in entries):
        plan.stale += [left.to_dict() for left in find_stale(pkg_dir)]  # a killed pylinkjl link or reseal


def _row(path: Path, version_dir: str, session: Session,
         fleet: list[Session] | None = None) -> tuple[CacheRow, int]:
    ji = read_ji(path)
    t = tables_for(ji.julia_version, ji.arch)
    image: dict[str, Any] = image_facts(ji) if ji.is_pkgimage else {"path": str(ji.image_path), "exists": False}
    cells = fleet_verdicts(ji, t, image, fleet) if fleet else None
    if cells:  # the row's own verdict is the first CPU's (a CPU of another architecture: unknown)
        v = {k: cells[0][k] for k in ("loads", "rejected_by", "reason")}
    else:
        cpu = cpu_check(ji.targets, t, session, ji.arch, ji.julia_version) if ji.is_pkgimage else None
        v = verdict(load_checks(ji, session, image, cpu))
    hashed = ji.size + int(image.get("size", 0) if "crc32c" in image else 0)
    row = CacheRow(str(path), ji.package, ji.worklist[0].uuid if ji.worklist else None, ji.julia_version,
                   version_dir, str(ji.cache_flags), f"{ji.cache_flags_byte:#04x}", [r.name for r in ji.targets],
                   ji.is_pkgimage, image["path"] if ji.is_pkgimage else None, bool(image.get("exists")),
                   ji.crc_ji_ok, image.get("crc_ok"), v["loads"], v["rejected_by"], v["reason"], ji.size,
                   image.get("size"), cells)
    return row, hashed


def scan_depot(depots: Iterable[str | os.PathLike[str]], session: Session | None = None, *,
               progress: Callable[[int], None] | None = None, workers: int | None = None,
               on_plan: Callable[[int], None] | None = None, cpus: list[str] | None = None) -> DepotReport:
    """Read every cache of ``depots``. ``on_plan(n)`` is told how many caches there are, then
    ``progress(1)`` after each one (for a progress bar). With ``cpus`` (a fleet), every row also holds
    one verdict per CPU (``CacheRow.cells``, the columns of a matrix); each file is read once."""
    start = time.perf_counter()
    paths = [Path(d).expanduser() for d in depots]
    session = session or Session()
    fleet = [session.for_cpu(c) for c in cpus] if cpus else None
    plan = _plan(paths)
    report = DepotReport([str(p) for p in paths], cpus=list(cpus) if cpus else None,
                         sysimage=session.sysimage.to_dict() if session.sysimage else None,
                         orphans=plan.orphans, stale=plan.stale)
    if on_plan:
        on_plan(len(plan.caches))
    if plan.caches:
        _prime_hosts(plan.caches, [session, *(fleet or [])])

    def job(item: tuple[Path, str]) -> tuple[Path, str, CacheRow | None, int, str | None]:
        path, vdir = item
        try:
            row, hashed = _row(path, vdir, session, fleet)
            return path, vdir, row, hashed, None
        except PylinkjlError as e:
            return path, vdir, None, 0, str(e)
        except OSError as e:
            return path, vdir, None, 0, f"{path}: {e}"

    n_workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        for path, vdir, row, hashed, error in pool.map(job, plan.caches):
            if row is not None:
                report.rows.append(row)
                report.bytes_hashed += hashed
                if row.directory_version != "v" + ".".join(row.julia_version.split(".")[:2]):
                    report.stale.append({"path": row.path, "kind": "misplaced",
                                         "why": f"Julia {row.julia_version} cache in compiled/{vdir}"})
                if row.pkgimage and not row.image_exists:
                    report.orphans.append({"path": row.path, "kind": "ji", "why": ".ji without its image"})
            else:
                report.errors.append({"path": str(path), "error": error or "unreadable"})
            if progress:
                progress(1)
    report.rows.sort(key=lambda r: r.path)
    for lst in (report.orphans, report.stale, report.errors):
        lst.sort(key=lambda d: d["path"])
    report.seconds = time.perf_counter() - start
    return report


def _prime_hosts(caches: list[tuple[Path, str]], sessions: list[Session]) -> None:
    """Detect the host once per (version, arch) before the threads start (it reads /proc/cpuinfo)."""
    seen: set[str] = set()
    for path, _ in caches[:64]:
        try:
            ji = read_ji(path, verify=False)
        except PylinkjlError:
            continue
        key = f"{ji.julia_version}/{ji.arch}"
        if key in seen:
            continue
        seen.add(key)
        t = tables_for(ji.julia_version, ji.arch)
        if t is None:
            continue
        for session in sessions:
            try:
                session.host(t)
            except PylinkjlError:
                pass


def default_depot() -> Path:
    """The depot Julia writes caches into: the first entry of JULIA_DEPOT_PATH, else ~/.julia."""
    first = os.environ.get("JULIA_DEPOT_PATH", "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path("~/.julia").expanduser()
