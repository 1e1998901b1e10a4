"""What a cache file or an image is, what it was built for, and whether it would load: the reports of
``pylinkjl inspect`` (a ``.ji`` with its image, a package image alone, a system image), built from the
load verdict of :mod:`pylinkjl.caches.verdict`. Every function returns plain data (dicts of
str/int/bool/list) so the CLI can print it or dump it as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pylinkjl.binfmt.files import mapped_view
from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.caches.crc import crc32c_file
from pylinkjl.caches.embedded import find_embedded_header
from pylinkjl.caches.ji import JI_MAGIC, JiFile, read_ji
from pylinkjl.caches.verdict import (
    Session,
    cpu_check,
    describe_target,
    fleet_cell,
    fleet_verdicts,
    image_facts,
    load_checks,
    tables_for,
    verdict,
)
from pylinkjl.errors import PylinkjlError


def is_ji(path: Path) -> bool:
    from pylinkjl.binfmt.files import read_head

    return read_head(path, 8) == JI_MAGIC


def inspect_ji(path: str | Path, session: Session | None = None, *, detail: bool = True,
               fleet: list[Session] | None = None) -> dict[str, Any]:
    """Everything about a ``.ji``: header, flags, modules, targets, checksums, and the load verdict
    (with ``fleet``: also the verdict in each of those sessions, one per CPU)."""
    session = session or Session()
    ji = read_ji(path)
    t = tables_for(ji.julia_version, ji.arch)
    image: dict[str, Any] = (image_facts(ji) if ji.is_pkgimage
                             else {"path": str(ji.image_path), "exists": ji.image_path.is_file()})
    cpu = cpu_check(ji.targets, t, session, ji.arch, ji.julia_version) if ji.is_pkgimage else None
    checks = load_checks(ji, session, image, cpu)
    report: dict[str, Any] = {
        "kind": "ji", "path": str(ji.path), "size": ji.size, "format": ji.format, "byte_order": ji.byte_order,
        "pointer_size": ji.pointer_size, "os": ji.os, "arch": ji.arch, "julia_version": ji.julia_version,
        "branch": ji.branch, "commit": ji.commit,
        "package": {"name": ji.package, "uuid": ji.worklist[0].uuid if ji.worklist else None},
        "worklist": [{"name": m.name, "uuid": m.uuid, "build_id": f"{m.build_id:#018x}"} for m in ji.worklist],
        "cache_flags": {"byte": f"{ji.cache_flags_byte:#04x}", "flags": ji.cache_flags.to_cli(),
                        **vars(ji.cache_flags)},
        "heap_checksum": f"{ji.heap_checksum:#018x}",
        "pkgimage": ji.is_pkgimage,
        "image": image,
        "targets": [describe_target(i, r, t) for i, r in enumerate(ji.targets)],
        "checksums": {
            "crc_so": {"stored": f"{ji.crc_so:#010x}",
                       "actual": f"{image['crc32c']:#010x}" if "crc32c" in image else None,
                       "ok": image.get("crc_ok")},
            "crc_ji": {"stored": f"{ji.crc_ji:#010x}", "actual": f"{ji.crc_ji_actual:#010x}", "ok": ji.crc_ji_ok},
        },
        "cpu": cpu,
        "checks": checks,
        "verdict": verdict(checks),
        "notes": list(ji.notes),
    }
    if t is not None:
        report["tables"] = t.label
    if fleet:
        report["fleet"] = fleet_verdicts(ji, t, image, fleet)
    if ji.format == 15:
        report.update(gc_abi=ji.gc_abi, header_flags=ji.header_flags)
    if detail:
        report.update(
            dependencies=[d.path for d in ji.dependencies], requires=ji.requires, preferences=ji.preferences,
            prefs_hash=f"{ji.prefs_hash:#018x}",
            required_modules=[{"name": m.name, "uuid": m.uuid} for m in ji.required_modules])
    return report


def pair_check(ji: JiFile, image_path: Path) -> dict[str, Any]:
    """Do this ``.ji`` and this image belong together? Compares the heap checksum Julia embeds in both
    (same package, same build) and the image's target list with the ``.ji``'s clone targets."""
    out: dict[str, Any] = {"image": str(image_path)}
    with mapped_view(image_path) as data:
        header = find_embedded_header(data, image_path)
        raw: Any = data.obj  # bytes or mmap: .find runs in C
        listed_verbatim = bool(ji.clone_targets) and raw.find(ji.clone_targets) >= 0
    if header is None:
        out.update(same_build=None, build_note="no Julia cache header found inside the image")
    else:
        out.update(same_build=header.heap_checksum == ji.heap_checksum,
                   image_heap_checksum=f"{header.heap_checksum:#018x}", image_julia_version=header.julia_version)
    image_list, how = image_target_list(image_path)
    if image_list is not None:
        out.update(targets_equal=image_list == ji.clone_targets, targets_source=how)
    else:
        out.update(targets_equal=listed_verbatim or None, targets_source="byte search in the image" + how)
    return out


def image_target_list(path: Path) -> tuple[bytes | None, str]:
    """The image's serialized target list via :mod:`pylinkjl.images.decode`, or (None, why not)."""
    try:
        from pylinkjl.images.decode import read_image  # LIEF-based; imported only here
    except ImportError:
        return None, " (pylinkjl.images.decode not available)"
    try:
        return bytes(read_image(path).target_list), "pylinkjl.images.decode"
    except PylinkjlError as e:
        return None, f" (image reader: {e})"


