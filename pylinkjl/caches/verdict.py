"""Would this cache load here? The session that would load it, the CPU match of its targets, and the load
verdict, alone or for a fleet of CPUs (the reports around it are :mod:`pylinkjl.caches.inspection`).

Every function returns plain data (dicts of str/int/bool/list). The load verdict replays the checks of ``Base.stale_cachefile`` in Julia's order
(docs/julia-linking.md §4.1): header, flags, ``--pkgimages``, CPU targets, image present, checksums.
"""

from __future__ import annotations

import logging
import platform
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pylinkjl.binfmt.extent import image_problem
from pylinkjl.binfmt.targetlist import JL_TARGET_UNKNOWN_NAME, JL_TARGET_VEC_CALL, TargetRecord
from pylinkjl.caches.crc import crc32c_file
from pylinkjl.caches.flags import DEFAULT, CacheFlags, flags_match
from pylinkjl.caches.ji import JiFile
from pylinkjl.cpu import features as F
from pylinkjl.cpu.host import HostCpu, WrongArchitecture, detect_host, named_cpu
from pylinkjl.cpu.match import JitTarget, jit_target, match_sysimage, match_targets
from pylinkjl.cpu.sysimage import SystemImage
from pylinkjl.cpu.tables import CpuTables, load, parse_version
from pylinkjl.errors import TargetError
from pylinkjl.target import host_os, julia_kernel

log = logging.getLogger("pylinkjl.caches.verdict")


@dataclass
class Session:
    """The Julia session that would load a cache. ``None`` fields mean "the Julia that wrote it"."""

    julia_version: str | None = None
    julia_commit: str | None = None
    julia_branch: str | None = None
    flags: CacheFlags = DEFAULT
    pkgimages_existing: bool = False
    cpu: str | None = None  # a CPU name (--cpu); None: this machine
    cpu_target: str = "native"  # the session's -C
    sysimage: SystemImage | None = None  # the session's system image (--sysimage); None: not modelled
    _hosts: dict[tuple[Any, ...], HostCpu | TargetError] = field(default_factory=dict, repr=False)
    _jits: dict[tuple[Any, ...], JitTarget] = field(default_factory=dict, repr=False)

    def jit(self, t: CpuTables, host: HostCpu) -> JitTarget:
        """The (cached) JIT target of this session's ``-C`` on ``host`` (constant for every cache of ``t``)."""
        key = ("jit", t.version, t.arch)
        value = self._jits.get(key)
        if value is None:
            stored = self.sysimage.cpu_target_string if self.sysimage else None
            value = self._jits[key] = jit_target(host.name, host.features, t, assumed=host.unknown,
                                                 cpu_target=self.cpu_target, sysimage_target=stored)
        return value

    def for_cpu(self, cpu: str | None) -> Session:
        """The same session on another CPU (one column of a fleet)."""
        return replace(self, cpu=cpu, _hosts={}, _jits={})

    def host(self, t: CpuTables) -> HostCpu:
        """The (cached) host CPU for these tables; raises TargetError/WrongArchitecture."""
        key = (t.version, t.arch)
        if key not in self._hosts:
            try:
                self._hosts[key] = named_cpu(self.cpu, t) if self.cpu else detect_host(t)
            except TargetError as e:
                self._hosts[key] = e
        value = self._hosts[key]
        if isinstance(value, Exception):
            raise value
        return value


def tables_for(version: str, arch: str) -> CpuTables | None:
    try:
        return load(version, arch)
    except TargetError as e:
        log.info("no CPU tables: %s", e)
        return None


# -- targets ------------------------------------------------------------------------------------

