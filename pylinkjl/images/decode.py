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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.binfmt.targetlist import TargetRecord, decode_target_list
from pylinkjl.errors import InputError
from pylinkjl.images.layout import (
    LAYOUT_NAMES,
    LOADER_SYMBOLS,
    TAG,
    VAL,
    Layout,
    detect_layout,
    expected_rtld_marker,
    layout_of_version,
    lookup,
    rtld_marker,
)

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

log = logging.getLogger("pylinkjl.images.decode")

_MAX_FUNCS = 1 << 26  # a count above this is corruption, not a package

@dataclass
class CloneRecord:
    """One target's record in a shard's ``clone_idxs`` walk."""

    target: int
    clone_all: bool
    base: int | None  # base target of an untagged record
    count: int  # functions cloned for this target (nfuncs for clone_all targets)
    nreloc: int  # indices that also need their relocation slots refilled
    nptrs: int  # entries this target owns in the clone pointer/offset table


@dataclass
class ShardInfo:
    index: int
    nfuncs: int
    ngvars: int
    func_addrs: list[int | None] = field(default_factory=list)
    clone_addrs: list[int | None] = field(default_factory=list)
    gvar_addrs: list[int] = field(default_factory=list)
    slot_addrs: list[int] = field(default_factory=list)
    fvar_idxs: list[int] = field(default_factory=list)
    gvar_idxs: list[int] = field(default_factory=list)
    records: list[CloneRecord] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # table name -> address
    idxs_words: int = 0  # words the clone-index walk consumed
    idxs_extent: int | None = None  # bytes available for the clone-index table (symbol bound)
    idxs_extent_exact: bool = False  # extent from a symbol size (ELF) rather than the next symbol
    trailing_words: list[int] = field(default_factory=list)  # words after the walk, within the extent


@dataclass
class ImageInfo:
    path: Path
    layout: Layout
    layout_reason: str
    format: str
    arch: str
    kind: str
    pointer_size: int
    target_list: bytes = b""
    target_layout: str = "classic"
    targets: list[TargetRecord] = field(default_factory=list)
    header_version: int | None = None
    nshards: int = 0
    nfuncs: int = 0
    ngvars: int = 0
    shards: list[ShardInfo] = field(default_factory=list)
    clones_per_target: list[int] = field(default_factory=list)
    image_data: int | None = None  # address of jl_system_image_data
    image_size: int | None = None  # value of jl_system_image_size
    cpu_target_string: str | None = None
    tls_slots: dict[str, int | None] = field(default_factory=dict)
    small_typeof: int | None = None
    table_symbols: dict[str, int] = field(default_factory=dict)  # located entry symbols
    rtld_marker: str | None = None  # jl_RTLD_DEFAULT_handle_pointer (to 1.10.3) or get_jl_..._addr (1.10.4+)
    problems: dict[str, list[str]] = field(default_factory=dict)  # check name -> what is wrong

    @property
    def layout_name(self) -> str:
        return LAYOUT_NAMES[self.layout]

    @property
    def ntargets(self) -> int:
        return len(self.targets)

    def problem(self, check: str, text: str) -> None:
        self.problems.setdefault(check, []).append(text)

    def summary(self) -> dict[str, object]:
        return {
            "path": str(self.path), "line": self.layout, "line_name": self.layout_name, "line_reason": self.layout_reason,  # keys kept: public JSON
            "format": self.format, "arch": self.arch, "kind": self.kind,
            "targets": [t.name for t in self.targets], "nshards": self.nshards, "nfuncs": self.nfuncs,
            "ngvars": self.ngvars, "clones_per_target": self.clones_per_target,
            "image_size": self.image_size, "cpu_target_string": self.cpu_target_string,
            "rtld_marker": self.rtld_marker,
        }


class _Corrupt(Exception):
    """A table could not be read any further; carries the check it belongs to."""

    def __init__(self, check: str, text: str) -> None:
        super().__init__(text)
        self.check = check
        self.text = text


# =================================================================================================
# small readers
# =================================================================================================