def inspect_image(path: str | Path, session: Session | None = None, *,
                  fleet: list[Session] | None = None) -> dict[str, Any]:
    """An image: its Julia line, targets with feature names, clone counts, and the CPU verdict."""
    from pylinkjl.images.kind import read_image_kind  # LIEF-based; imported only here

    session = session or Session()
    p = Path(path)
    with mapped_view(p) as data:
        header = find_embedded_header(data, p)
    # The cache header inside the image names the exact Julia version (the layout alone does not
    # tell 1.11 from 1.12, whose x86 feature words differ).
    info, kind = read_image_kind(p, julia_version=header.julia_version if header else None)
    version = header.julia_version if header else layout_version(info.layout, info.targets)
    t = tables_for(version, info.arch)
    clones = list(getattr(info, "clones_per_target", []) or [])
    targets = []
    for i, rec in enumerate(info.targets):
        d = describe_target(i, rec, t)
        if i < len(clones):
            d["clones"] = clones[i]
        targets.append(d)
    report: dict[str, Any] = {
        "kind": "image", "path": str(p), "size": p.stat().st_size, "line": info.layout,
        "julia_version": header.julia_version if header else None, "format": info.format,
        "arch": info.arch, "nshards": getattr(info, "nshards", None), "nfuncs": getattr(info, "nfuncs", None),
        "targets": targets, "crc32c": f"{crc32c_file(p):#010x}",
        "cpu": cpu_check(list(info.targets), t, session, info.arch, version),
        "image_kind": kind.kind, "image_kind_name": kind.name, "image_kind_reason": kind.reason,
        "entry_points": kind.entry_points, "cpu_target_string": info.cpu_target_string,
    }
    if kind.is_system_image:
        report["starts"] = system_image_start(report["cpu"])
    for ext in (".ji",):
        sibling = p.with_suffix(ext)
        if sibling.is_file() and is_ji(sibling):
            ji = read_ji(sibling)
            pair = pair_check(ji, p)
            pair.update(ji=str(sibling), crc_ok=int(report["crc32c"], 16) == ji.crc_so)
            report["cache"] = pair
    if fleet:
        cells = []
        for s in fleet:
            cpu = cpu_check(list(info.targets), t, s, info.arch, version)
            ok = cpu.get("ok")
            v = {"loads": ok, "rejected_by": None if ok is not False else cpu.get("reason", "target mismatch"),
                 "reason": cpu.get("message")}
            cells.append(fleet_cell(s.cpu, cpu, v))
        report["fleet"] = cells
    return report


def system_image_start(cpu: dict[str, Any]) -> dict[str, Any]:
    """Would Julia start on the session's CPU with this system image (``sysimg_init_cb``: the ``-C`` target,
    ``native`` by default, matched against the image's targets with the same rules as a package image)? With
    Julia's own words when it would not."""
    ok = cpu.get("ok")
    if ok is None:
        return {"ok": None, "message": cpu.get("message")}
    if ok:
        return {"ok": True, "target": cpu.get("chosen"), "target_name": cpu.get("chosen_name"),
                "message": f"starts on target {cpu.get('chosen')} ({cpu.get('chosen_name')})"}
    return {"ok": False, "message": cpu.get("message") or "Unable to find compatible target in system image."}


def layout_version(line: str, targets: list[TargetRecord]) -> str:
    """A table version for an image layout; 1.11-layout images with 12 x86 words are 1.12."""
    if line == "1.11" and targets and targets[0].nwords == 12:
        return "1.12.0"
    return f"{line}.0" if line.count(".") == 1 else line


def inspect_path(path: str | Path, session: Session | None = None, *,
                 fleet: list[Session] | None = None) -> dict[str, Any]:
    p = Path(path)
    from pylinkjl.binfmt.files import require_exists

    require_exists(p)
    return inspect_ji(p, session, fleet=fleet) if is_ji(p) else inspect_image(p, session, fleet=fleet)