def describe_target(i: int, rec: TargetRecord, t: CpuTables | None) -> dict[str, Any]:
    out: dict[str, Any] = {"index": i, "name": rec.name, "flags": rec.flags,
                           "vec_call": bool(rec.flags & JL_TARGET_VEC_CALL),
                           "unknown_name": bool(rec.flags & JL_TARGET_UNKNOWN_NAME), "nwords": rec.nwords}
    if t is None:
        out.update(enabled_bits=rec.enabled_bits(), disabled_count=len(rec.disabled_bits()))
    else:
        out.update(normalized=t.normalize(rec.name), enabled=F.names(rec.en, t),
                   disabled_count=len(F.names(rec.dis, t)), unknown_bits=F.unknown_bits(rec.en | rec.dis, t),
                   vector_bytes=F.max_vector_size(rec.en, t))
        if rec.nwords != t.nwords:
            out["warning"] = f"{rec.nwords} feature words, but {t.label} uses {t.nwords}"
    if rec.ext_features:
        out["ext_features"] = rec.ext_features
    if rec.base is not None:
        out["base"] = rec.base
    return out


def _sysimage_step(image: SystemImage, arch: str, julia_version: str | None, jit: JitTarget, t: CpuTables,
                   host: HostCpu) -> tuple[dict[str, Any], JitTarget | None]:
    """Load the session's system image on ``host`` (``sysimg_init_cb``): its report, and the JIT target the
    package images are then matched against (None: Julia does not start with it)."""
    why = image.fits(arch, t, julia_version)
    if why is not None:
        return {"path": str(image.path), "starts": None, "message": why}, None
    sm = match_sysimage(list(image.targets), jit, t)
    rep: dict[str, Any] = {
        "path": str(image.path), "starts": sm.starts, "chosen": sm.result.best,
        "chosen_name": None if sm.result.best is None else image.targets[sm.result.best].name,
        "jit_narrowed": sm.narrowed,
        "targets": [{"index": v.index, "name": v.name, "reason": v.reason, "missing": v.missing}
                    for v in sm.result.verdicts],
    }
    if not sm.starts:
        rep["message"] = f"Julia does not start on {host.name} with {image.path.name}: {sm.error}"
        return rep, None
    return rep, sm.jit


def cpu_check(targets: list[TargetRecord], t: CpuTables | None, session: Session, arch: str | None = None,
              julia_version: str | None = None) -> dict[str, Any]:
    """Would a session on ``session``'s CPU pick one of ``targets``? Julia's reasons, per target. With a
    system image in the session, the image is judged against the JIT target that system image leaves
    (julia-linking.md §4.2); ``arch`` is the cache's architecture (default: the tables')."""
    arch = arch or (t.arch if t is not None else "")
    if t is None:
        return {"ok": None, "message": "no CPU tables for this Julia version: target matching not checked"}
    try:
        host = session.host(t)
    except WrongArchitecture as e:
        return {"ok": False, "message": str(e), "wrong_architecture": True}
    bad = [r.name for r in targets if r.nwords != t.nwords]
    if bad:
        return {"ok": False, "message": f"targets {bad} have a feature-word count other than {t.label}'s "
                                        f"{t.nwords}: written by another Julia version"}
    jit = session.jit(t, host)
    sys_report: dict[str, Any] | None = None
    if session.sysimage is not None:
        sys_report, sys_jit = _sysimage_step(session.sysimage, arch, julia_version, jit, t, host)
        if sys_jit is None:
            return {"ok": False, "host": host.describe(t), "message": sys_report["message"],
                    "reason": "system image", "sysimage": sys_report}
        jit = sys_jit
    result = match_targets(targets, jit, t)
    out: dict[str, Any] = {
        "ok": result.ok, "host": host.describe(t), "session_target": {"name": jit.name, "nfeatures": F.popcount(jit.en)},
        "chosen": result.best, "chosen_name": None if result.best is None else targets[result.best].name,
        "targets": [{"index": v.index, "name": v.name, "reason": v.reason, "missing": v.missing,
                     "assumed": v.assumed} for v in result.verdicts],
        "message": result.message,
    }
    if sys_report is not None:
        out["sysimage"] = sys_report
    assumed = sorted({a for v in result.verdicts for a in v.assumed})
    if assumed:
        out["assumptions"] = (f"{', '.join(assumed)}: used by the image but not reported by "
                              f"{host.source.split(' ')[0]}; assumed present")
    return out


