"""Checks about the heap and the runtime glue of an image, which matter most for system images and juliac
libraries (their loader, ``jl_init_with_image_file``, uses them first): the image kind, the heap
(``jl_system_image_data``), its checksum, how it is unpacked, the RTLD handle consistency check and the
Windows limits. Each returns a :class:`~pylinkjl.images.verify.CheckResult`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pylinkjl.binfmt.codepatterns import getter_slot, thunk_slot
from pylinkjl.errors import InputError
from pylinkjl.images.layout import lookup
from pylinkjl.images.report import CheckResult, failed, passed
from pylinkjl.images.report import not_applicable as na

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView
    from pylinkjl.images.heap import Heap
    from pylinkjl.images.imageinfo import ImageInfo
    from pylinkjl.images.kind import KindInfo

PE_IMAGE_LIMIT = 1 << 31  # Windows refuses a DLL of 2 GiB or more ("%1 is not a valid Win32 application")
_UNPACKERS = {False: "jl_image_unpack_uncomp", True: "jl_image_unpack_zstd"}
_SPLIT_UNPACKERS = ("jl_image_unpack_split", "jl_image_unpack_split_zstd")  # master, heap in the .ji


def check_image_kind(kind: KindInfo, expected: str | tuple[str, ...] | None = None) -> CheckResult:
    """``expected``: the kind required, or several of which any will do (None: any)."""
    nums = kind.to_dict()
    wanted = (expected,) if isinstance(expected, str) else expected
    if wanted is not None and kind.kind not in wanted:
        from pylinkjl.images.kind import KIND_NAMES

        names = " or ".join(KIND_NAMES.get(k, k) for k in wanted)
        return failed("image-kind", f"a {kind.name} ({kind.reason}), not a {names}", **nums)
    return passed("image-kind", f"{kind.name}: {kind.reason}", **nums)


def check_system_image_data(view: BinaryView, info: ImageInfo, heap: Heap | None, kind: KindInfo) -> CheckResult:
    """The heap lies inside the image and has the shape of its kind: a cache header for a package image,
    none for a system image."""
    probs = list(info.problems.get("system-image-data", []))
    nums: dict[str, object] = {"address": info.image_data, "size": info.image_size}
    if heap is None:
        if info.image_data is None and info.image_size is None and info.layout == "1.13":
            return na("system-image-data", "no jl_system_image_data: the heap lives in the .ji (split image)", **nums)
        missing = "jl_system_image_data" if info.image_data is None else "jl_system_image_size"
        return failed("system-image-data", f"{missing} is not defined", **nums)
    nums.update(compressed=heap.compressed, unpacked_size=heap.size)
    seg = view.segment_at(heap.address)
    if seg is None:
        probs.append(f"jl_system_image_data at {heap.address:#x} is not mapped by any segment")
    elif heap.address + heap.stored_size > seg.vaddr + seg.vsize:
        probs.append(f"jl_system_image_size says {heap.stored_size} bytes but only "
                     f"{seg.vaddr + seg.vsize - heap.address} remain in the segment at {seg.vaddr:#x}")
    elif heap.data is None:
        probs.append(heap.problem or "the heap cannot be read")
    elif kind.kind == "package-image" and not heap.has_cache_header:
        probs.append(f"jl_system_image_data does not start with the cache header magic (found {heap.data[:8].hex()})")
    if probs:
        return failed("system-image-data", "; ".join(probs[:3]), **nums)
    sec = view.section_at(heap.address)
    where = f" in {sec.name}" if sec is not None else ""
    packed = f"{heap.stored_size} bytes zstd-compressed to {heap.size}" if heap.compressed else f"{heap.size} bytes"
    shape = "starts with the cache header" if kind.kind == "package-image" else "no cache header (system image)"
    return passed("system-image-data", f"{packed} of serialized heap{where}, {shape}", **nums)


def check_heap_checksum(view: BinaryView, info: ImageInfo, heap: Heap | None) -> CheckResult:
    """``jl_system_image_checksum`` (release-1.13 line, master) is the CRC-32C of the decompressed heap."""
    if info.layout != "1.13":
        return na("heap-checksum", f"{info.layout_name} images carry no jl_system_image_checksum")
    addr = lookup(view, "jl_system_image_checksum")
    if addr is None:
        return failed("heap-checksum", "jl_system_image_checksum is not defined")
    try:
        stored = view.read_u32(addr)
    except InputError as err:
        return failed("heap-checksum", f"jl_system_image_checksum cannot be read: {err.problem}")
    nums: dict[str, object] = {"stored": f"{stored:#010x}"}
    if heap is None:
        return na("heap-checksum", "the heap lives in the .ji (split image): its checksum is checked there", **nums)
    got = heap.checksum()
    if got is None:
        return na("heap-checksum", f"the heap cannot be read: {heap.problem}", **nums)
    nums.update(computed=f"{got:#010x}", bytes=heap.size, compressed=heap.compressed)
    what = "decompressed heap" if heap.compressed else "heap"
    if got != stored:
        return failed("heap-checksum", f"jl_system_image_checksum is {stored:#010x} but the CRC-32C of the {heap.size} "
                                       f"{what} bytes is {got:#010x}: the heap was changed after it was written",
                      **nums)
    return passed("heap-checksum", f"CRC-32C of the {heap.size} {what} bytes is {got:#010x}, as stored", **nums)


def _code(view: BinaryView, addr: int, n: int) -> bytes:
    """Up to ``n`` bytes of code at ``addr``, fewer where the segment ends (a thunk may be the last thing in
    .text); raises InputError when ``addr`` is not mapped."""
    seg = view.segment_at(addr)
    if seg is None:
        raise view.fail(f"address {addr:#x} is not mapped by any segment")
    return view.read_bytes(addr, min(n, seg.vaddr + seg.vsize - addr))


def pointer_target(view: BinaryView, slot: int) -> tuple[str | None, str]:
    """The external symbol a function-pointer slot ends at, and how it got there: bound by the loader
    directly, or pointing at a thunk that jumps through an import slot (PE)."""
    name = view.bound_symbol(slot)
    if name is not None:
        return name, "bound"
    try:
        value = view.read_pointer(slot)
    except InputError:
        return None, "unreadable"
    if not value:
        return None, "null"
    try:
        code = _code(view, value, 12)
    except InputError:
        return None, "points outside the image"
    via = thunk_slot(code, value, view.arch, view.image_base)
    if via is not None:
        name = view.bound_symbol(via)
        if name is not None:
            return name, "thunk"
    return None, f"points to {value:#x} inside the image"


def check_image_unpack(view: BinaryView, info: ImageInfo, heap: Heap | None) -> CheckResult:
    """``jl_image_unpack`` (release-1.13 line, master) points to the runtime's unpacker that fits the heap."""
    if info.layout != "1.13":
        return na("image-unpack", f"{info.layout_name} images have no jl_image_unpack")
    slot = lookup(view, "jl_image_unpack")
    if slot is None:
        return failed("image-unpack", "jl_image_unpack is not defined")
    name, how = pointer_target(view, slot)
    nums: dict[str, object] = {"points_to": name, "how": how}
    if name is None:
        return failed("image-unpack", f"jl_image_unpack is not bound to the runtime's unpacker ({how}); "
                                      f"it must point to {_UNPACKERS[False]} or {_UNPACKERS[True]}", **nums)
    if heap is None:
        if name in _SPLIT_UNPACKERS:
            return passed("image-unpack", f"jl_image_unpack -> {name} (the heap is in the .ji)", **nums)
        return failed("image-unpack", f"jl_image_unpack -> {name}, but the image has no heap: a split image "
                                      f"needs {' or '.join(_SPLIT_UNPACKERS)}", **nums)
    want = _UNPACKERS[heap.compressed]
    if name != want:
        state = "zstd-compressed" if heap.compressed else "not compressed"
        return failed("image-unpack", f"jl_image_unpack -> {name}, but the heap is {state}: the runtime would "
                                      f"need {want}", **nums)
    return passed("image-unpack", f"jl_image_unpack -> {name}, which fits the "
                                  f"{'zstd-compressed' if heap.compressed else 'uncompressed'} heap", **nums)