def _words(view: BinaryView, addr: int, n: int, check: str, what: str, signed: bool = False) -> list[int]:
    if n < 0 or n > _MAX_FUNCS * 4:
        raise _Corrupt(check, f"{what}: implausible length {n}")
    if n == 0:
        return []
    try:
        raw = view.read_bytes(addr, 4 * n)
    except InputError as err:
        raise _Corrupt(check, f"{what} ({n} words at {addr:#x}) cannot be read: {err.problem}") from None
    return memoryview(raw).cast("i" if signed else "I").tolist()


def _pointers(view: BinaryView, addr: int, n: int, check: str, what: str) -> list[int | None]:
    if n < 0 or n > _MAX_FUNCS:
        raise _Corrupt(check, f"{what}: implausible length {n}")
    try:
        return view.read_pointers(addr, n)
    except InputError as err:
        raise _Corrupt(check, f"{what} ({n} pointers at {addr:#x}) cannot be read: {err.problem}") from None


def _count(n: int, check: str, what: str, limit: int = _MAX_FUNCS) -> int:
    if n < 0 or n > limit:
        raise _Corrupt(check, f"{what} is {n}, which is implausible")
    return n


def _ptr(view: BinaryView, p: int | None, check: str, what: str) -> int:
    if p is None or p == 0:
        raise _Corrupt(check, f"{what} is {'null' if p == 0 else 'not a pointer into the image'}")
    return p


def _table_extent(view: BinaryView, addr: int, name: str | None) -> tuple[int | None, bool]:
    """(bytes available at addr, exact?) from the symbol's size (ELF) or the next symbol."""
    size_of = getattr(view, "symbol_size", None)
    if name and size_of is not None:
        size = size_of(name)
        if size:
            return size, True
    return view.symbol_extent(addr), False


# =================================================================================================
# the clone-index walk (same scheme in every line)
# =================================================================================================