# -- .ji ----------------------------------------------------------------------------------------

def _check(name: str, ok: bool | None, reason: str, message: str) -> dict[str, Any]:
    return {"check": name, "ok": ok, "reason": reason if ok is False else "", "message": message}


def _header_check(ji: JiFile, session: Session) -> dict[str, Any]:
    problems = []
    if ji.pkgimage_byte:
        problems.append("the header says system image (pkgimage byte set)")
    if session.julia_version is not None and session.julia_version != ji.julia_version:
        problems.append(f"written by Julia {ji.julia_version}, session is Julia {session.julia_version}")
    if session.julia_commit is not None and not ji.commit.startswith(session.julia_commit):
        problems.append(f"built from commit {ji.commit[:10]}, session from {session.julia_commit[:10]}")
    if session.julia_branch is not None and session.julia_branch != ji.branch:
        problems.append(f"git branch {ji.branch!r}, session {session.julia_branch!r} (another build of the same "
                        "version: distro vs official)")
    if session.cpu is None:
        host = host_os()
        here_os = julia_kernel(host) if host is not None else sys.platform
        here_arch = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
        if (ji.os, ji.arch) != (here_os, here_arch):
            problems.append(f"built for {ji.os} {ji.arch}, this machine is {here_os} {here_arch}")
    if problems:
        return _check("header", False, "incompatible header",
                      "Rejecting cache file due to it containing an incompatible cache header: " + "; ".join(problems))
    assumed = "" if session.julia_version else " (session assumed to be the Julia that wrote it)"
    return _check("header", True, "", f"Julia {ji.julia_version} {ji.os} {ji.arch}, {ji.branch}/{ji.commit[:10]}"
                  + assumed)


