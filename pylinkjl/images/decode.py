"""Decode the multi-versioning tables of a linked package image, per image layout.

Julia's loader finds everything through a few exported symbols (docs/julia-linking.md §3.2-§3.4, §4.3):

* 1.9: ``jl_sysimg_{f,g}vars_{base,offsets}`` and ``jl_dispatch_*`` (32-bit offsets, one table set);
* 1.10: ``jl_image_pointers`` (5 entries) -> header + shard tables of 9 pointers, 32-bit offsets;
* 1.11-1.12: the same with 8-pointer shards holding absolute pointers;
* 1.13 line (release-1.13, master): 6 entries (adds the CPU target string), plus ``jl_image_unpack``
  and ``jl_system_image_checksum``.

`read_image` detects the layout (:mod:`pylinkjl.images.layout`) from the symbols (and says why), follows the pointers through the
image's relocations (:mod:`pylinkjl.binfmt.lief`) and returns an :class:`ImageInfo`. Decoding never
gives up on the first inconsistency: problems are collected per verification check in
``ImageInfo.problems`` so that a corrupt table fails exactly the check that names it.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.binfmt.targetlist import decode_target_list
from pylinkjl.errors import InputError
from pylinkjl.images.imageinfo import ImageInfo, ShardInfo
from pylinkjl.images.layout import (
    LAYOUT_NAMES,
    LOADER_SYMBOLS,
    Layout,
    detect_layout,
    expected_rtld_marker,
    layout_of_version,
    lookup,
    rtld_marker,
)
from pylinkjl.images.tablereading import (
    Corrupt,
    count,
    pointers,
    ptr,
    walk_clone_idxs,
    words,
)

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

log = logging.getLogger("pylinkjl.images.decode")


# =================================================================================================
# per-layout decoders
# =================================================================================================

def _decode_19(view: BinaryView, info: ImageInfo) -> None:
    sym = {n: lookup(view, n) for n, _ in LOADER_SYMBOLS["1.9"]}
    info.table_symbols = {n: a for n, a in sym.items() if a is not None}
    info.nshards = 1
    shard = ShardInfo(0, 0, 0)
    info.shards = [shard]
    # target list
    tids = sym["jl_dispatch_target_ids"]
    if tids is None:
        info.problem("target-list", "jl_dispatch_target_ids is not defined")
    else:
        _decode_targets(view, info, tids)
    fo = sym["jl_sysimg_fvars_offsets"]
    go = sym["jl_sysimg_gvars_offsets"]
    fbase, gbase = sym["jl_sysimg_fvars_base"], sym["jl_sysimg_gvars_base"]
    try:
        if fo is None:
            raise Corrupt("image-header", "jl_sysimg_fvars_offsets is not defined")
        (n,) = words(view, fo, 1, "image-header", "jl_sysimg_fvars_offsets count")
        nf = count(n, "image-header", "function count in jl_sysimg_fvars_offsets")
        offs = words(view, fo + 4, nf, "image-header", "jl_sysimg_fvars_offsets", signed=True)
        shard.nfuncs = info.nfuncs = nf
        shard.tables["fvars_offsets"] = fo
        if nf and fbase is None:
            raise Corrupt("loader-exports", f"{nf} functions but jl_sysimg_fvars_base is not defined")
        shard.func_addrs = [fbase + o for o in offs] if fbase is not None else []
        if go is None:
            raise Corrupt("image-header", "jl_sysimg_gvars_offsets is not defined")
        (n,) = words(view, go, 1, "image-header", "jl_sysimg_gvars_offsets count")
        ng = count(n, "image-header", "variable count in jl_sysimg_gvars_offsets")
        goffs = words(view, go + 4, ng, "image-header", "jl_sysimg_gvars_offsets", signed=True)
        shard.ngvars = info.ngvars = ng
        if ng and gbase is None:
            raise Corrupt("loader-exports", f"{ng} global variables but jl_sysimg_gvars_base is not defined")
        shard.gvar_addrs = [gbase + o for o in goffs] if gbase is not None else []
    except Corrupt as c:
        info.problem(c.check, c.text)
        return
    _decode_clones(view, info, shard, sym["jl_dispatch_fvars_idxs"], "jl_dispatch_fvars_idxs",
                   clone_table=sym["jl_dispatch_fvars_offsets"], clone_base=fbase,
                   slots=sym["jl_dispatch_reloc_slots"], slot_base=gbase)
    for name in ("jl_pgcstack_func_slot", "jl_pgcstack_key_slot", "jl_tls_offset_image"):
        info.tls_slots[name] = sym[name]


def _decode_clones(view: BinaryView, info: ImageInfo, shard: ShardInfo, idxs: int | None, idxs_name: str | None,
                   *, clone_table: int | None, clone_base: int | None, slots: int | None,
                   slot_base: int | None, absolute: bool = False) -> None:
    """Clone-index walk, clone pointers/offsets and relocation slots of one shard."""
    if not info.targets:
        return
    try:
        if idxs is None:
            raise Corrupt("target-count", f"shard {shard.index} has no clone index table")
        shard.tables["clone_idxs"] = idxs
        walk_clone_idxs(view, shard, idxs, len(info.targets), idxs_name)
    except Corrupt as c:
        info.problem(c.check, c.text)
        return
    total = sum(r.nptrs for r in shard.records)
    try:
        if total:
            if clone_table is None:
                raise Corrupt("function-pointers", f"shard {shard.index}: {total} clones but no clone table")
            shard.tables["clone_table"] = clone_table
            if absolute:
                shard.clone_addrs = pointers(view, clone_table, total, "function-pointers",
                                              f"shard {shard.index} clone pointers")
            else:
                offs = words(view, clone_table, total, "function-pointers", f"shard {shard.index} clone offsets",
                              signed=True)
                if clone_base is None:
                    raise Corrupt("function-pointers", f"shard {shard.index}: clone offsets without a base")
                shard.clone_addrs = [clone_base + o for o in offs]
    except Corrupt as c:
        info.problem(c.check, c.text)
    try:
        if slots is not None:
            shard.tables["clone_slots"] = slots
            (n,) = words(view, slots, 1, "data-pointers", f"shard {shard.index} relocation slot count")
            nreloc = count(n, "data-pointers", f"shard {shard.index} relocation slot count")
            pairs = words(view, slots + 4, 2 * nreloc, "data-pointers", f"shard {shard.index} relocation slots",
                           signed=True)
            base = slots if absolute else slot_base
            if nreloc and base is None:
                raise Corrupt("data-pointers", f"shard {shard.index}: relocation slots without a base")
            bad = [f for f in pairs[0::2] if not 0 <= f < max(shard.nfuncs, 1)]
            if bad:
                info.problem("data-pointers", f"shard {shard.index}: relocation slot names function {bad[0]} "
                                              f"of {shard.nfuncs}")
            shard.slot_addrs = [base + o for o in pairs[1::2]] if base is not None else []
    except Corrupt as c:
        info.problem(c.check, c.text)


def _decode_targets(view: BinaryView, info: ImageInfo, addr: int) -> None:
    sec = view.section_at(addr)
    avail = (sec.end - addr) if sec is not None else 0
    try:
        raw = view.read_bytes(addr, min(avail, 1 << 16)) if avail else b""
    except InputError as err:
        info.problem("target-list", f"cannot read the target list at {addr:#x}: {err.problem}")
        return
    layouts = ("classic", "cpufeatures") if info.layout == "1.13" else ("classic",)
    first_err = None
    for layout in layouts:
        try:
            targets, used = decode_target_list(raw, layout=layout, source=str(view.path))  # type: ignore[arg-type]
        except InputError as err:
            first_err = first_err or err
            continue
        info.targets, info.target_list, info.target_layout = targets, raw[:used], layout
        return
    assert first_err is not None
    info.problem("target-list", f"the target list at {addr:#x} does not decode: {first_err.problem}")


def _decode_sharded(view: BinaryView, info: ImageInfo) -> None:
    line = info.layout
    ip = lookup(view, "jl_image_pointers")
    assert ip is not None
    info.table_symbols["jl_image_pointers"] = ip
    nptrs = 6 if line == "1.13" else 5
    try:
        ptrs = pointers(view, ip, nptrs, "image-header", "jl_image_pointers")
        header = ptr(view, ptrs[0], "image-header", "jl_image_pointers[0] (header)")
        version, nshards, nfvars, ngvars = words(view, header, 4, "image-header", "jl_image_header")
    except Corrupt as c:
        info.problem(c.check, c.text)
        return
    info.header_version, info.nfuncs, info.ngvars = version, nfvars, ngvars
    if version != 1:
        info.problem("image-header", f"header version is {version}, the loader accepts only 1")
    if nshards == 0 or nshards > 4096:
        info.problem("image-header", f"header says {nshards} shards")
        return
    info.nshards = nshards
    if ptrs[4]:
        _decode_targets(view, info, ptrs[4])
    else:
        info.problem("target-list", "jl_image_pointers[4] (target list) is not a pointer into the image")
    if line == "1.13" and ptrs[5]:
        try:
            info.cpu_target_string = view.read_cstring(ptrs[5])
        except InputError as err:
            info.problem("image-header", f"CPU target string: {err.problem}")
    if ptrs[2]:
        try:
            tls = pointers(view, ptrs[2], 3, "data-pointers", "jl_ptls_table")
            info.tls_slots = dict(zip(("pgcstack_func_slot", "pgcstack_key_slot", "tls_offset"), tls))
        except Corrupt as c:
            info.problem(c.check, c.text)
    info.small_typeof = ptrs[3]
    per_shard = 9 if line == "1.10" else 8
    try:
        shard_base = ptr(view, ptrs[1], "image-header", "jl_image_pointers[1] (shard tables)")
        table = pointers(view, shard_base, per_shard * nshards, "image-header", "jl_shard_tables")
    except Corrupt as c:
        info.problem(c.check, c.text)
        return
    for i in range(nshards):
        shard = ShardInfo(i, 0, 0)
        info.shards.append(shard)
        row = table[per_shard * i:per_shard * (i + 1)]
        try:
            if line == "1.10":
                _decode_shard_110(view, info, shard, row)
            else:
                _decode_shard_111(view, info, shard, row)
        except Corrupt as c:
            info.problem(c.check, c.text)
    _check_header_counts(info)


def _decode_shard_110(view: BinaryView, info: ImageInfo, shard: ShardInfo, row: list[int | None]) -> None:
    fbase, fo, fidx, gbase, go, gidx, slots, coffs, cidx = row
    i = shard.index
    fo = ptr(view, fo, "image-header", f"shard {i} fvar_offsets")
    (n,) = words(view, fo, 1, "image-header", f"shard {i} function count")
    shard.nfuncs = count(n, "image-header", f"shard {i} function count")
    offs = words(view, fo + 4, shard.nfuncs, "image-header", f"shard {i} fvar_offsets", signed=True)
    if shard.nfuncs:
        base = ptr(view, fbase, "function-pointers", f"shard {i} fvar_base")
        shard.func_addrs = [base + o for o in offs]
    shard.fvar_idxs = words(view, ptr(view, fidx, "image-header", f"shard {i} fvar_idxs"), shard.nfuncs,
                             "image-header", f"shard {i} fvar_idxs") if shard.nfuncs else []
    go = ptr(view, go, "image-header", f"shard {i} gvar_offsets")
    (n,) = words(view, go, 1, "image-header", f"shard {i} variable count")
    shard.ngvars = count(n, "image-header", f"shard {i} variable count")
    goffs = words(view, go + 4, shard.ngvars, "image-header", f"shard {i} gvar_offsets", signed=True)
    if shard.ngvars:
        gb = ptr(view, gbase, "data-pointers", f"shard {i} gvar_base")
        shard.gvar_addrs = [gb + o for o in goffs]
        shard.gvar_idxs = words(view, ptr(view, gidx, "image-header", f"shard {i} gvar_idxs"), shard.ngvars,
                                 "image-header", f"shard {i} gvar_idxs")
    shard.tables.update({"fvar_offsets": fo, "gvar_offsets": go})
    _decode_clones(view, info, shard, cidx, _static_name(view, f"jl_clone_idxs_{i}"),
                   clone_table=coffs, clone_base=fbase, slots=slots, slot_base=gbase)


def _decode_shard_111(view: BinaryView, info: ImageInfo, shard: ShardInfo, row: list[int | None]) -> None:
    fcount, fptrs, fidx, go, gidx, slots, cptrs, cidx = row
    i = shard.index
    fcount = ptr(view, fcount, "image-header", f"shard {i} fvar_count")
    try:
        n = int.from_bytes(view.read_bytes(fcount, view.pointer_size), "little")
    except InputError as err:
        raise Corrupt("image-header", f"shard {i} function count: {err.problem}") from None
    shard.nfuncs = count(n, "image-header", f"shard {i} function count")
    if shard.nfuncs:
        shard.func_addrs = pointers(view, ptr(view, fptrs, "function-pointers", f"shard {i} fvar_ptrs"),
                                     shard.nfuncs, "function-pointers", f"shard {i} fvar_ptrs")
        shard.fvar_idxs = words(view, ptr(view, fidx, "image-header", f"shard {i} fvar_idxs"), shard.nfuncs,
                                 "image-header", f"shard {i} fvar_idxs")
    go = ptr(view, go, "image-header", f"shard {i} gvar_offsets")
    (n,) = words(view, go, 1, "image-header", f"shard {i} variable count")
    shard.ngvars = count(n, "image-header", f"shard {i} variable count")
    goffs = words(view, go + 4, shard.ngvars, "image-header", f"shard {i} gvar_offsets", signed=True)
    shard.gvar_addrs = [go + o for o in goffs]
    if shard.ngvars:
        shard.gvar_idxs = words(view, ptr(view, gidx, "image-header", f"shard {i} gvar_idxs"), shard.ngvars,
                                 "image-header", f"shard {i} gvar_idxs")
    shard.tables.update({"fvar_count": fcount, "gvar_offsets": go})
    _decode_clones(view, info, shard, cidx, _static_name(view, f"jl_clone_idxs_{i}"),
                   clone_table=cptrs, clone_base=None, slots=slots, slot_base=None, absolute=True)


def _static_name(view: BinaryView, name: str) -> str | None:
    """The name if the static symbol table knows it (its size bounds the table)."""
    return name if view.symbol_address(name) is not None else None


def _check_header_counts(info: ImageInfo) -> None:
    if not info.shards or any(s.nfuncs == 0 and s.ngvars == 0 and not s.tables for s in info.shards):
        return
    nf = sum(s.nfuncs for s in info.shards)
    ng = sum(s.ngvars for s in info.shards)
    if nf != info.nfuncs:
        info.problem("image-header", f"header says {info.nfuncs} functions, the shards hold {nf}")
    if ng != info.ngvars:
        info.problem("image-header", f"header says {info.ngvars} global variables, the shards hold {ng}")
    for s in info.shards:
        bad = next((x for x in s.fvar_idxs if x >= info.nfuncs), None)
        if bad is not None:
            info.problem("image-header", f"shard {s.index} maps a function to global index {bad} of {info.nfuncs}")
        bad = next((x for x in s.gvar_idxs if x >= info.ngvars), None)
        if bad is not None:
            info.problem("image-header", f"shard {s.index} maps a variable to global index {bad} of {info.ngvars}")


def _finish(view: BinaryView, info: ImageInfo) -> None:
    ntargets = len(info.targets)
    if ntargets and info.shards and all(len(s.records) == ntargets for s in info.shards):
        info.clones_per_target = [sum(s.records[t].count for s in info.shards) for t in range(ntargets)]
    data = lookup(view, "jl_system_image_data")
    size = lookup(view, "jl_system_image_size")
    info.image_data = data
    if size is not None:
        try:
            info.image_size = int.from_bytes(view.read_bytes(size, view.pointer_size), "little")
        except InputError as err:
            info.problem("system-image-data", f"jl_system_image_size cannot be read: {err.problem}")


_SHARD_CHECKS = ("image-header", "function-pointers", "target-count")


def _decode_as(view: BinaryView, line: Layout, reason: str) -> ImageInfo:
    info = ImageInfo(view.path, line, reason, view.format, view.arch, view.kind, view.pointer_size)
    info.rtld_marker = rtld_marker(view)
    if line == "1.9":
        _decode_19(view, info)
    else:
        _decode_sharded(view, info)
    return info


def decode_image(view: BinaryView, *, julia_version: str | None = None) -> ImageInfo:
    """Decode an opened image (see :func:`read_image`)."""
    line, reason = detect_layout(view)
    info = _decode_as(view, line, reason)
    if line in ("1.10", "1.11") and any(c in info.problems for c in _SHARD_CHECKS):
        # The symbols only suggest the shard layout (1.10.4+ has 9-pointer shards and the 1.11 getter):
        # the tables decide. Take the other layout only when it decodes cleanly.
        other: Layout = "1.11" if line == "1.10" else "1.10"
        width = "8-pointer" if other == "1.11" else "9-pointer"
        alt = _decode_as(view, other, f"{width} shard tables (they decode as {width}, not as {LAYOUT_NAMES[line]}; "
                                      f"RTLD marker {info.rtld_marker or 'none'})")
        if not any(c in alt.problems for c in _SHARD_CHECKS):
            info = alt
    if julia_version is not None:
        want = layout_of_version(julia_version)
        if want != info.layout:
            info.problem("julia-line", f"the image has the {info.layout_name} layout ({info.layout_reason}), "
                                       f"but Julia {julia_version} expects the {LAYOUT_NAMES[want]} layout")
        elif info.layout == "1.10" and info.rtld_marker is not None:
            expected = expected_rtld_marker(julia_version)
            if info.rtld_marker != expected:
                info.problem("julia-line", f"the image defines {info.rtld_marker}, but Julia {julia_version} "
                                           f"images define {expected} (it changed in 1.10.4)")
    _finish(view, info)
    log.debug("decoded %s: %s", view.path, info.summary())
    return info


def read_image(path: str | Path, *, julia_version: str | None = None) -> ImageInfo:
    """Open ``path`` and decode its tables. Raises InputError when the file is not a readable image
    or not a Julia package image at all; inconsistent tables end up in ``ImageInfo.problems``."""
    from pylinkjl.binfmt.lief import open_binary

    with open_binary(path) as view:
        try:
            return decode_image(view, julia_version=julia_version)
        except (struct.error, ValueError, IndexError, OverflowError) as err:
            raise InputError(path, f"malformed package image tables: {err}") from None