def walk_clone_idxs(view: BinaryView, shard: ShardInfo, idxs_addr: int, ntargets: int,
                    idxs_name: str | None) -> None:
    """Decode ``ntargets`` tagged records of a clone-index table into ``shard.records``."""
    check = "target-count"
    nfunc = shard.nfuncs
    pos = idxs_addr
    records: list[CloneRecord] = []
    for t in range(ntargets):
        (tag_len,) = _words(view, pos, 1, check, f"shard {shard.index} clone index record of target {t}")
        pos += 4
        clone_all = bool(tag_len & TAG)
        ln = tag_len & VAL
        base = None
        if t == 0 and not clone_all:
            raise _Corrupt(check, f"shard {shard.index}: target 0's clone record is not tagged clone_all "
                                  f"(word {tag_len:#x})")
        if not clone_all:
            (base,) = _words(view, pos, 1, check, f"shard {shard.index} base of target {t}")
            pos += 4
            if base >= t or not records[base].clone_all:
                raise _Corrupt(check, f"shard {shard.index}: target {t} names base({base}), which is not an "
                                      f"earlier clone_all target (the walk is off: wrong target count?)")
        if ln > nfunc:
            raise _Corrupt(check, f"shard {shard.index}: target {t} lists {ln} functions but the shard has "
                                  f"{nfunc} (the walk is off: wrong target count?)")
        idxs = _words(view, pos, ln, check, f"shard {shard.index} indices of target {t}")
        pos += 4 * ln
        bad = [i for i in idxs if i & VAL >= nfunc]
        if bad:
            raise _Corrupt(check, f"shard {shard.index}: target {t} names function {bad[0] & VAL} of {nfunc} "
                                  f"(the walk is off: wrong target count?)")
        if clone_all:
            count, nreloc, nptrs = nfunc, ln, (0 if t == 0 else nfunc)
        else:
            count, nreloc, nptrs = ln, sum(1 for i in idxs if i & TAG), ln
        records.append(CloneRecord(t, clone_all, base, count, nreloc, nptrs))
    shard.records = records
    shard.idxs_words = (pos - idxs_addr) // 4
    extent, exact = _table_extent(view, idxs_addr, idxs_name)
    shard.idxs_extent, shard.idxs_extent_exact = extent, exact
    if extent is not None and extent > pos - idxs_addr:
        spare = min((extent - (pos - idxs_addr)) // 4, 64)
        try:
            shard.trailing_words = _words(view, pos, spare, check, "trailing words")
        except _Corrupt:
            shard.trailing_words = []


def _clone_slices(shard: ShardInfo) -> list[tuple[int, int]]:
    """(start, count) of each target's entries in the shard's clone pointer table."""
    out, start = [], 0
    for r in shard.records:
        out.append((start, r.nptrs))
        start += r.nptrs
    return out


# =================================================================================================
# per-line decoders
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
            raise _Corrupt("image-header", "jl_sysimg_fvars_offsets is not defined")
        (n,) = _words(view, fo, 1, "image-header", "jl_sysimg_fvars_offsets count")
        nf = _count(n, "image-header", "function count in jl_sysimg_fvars_offsets")
        offs = _words(view, fo + 4, nf, "image-header", "jl_sysimg_fvars_offsets", signed=True)
        shard.nfuncs = info.nfuncs = nf
        shard.tables["fvars_offsets"] = fo
        if nf and fbase is None:
            raise _Corrupt("loader-exports", f"{nf} functions but jl_sysimg_fvars_base is not defined")
        shard.func_addrs = [fbase + o for o in offs] if fbase is not None else []
        if go is None:
            raise _Corrupt("image-header", "jl_sysimg_gvars_offsets is not defined")
        (n,) = _words(view, go, 1, "image-header", "jl_sysimg_gvars_offsets count")
        ng = _count(n, "image-header", "variable count in jl_sysimg_gvars_offsets")
        goffs = _words(view, go + 4, ng, "image-header", "jl_sysimg_gvars_offsets", signed=True)
        shard.ngvars = info.ngvars = ng
        if ng and gbase is None:
            raise _Corrupt("loader-exports", f"{ng} global variables but jl_sysimg_gvars_base is not defined")
        shard.gvar_addrs = [gbase + o for o in goffs] if gbase is not None else []
    except _Corrupt as c:
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
            raise _Corrupt("target-count", f"shard {shard.index} has no clone index table")
        shard.tables["clone_idxs"] = idxs
        walk_clone_idxs(view, shard, idxs, len(info.targets), idxs_name)
    except _Corrupt as c:
        info.problem(c.check, c.text)
        return
    total = sum(r.nptrs for r in shard.records)
    try:
        if total:
            if clone_table is None:
                raise _Corrupt("function-pointers", f"shard {shard.index}: {total} clones but no clone table")
            shard.tables["clone_table"] = clone_table
            if absolute:
                shard.clone_addrs = _pointers(view, clone_table, total, "function-pointers",
                                              f"shard {shard.index} clone pointers")
            else:
                offs = _words(view, clone_table, total, "function-pointers", f"shard {shard.index} clone offsets",
                              signed=True)
                if clone_base is None:
                    raise _Corrupt("function-pointers", f"shard {shard.index}: clone offsets without a base")
                shard.clone_addrs = [clone_base + o for o in offs]
    except _Corrupt as c:
        info.problem(c.check, c.text)
    try:
        if slots is not None:
            shard.tables["clone_slots"] = slots
            (n,) = _words(view, slots, 1, "data-pointers", f"shard {shard.index} relocation slot count")
            nreloc = _count(n, "data-pointers", f"shard {shard.index} relocation slot count")
            pairs = _words(view, slots + 4, 2 * nreloc, "data-pointers", f"shard {shard.index} relocation slots",
                           signed=True)
            base = slots if absolute else slot_base
            if nreloc and base is None:
                raise _Corrupt("data-pointers", f"shard {shard.index}: relocation slots without a base")
            bad = [f for f in pairs[0::2] if not 0 <= f < max(shard.nfuncs, 1)]
            if bad:
                info.problem("data-pointers", f"shard {shard.index}: relocation slot names function {bad[0]} "
                                              f"of {shard.nfuncs}")
            shard.slot_addrs = [base + o for o in pairs[1::2]] if base is not None else []
    except _Corrupt as c:
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
        ptrs = _pointers(view, ip, nptrs, "image-header", "jl_image_pointers")
        header = _ptr(view, ptrs[0], "image-header", "jl_image_pointers[0] (header)")
        version, nshards, nfvars, ngvars = _words(view, header, 4, "image-header", "jl_image_header")
    except _Corrupt as c:
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
            tls = _pointers(view, ptrs[2], 3, "data-pointers", "jl_ptls_table")
            info.tls_slots = dict(zip(("pgcstack_func_slot", "pgcstack_key_slot", "tls_offset"), tls))
        except _Corrupt as c:
            info.problem(c.check, c.text)
    info.small_typeof = ptrs[3]
    per_shard = 9 if line == "1.10" else 8
    try:
        shard_base = _ptr(view, ptrs[1], "image-header", "jl_image_pointers[1] (shard tables)")
        table = _pointers(view, shard_base, per_shard * nshards, "image-header", "jl_shard_tables")
    except _Corrupt as c:
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
        except _Corrupt as c:
            info.problem(c.check, c.text)
    _check_header_counts(info)


def _decode_shard_110(view: BinaryView, info: ImageInfo, shard: ShardInfo, row: list[int | None]) -> None:
    fbase, fo, fidx, gbase, go, gidx, slots, coffs, cidx = row
    i = shard.index
    fo = _ptr(view, fo, "image-header", f"shard {i} fvar_offsets")
    (n,) = _words(view, fo, 1, "image-header", f"shard {i} function count")
    shard.nfuncs = _count(n, "image-header", f"shard {i} function count")
    offs = _words(view, fo + 4, shard.nfuncs, "image-header", f"shard {i} fvar_offsets", signed=True)
    if shard.nfuncs:
        base = _ptr(view, fbase, "function-pointers", f"shard {i} fvar_base")
        shard.func_addrs = [base + o for o in offs]
    shard.fvar_idxs = _words(view, _ptr(view, fidx, "image-header", f"shard {i} fvar_idxs"), shard.nfuncs,
                             "image-header", f"shard {i} fvar_idxs") if shard.nfuncs else []
    go = _ptr(view, go, "image-header", f"shard {i} gvar_offsets")
    (n,) = _words(view, go, 1, "image-header", f"shard {i} variable count")
    shard.ngvars = _count(n, "image-header", f"shard {i} variable count")
    goffs = _words(view, go + 4, shard.ngvars, "image-header", f"shard {i} gvar_offsets", signed=True)
    if shard.ngvars:
        gb = _ptr(view, gbase, "data-pointers", f"shard {i} gvar_base")
        shard.gvar_addrs = [gb + o for o in goffs]
        shard.gvar_idxs = _words(view, _ptr(view, gidx, "image-header", f"shard {i} gvar_idxs"), shard.ngvars,
                                 "image-header", f"shard {i} gvar_idxs")
    shard.tables.update({"fvar_offsets": fo, "gvar_offsets": go})
    _decode_clones(view, info, shard, cidx, _static_name(view, f"jl_clone_idxs_{i}"),
                   clone_table=coffs, clone_base=fbase, slots=slots, slot_base=gbase)


def _decode_shard_111(view: BinaryView, info: ImageInfo, shard: ShardInfo, row: list[int | None]) -> None:
    fcount, fptrs, fidx, go, gidx, slots, cptrs, cidx = row
    i = shard.index
    fcount = _ptr(view, fcount, "image-header", f"shard {i} fvar_count")
    try:
        n = int.from_bytes(view.read_bytes(fcount, view.pointer_size), "little")
    except InputError as err:
        raise _Corrupt("image-header", f"shard {i} function count: {err.problem}") from None
    shard.nfuncs = _count(n, "image-header", f"shard {i} function count")
    if shard.nfuncs:
        shard.func_addrs = _pointers(view, _ptr(view, fptrs, "function-pointers", f"shard {i} fvar_ptrs"),
                                     shard.nfuncs, "function-pointers", f"shard {i} fvar_ptrs")
        shard.fvar_idxs = _words(view, _ptr(view, fidx, "image-header", f"shard {i} fvar_idxs"), shard.nfuncs,
                                 "image-header", f"shard {i} fvar_idxs")
    go = _ptr(view, go, "image-header", f"shard {i} gvar_offsets")
    (n,) = _words(view, go, 1, "image-header", f"shard {i} variable count")
    shard.ngvars = _count(n, "image-header", f"shard {i} variable count")
    goffs = _words(view, go + 4, shard.ngvars, "image-header", f"shard {i} gvar_offsets", signed=True)
    shard.gvar_addrs = [go + o for o in goffs]
    if shard.ngvars:
        shard.gvar_idxs = _words(view, _ptr(view, gidx, "image-header", f"shard {i} gvar_idxs"), shard.ngvars,
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