def check_rtld_consistency(view: BinaryView, info: ImageInfo) -> CheckResult:
    """The loader's consistency check: the image's RTLD handle must be the runtime's
    ``jl_RTLD_DEFAULT_handle`` ("Image file failed consistency check: maybe opened the wrong version?")."""
    marker = info.rtld_marker
    if marker is None:
        return failed("rtld-consistency", "the image defines neither get_jl_RTLD_DEFAULT_handle_addr nor "
                                          "jl_RTLD_DEFAULT_handle_pointer")
    addr = lookup(view, marker)
    assert addr is not None
    if marker == "jl_RTLD_DEFAULT_handle_pointer":
        slot: int | None = addr
        how = "is"
    else:
        try:
            code = _code(view, addr, 16)
        except InputError as err:
            return failed("rtld-consistency", f"the code of {marker} cannot be read: {err.problem}")
        slot = getter_slot(code, addr, view.arch, view.image_base)
        how = "returns"
        if slot is None:
            return na("rtld-consistency", f"{marker}'s code ({code[:12].hex()}) is not a load from a slot this "
                                          "check can read", code=code[:16].hex())
    assert slot is not None
    name, via = pointer_target(view, slot)
    if name is None and marker == "jl_RTLD_DEFAULT_handle_pointer" and view.format == "coff":
        pr = view.pseudo_relocs
        if pr is not None and pr.count:
            return na("rtld-consistency", "jl_RTLD_DEFAULT_handle_pointer is filled by a runtime pseudo-relocation "
                                          "(auto-import), which this check does not follow")
    nums = {"symbol": marker, "slot": slot, "bound_to": name}
    if name != "jl_RTLD_DEFAULT_handle":
        what = name or f"nothing from the runtime ({via})"
        return failed("rtld-consistency", f"{marker} {how} the slot at {slot:#x}, bound to {what}, not to the "
                                          "runtime's jl_RTLD_DEFAULT_handle: the loader refuses the image ('failed "
                                          "consistency check')", **nums)
    lib = getattr(view, "bound_library", None)
    origin = f" of {lib(slot)}" if lib is not None and lib(slot) else ""
    return passed("rtld-consistency", f"{marker} {how} the slot at {slot:#x}, bound to jl_RTLD_DEFAULT_handle{origin}",
                  **nums)


def check_pe_image_size(view: BinaryView, kind: KindInfo) -> CheckResult:
    size = view.file_size
    nums = {"bytes": size, "limit": PE_IMAGE_LIMIT}
    if size >= PE_IMAGE_LIMIT:
        hint = ("compress the heap (--compress-sysimage, Julia >= 1.13) or put fewer packages into it"
                if kind.is_system_image else "split the package")
        return failed("pe-image-size", f"the DLL is {size / (1 << 30):.2f} GiB: Windows refuses to load a DLL of "
                                       f"2 GiB or more ('%1 is not a valid Win32 application'); {hint}", **nums)
    return passed("pe-image-size", f"{size} bytes, below the 2 GiB Windows loads", **nums)


def check_entry_points(kind: KindInfo) -> CheckResult:
    names = kind.entry_points
    nums = {"entry_points": names}
    if not names:
        if kind.kind == "juliac-library":
            return failed("entry-points", "a juliac library without @ccallable entry points", **nums)
        return na("entry-points", "no @ccallable entry points exported", **nums)
    shown = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
    return passed("entry-points", f"{len(names)} @ccallable entry point(s): {shown}", **nums)