def load_checks(ji: JiFile, session: Session, image: dict[str, Any], cpu: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Julia's load checks in ``stale_cachefile`` order."""
    checks = [_header_check(ji, session)]
    version = _vtuple(ji.julia_version)
    ok, why = flags_match(ji.cache_flags, session.flags, version, pkgimages_existing=session.pkgimages_existing)
    checks.append(_check("flags", ok, "mismatched flags",
                         why if not ok else f"cache {ji.cache_flags}; session {session.flags}"))
    if ji.is_pkgimage:
        uses = session.flags.use_pkgimages or session.pkgimages_existing
        checks.append(_check("pkgimages", bool(uses), "requires pkgimages",
                             "the cache has native code: the session must run with --pkgimages=yes"
                             if not uses else "session uses pkgimages"))
        if cpu is not None:
            msg = cpu.get("message") or f"target {cpu.get('chosen')} ({cpu.get('chosen_name')}) selected"
            checks.append(_check("cpu target", cpu.get("ok"), cpu.get("reason", "target mismatch"), msg))
        checks.append(_check("image present", bool(image.get("exists")), "missing ocachefile",
                             f"pkgimage {image['path']} " + ("found" if image.get("exists") else "was not found")))
    checks.append(_check("cache checksum", ji.crc_ji_ok, "invalid checksum",
                         f"crc32c of the .ji is {ji.crc_ji_actual:#010x}, trailer says {ji.crc_ji:#010x}"
                         if ji.crc_ji_ok is False else "the .ji trailer CRC matches"))
    if ji.is_pkgimage and image.get("exists"):
        ok_so = image.get("crc_ok")
        checks.append(_check("image checksum", ok_so, "invalid checksum",
                             f"Invalid checksum in cache file {image['path']}: crc32c is {image.get('crc32c', 0):#010x}, "
                             f"the .ji expects {ji.crc_so:#010x} (image changed after linking: strip, codesign, "
                             "patchelf, relink? run `pylinkjl reseal`)" if ok_so is False
                             else "the image's crc32c matches crc_so"))
        if "complete" in image:  # Julia dlopens the image next: a short or foreign file fails there
            complete = image["complete"]
            checks.append(_check("image complete", complete, "incomplete image",
                                 f"{image['path']} {image.get('problem')}: Julia's dlopen of it would fail"
                                 if not complete else f"a complete {ji.dlext} for {ji.image_arch}"))
    return checks


def _vtuple(text: str) -> tuple[int, int, int]:
    """The version as a triple; an unparsable one is treated as newer than every known rule."""
    try:
        v = parse_version(text)
    except TargetError:
        return (1, 99, 0)
    return (v.major, v.minor, v.patch)


def verdict(checks: list[dict[str, Any]]) -> dict[str, Any]:
    failed = [c for c in checks if c["ok"] is False]
    unknown = [c for c in checks if c["ok"] is None]
    loads = False if failed else (None if unknown else True)
    return {"loads": loads, "rejected_by": failed[0]["reason"] if failed else None,
            "reason": failed[0]["message"] if failed else None,
            "unchecked": ["source files and dependency build ids (need the package sources and the session)"]}


def _short(names: list[str], limit: int = 3) -> str:
    more = f" +{len(names) - limit}" if len(names) > limit else ""
    return ",".join(names[:limit]) + more


def fleet_cell(cpu_name: str | None, cpu: dict[str, Any] | None, v: dict[str, Any]) -> dict[str, Any]:
    """One cell of a cache x CPU matrix: loads / rejected, and why in a few words."""
    cell: dict[str, Any] = {"cpu": cpu_name or "this machine", "applies": True, "loads": v["loads"],
                            "rejected_by": v["rejected_by"], "reason": v["reason"], "target": None}
    if cpu is not None and cpu.get("wrong_architecture"):
        cell.update(applies=False, loads=None, rejected_by=None, reason=cpu.get("message"), short="n/a (other arch)")
        return cell
    if cpu is not None and cpu.get("ok"):
        cell["target"] = cpu.get("chosen_name")
    if cpu is not None and cpu.get("sysimage"):
        cell["sysimage_target"] = cpu["sysimage"].get("chosen_name")
    if v["loads"] is True:
        cell["short"] = f"loads ({cell['target']})" if cell["target"] else "loads"
    elif v["loads"] is None:
        cell["short"] = "unknown"
    elif v["rejected_by"] == "target mismatch" and cpu is not None and cpu.get("targets"):
        lacking: list[str] = min((t["missing"] for t in cpu["targets"] if t["missing"]), key=len, default=[])
        cell["short"] = f"rejected: lacks {_short(lacking)}" if lacking else "rejected: target mismatch"
        cell["lacks"] = lacking
    elif v["rejected_by"] == "system image" and cpu is not None:
        sysimg = cpu.get("sysimage", {})
        cell["short"] = ("rejected: julia does not start" if sysimg.get("starts") is False
                         else "rejected: sysimage of another Julia")
    else:
        cell["short"] = f"rejected: {v['rejected_by']}"
    return cell


def fleet_verdicts(ji: JiFile, t: CpuTables | None, image: dict[str, Any],
                   sessions: list[Session]) -> list[dict[str, Any]]:
    """The load verdict of one ``.ji`` in each session (one per CPU), as matrix cells."""
    cells = []
    for s in sessions:
        cpu = cpu_check(ji.targets, t, s, ji.arch, ji.julia_version) if ji.is_pkgimage else None
        cells.append(fleet_cell(s.cpu, cpu, verdict(load_checks(ji, s, image, cpu))))
    return cells


def image_facts(ji: JiFile, image_path: Path | None = None, *, verify: bool = True) -> dict[str, Any]:
    path = image_path or ji.image_path
    out: dict[str, Any] = {"path": str(path), "exists": path.is_file()}
    if out["exists"]:
        out["size"] = path.stat().st_size
        if verify:
            crc = crc32c_file(path)
            problem = image_problem(path, ji.image_format, ji.image_arch)
            out.update(crc32c=crc, crc_ok=crc == ji.crc_so, complete=problem is None)
            if problem is not None:
                out["problem"] = problem
    return out















