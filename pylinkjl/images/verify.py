"""Verify a linked package image against what Julia's loader will need, per Julia line.

A link can succeed and still produce an image Julia cannot use (an empty library, an unexported
symbol, a clone table that points nowhere). :func:`verify_image` reads the image once through the LIEF
facade, decodes the tables (:mod:`pylinkjl.images.decode`) and runs a list of named checks. Each check passes,
fails, or does not apply, always with the reason and the numbers behind it, so that a corrupt table
fails exactly the check that names it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.errors import InputError
from pylinkjl.images import checks, platformchecks, syschecks
from pylinkjl.images.decode import decode_image
from pylinkjl.images.heap import read_heap
from pylinkjl.images.imageinfo import ImageInfo
from pylinkjl.images.kind import KindInfo, image_kind
from pylinkjl.images.report import CheckResult, Report, failed
from pylinkjl.target import Target, parse_target

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

__all__ = ["CheckResult", "Report", "input_functions_and_globals", "verify_image", "verify_view"]

log = logging.getLogger("pylinkjl.images.verify")


def _platform_checks(view: BinaryView, kind: KindInfo | None = None) -> list[CheckResult]:
    if view.format == "coff":
        out = [platformchecks.check_pe_entry(view), platformchecks.check_pe_exports(view),
               platformchecks.check_pe_pseudo_relocs(view)]
        if kind is not None:
            out.append(syschecks.check_pe_image_size(view, kind))
        return out
    if view.format == "macho":
        return [platformchecks.check_macho_build_version(view), platformchecks.check_macho_install_name(view), platformchecks.check_macho_signature(view)]
    return [platformchecks.check_elf_needed(view), platformchecks.check_elf_textrel(view)]


def input_functions_and_globals(obj: Path) -> tuple[set[str], set[str]]:
    """(functions defined by the input, locals included; global symbols it defines), plain names."""
    from pylinkjl.binfmt.ar import is_archive, iter_member_data
    from pylinkjl.binfmt.lief import object_functions
    from pylinkjl.binfmt.symbols import input_symbols  # pure Python, cheap

    defined: set[str] = set()
    for _member, syms in input_symbols(obj):
        strip = syms.format == "macho" or (syms.format == "coff" and syms.arch == "i686")
        defined.update(n[1:] if strip and n.startswith("_") else n for n in syms.defined)
    from pylinkjl.binfmt.files import read_file, read_head

    head = read_head(obj, 8, "object file")
    funcs: set[str] = set()
    if is_archive(head):
        for member, data in iter_member_data(obj):
            funcs |= object_functions(data, f"{obj}({member.name})")[1]
    else:
        funcs |= object_functions(read_file(obj, "object file"), str(obj))[1]
    return funcs, defined


def _object_checks(view: BinaryView, info: ImageInfo, obj: Path) -> list[CheckResult]:
    funcs, defined = input_functions_and_globals(obj)
    clones = checks.count_input_clones(funcs, info.layout)
    return [checks.check_object_exports(view, info, defined), checks.check_object_clones(info, clones)]


def verify_view(view: BinaryView, *, object: str | Path | None = None, target: Target | None = None,
                julia_version: str | None = None, kind: str | tuple[str, ...] | None = None) -> Report:
    """Run every check on an opened image (``target`` parsed already, by :func:`verify_image`); ``kind``: the
    image kind expected (package-image, system-image, juliac-library; a tuple: any of them), None to accept any."""
    report = Report(view.path)
    fmt_check, _found = checks.check_format(view, target)
    report.add(fmt_check)
    try:
        info = decode_image(view, julia_version=julia_version)
    except InputError as err:
        if "not a Julia package image" not in err.problem:
            raise
        report.add(failed("julia-line", err.problem))
        report.image = {"format": view.format, "arch": view.arch, "line_name": "not a Julia"}
        report.checks.extend(_platform_checks(view))
        return report
    heap = read_heap(view, info)
    found = image_kind(view, heap)
    report.image = info.summary() | {"kind": found.kind, "kind_name": found.name, "entry_points": found.entry_points}
    for check in (syschecks.check_image_kind(found, kind), checks.check_layout(info), checks.check_exports(view, info),
                  checks.check_header(info), checks.check_target_list(info), checks.check_target_count(info),
                  checks.check_clones(info), checks.check_function_pointers(view, info),
                  checks.check_data_pointers(view, info), syschecks.check_system_image_data(view, info, heap, found),
                  syschecks.check_heap_checksum(view, info, heap), syschecks.check_image_unpack(view, info, heap),
                  syschecks.check_rtld_consistency(view, info), syschecks.check_entry_points(found)):
        report.add(check)
    report.checks.extend(_platform_checks(view, found))
    if object is not None:
        report.checks.extend(_object_checks(view, info, Path(object)))
    return report


def verify_image(path: str | Path, *, object: str | Path | None = None, target: Target | str | None = None,
                 julia_version: str | None = None, kind: str | tuple[str, ...] | None = None) -> Report:
    """Verify the image at ``path``; see the module docstring. Raises InputError when the file cannot be
    read as an image at all (a Report with failed checks otherwise)."""
    from pylinkjl.binfmt.lief import open_binary

    tgt = parse_target(target) if isinstance(target, str) else target
    with open_binary(path, arch=None if tgt is None else tgt.arch) as view:
        return verify_view(view, object=object, target=tgt, julia_version=julia_version, kind=kind)
