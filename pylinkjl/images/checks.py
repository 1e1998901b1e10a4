"""The checks of a package image's Julia tables: layout, exports, header, targets, clones, pointers, heap.

Each takes the decoded tables (:class:`~pylinkjl.images.imageinfo.ImageInfo`) and the opened image and returns one
:class:`~pylinkjl.images.report.CheckResult`, so that a corrupt table fails exactly the check that names it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pylinkjl.images.imageinfo import ImageInfo
from pylinkjl.images.layout import LOADER_SYMBOLS, TAG
from pylinkjl.images.report import MAX_EXAMPLES, CheckResult, failed, join_problems, not_applicable, passed
from pylinkjl.target import Target, target_of_format

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

def check_format(view: BinaryView, target: Target | None) -> tuple[CheckResult, Target | None]:
    """Format, architecture and kind (shared library) match the target."""
    found = target_of_format(view.format, view.arch)
    nums = {"format": view.format, "arch": view.arch, "kind": view.kind,
            "target": None if target is None else target.name}
    if target is not None:
        if view.format != target.format or view.arch != target.arch:
            return failed("image-format", f"the image is {view.format} {view.arch}, but the target "
                                           f"{target.name} needs {target.format} {target.arch}", **nums), target
    elif found is None:
        return failed("image-format", f"{view.format} {view.arch} is not one of the pkgimage targets", **nums), None
    if view.kind != "shared":
        return failed("image-format", f"the file is a{'n' if view.kind[0] in 'aeiou' else ''} {view.kind}, "
                                       "not a shared library", **nums), target or found
    t = target or found
    assert t is not None
    return passed("image-format", f"{view.format} shared library for {t.name}", **nums), t


def check_layout(info: ImageInfo) -> CheckResult:
    probs = info.problems.get("julia-line", [])
    nums = {"line": info.layout, "detected_by": info.layout_reason}
    if probs:
        return failed("julia-line", join_problems(probs), **nums)
    return passed("julia-line", f"{info.layout_name} layout ({info.layout_reason})", **nums)


def check_exports(view: BinaryView, info: ImageInfo) -> CheckResult:
    """The symbols the loader looks up with jl_dlsym are present and exported."""
    table = {"elf": ".dynsym", "macho": "export trie", "coff": "export table"}[view.format]
    missing: list[str] = []
    hidden: list[str] = []
    present: list[str] = []
    for name, required in LOADER_SYMBOLS[info.layout]:
        if info.layout == "1.9" and name == "jl_sysimg_fvars_base":
            required = info.nfuncs > 0
        if info.layout == "1.9" and name == "jl_sysimg_gvars_base":
            required = info.ngvars > 0
        if view.export_address(name) is not None:
            present.append(name)
        elif required:
            (hidden if view.symbol_address(name) is not None else missing).append(name)
    probs = [p for p in info.problems.get("loader-exports", [])]
    nums = {"exported": present, "missing": missing, "defined_but_not_exported": hidden, "table": table}
    if missing or hidden or probs:
        parts = []
        if hidden:
            parts.append(f"defined but not exported in the {table}: {', '.join(hidden)}")
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        return failed("loader-exports", "; ".join(parts + probs), **nums)
    return passed("loader-exports", f"{len(present)} loader symbols exported in the {table}", **nums)


def check_header(info: ImageInfo) -> CheckResult:
    probs = info.problems.get("image-header", [])
    nums = {"version": info.header_version, "nshards": info.nshards, "nfuncs": info.nfuncs, "ngvars": info.ngvars,
            "shard_funcs": [s.nfuncs for s in info.shards], "shard_gvars": [s.ngvars for s in info.shards]}
    if probs:
        return failed("image-header", join_problems(probs), **nums)
    if info.layout == "1.9":
        return passed("image-header", f"{info.nfuncs} functions, {info.ngvars} global variables (1.9 has no "
                                       "header)", **nums)
    return passed("image-header", f"version 1, {info.nshards} shard(s), {info.nfuncs} functions, "
                                   f"{info.ngvars} global variables, consistent with the shards", **nums)


_FEATURE_WORDS = {"x86_64": (11, 12), "i686": (11, 12), "aarch64": (3,), "arm": (3,)}


def check_target_list(info: ImageInfo) -> CheckResult:
    probs = list(info.problems.get("target-list", []))
    nums: dict[str, Any] = {"ntargets": len(info.targets), "layout": info.target_layout,
                            "targets": [t.name for t in info.targets], "bytes": len(info.target_list)}
    if not probs and not info.targets:
        probs.append("no target list was found")
    want = _FEATURE_WORDS.get(info.arch)
    if want and info.target_layout == "classic":
        for t in info.targets:
            if t.nwords not in want:
                probs.append(f"target {t.name!r} stores {t.nwords} feature words; Julia on {info.arch} uses "
                             f"{' or '.join(map(str, want))}")
                break
    if probs:
        return failed("target-list", join_problems(probs), **nums)
    names = ", ".join(t.name for t in info.targets)
    return passed("target-list", f"{len(info.targets)} target(s): {names}", **nums)


def _looks_like_record(words: list[int], nfunc: int) -> bool:
    """Could these trailing words be one more clone-index record (rather than padding)?"""
    if not words or words[0] == 0:
        return False
    w = words[0]
    if w & TAG:
        return (w & ~TAG) <= nfunc
    return w <= nfunc and len(words) > 1


def check_target_count(info: ImageInfo) -> CheckResult:
    """The number of targets agrees with every shard's clone-index walk."""
    n = len(info.targets)
    probs = list(info.problems.get("target-count", []))
    nums: dict[str, Any] = {"ntargets": n, "shards": []}
    if not info.targets:
        return not_applicable("target-count", "no target list to compare with", **nums)
    for s in info.shards:
        used = 4 * s.idxs_words
        nums["shards"].append({"shard": s.index, "records": len(s.records), "words": s.idxs_words,
                               "table_bytes": s.idxs_extent, "exact": s.idxs_extent_exact})
        if len(s.records) != n or s.idxs_extent is None:
            continue
        spare = s.idxs_extent - used
        if s.idxs_extent_exact and spare >= 4:
            probs.append(f"shard {s.index}: the clone index table has {s.idxs_extent} bytes but {n} target "
                         f"record(s) use {used}: the table holds more targets than the target list's {n}")
        elif not s.idxs_extent_exact and _looks_like_record(s.trailing_words, s.nfuncs):
            probs.append(f"shard {s.index}: after {n} target record(s) ({used} bytes) the clone index table goes "
                         f"on with {s.trailing_words[0]:#x}: it holds more targets than the target list's {n}")
    if probs:
        return failed("target-count", join_problems(probs), **nums)
    return passed("target-count", f"{n} target(s) in the list, and every one of {len(info.shards)} shard(s) "
                                   f"walks {n} clone record(s)", **nums)


def check_clones(info: ImageInfo) -> CheckResult:
    nums: dict[str, Any] = {"clones_per_target": info.clones_per_target,
                            "targets": [t.name for t in info.targets]}
    if not info.clones_per_target:
        return not_applicable("clones-per-target", "the clone tables could not be walked (see target-count)", **nums)
    kinds = []
    for t, count in enumerate(info.clones_per_target):
        rec = [s.records[t] for s in info.shards]
        if t == 0:
            kinds.append("default")
        elif all(r.clone_all for r in rec):
            kinds.append("clone_all")
        else:
            bases = sorted({r.base for r in rec if r.base is not None})
            kinds.append(f"base({','.join(map(str, bases))})")
    nums["kinds"] = kinds
    text = ", ".join(f"{t.name}={c} ({k})" for t, c, k in zip(info.targets, info.clones_per_target, kinds))
    return passed("clones-per-target", text, **nums)


class _Ranges:
    """Merged address ranges: of the sections that have one property (executable / writable), or given."""

    def __init__(self, view: BinaryView, pick: Callable[[Any], bool] | None = None, *,
                 spans: list[tuple[int, int]] | None = None) -> None:
        if spans is None:
            assert pick is not None
            spans = [(s.vaddr, s.end) for s in view.sections if pick(s)]
        spans = sorted(spans)
        merged: list[list[int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        self.lo = [m[0] for m in merged]
        self.hi = [m[1] for m in merged]

    def contains(self, a: int) -> bool:
        i = bisect.bisect_right(self.lo, a) - 1
        return i >= 0 and a < self.hi[i]

    def outside(self, addrs: Sequence[int | None]) -> tuple[int, list[int | None]]:
        """(how many are outside, a few examples); fast when everything is inside one range."""
        vals = [a for a in addrs if a is not None]
        n_none = len(addrs) - len(vals)
        if vals and n_none == 0:
            lo, hi = min(vals), max(vals)
            i = bisect.bisect_right(self.lo, lo) - 1
            if i >= 0 and hi < self.hi[i]:
                return 0, []
        bad = [a for a in addrs if a is None or not self.contains(a)]
        return len(bad), bad[:MAX_EXAMPLES]


def _describe(view: BinaryView, addr: int | None, slot: int | None = None) -> str:
    if addr is None:
        why = view.relocation_problem(slot) if slot is not None else None
        return why or "an unresolved pointer"
    sec = view.section_at(addr)
    return f"{addr:#x} ({'in ' + sec.name if sec else 'in no section'})"


def check_function_pointers(view: BinaryView, info: ImageInfo) -> CheckResult:
    """Every function and clone pointer lands in an executable section."""
    exe = _Ranges(view, lambda s: s.executable)
    probs = list(info.problems.get("function-pointers", []))
    nf = nc = 0
    for s in info.shards:
        nf += len(s.func_addrs)
        nc += len(s.clone_addrs)
        for what, addrs, table in (("function", s.func_addrs, s.tables.get("fvar_ptrs")),
                                   ("clone", s.clone_addrs, s.tables.get("clone_table"))):
            n_bad, examples = exe.outside(addrs)
            if n_bad:
                idx = addrs.index(examples[0])
                slot = table + idx * view.pointer_size if table is not None and examples[0] is None else None
                probs.append(f"shard {s.index}: {n_bad} {what} pointer(s) outside executable sections, "
                             f"e.g. #{idx} -> {_describe(view, examples[0], slot)}")
    nums = {"functions": nf, "clones": nc}
    if probs:
        return failed("function-pointers", join_problems(probs), **nums)
    if not nf and not nc:
        return passed("function-pointers", "the image has no functions", **nums)
    return passed("function-pointers", f"{nf} function and {nc} clone pointers land in executable sections",
                   **nums)


def check_data_pointers(view: BinaryView, info: ImageInfo) -> CheckResult:
    """Every relocation slot, global variable and TLS slot lies in memory the loader maps writable (ELF
    PT_LOAD flags less PT_GNU_RELRO, Mach-O segment protections, PE sections): section headers, which
    post-processing such as patchelf rewrites, play no part."""
    rw = _Ranges(view, spans=view.loader_ranges(writable=True))
    probs = list(info.problems.get("data-pointers", []))
    ng = nslots = 0
    for s in info.shards:
        ng += len(s.gvar_addrs)
        nslots += len(s.slot_addrs)
        for what, addrs in (("global variable", s.gvar_addrs), ("relocation slot", s.slot_addrs)):
            n_bad, examples = rw.outside(addrs)
            if n_bad:
                idx = next(i for i, a in enumerate(addrs) if a == examples[0])
                probs.append(f"shard {s.index}: {n_bad} {what}(s) outside writable memory, e.g. #{idx} at "
                             f"{_describe(view, examples[0])}")
    extra = {k: v for k, v in info.tls_slots.items() if v is not None}
    if info.small_typeof is not None:
        extra["jl_small_typeof"] = info.small_typeof
    for name, addr in extra.items():
        if not rw.contains(addr):
            probs.append(f"{name} at {_describe(view, addr)} is not writable")
    nums = {"gvars": ng, "slots": nslots, "runtime_slots": len(extra)}
    if probs:
        return failed("data-pointers", join_problems(probs), **nums)
    return passed("data-pointers", f"{ng} global variables, {nslots} relocation slots and {len(extra)} runtime "
                                    "slots are writable", **nums)


# -- comparison with the input ---------------------------------------------------------------------

_CLONE_RE = {"1.9": re.compile(r"^(.+)\.clone_(\d+)$"), "other": re.compile(r"^(.+)\.(\d+)$")}


def count_input_clones(functions: Iterable[str], layout: str) -> dict[int, int]:
    """Target index -> number of clone functions named as Julia names them (``f.N`` / ``f.clone_N``)."""
    names = set(functions)
    pattern = _CLONE_RE["1.9" if layout == "1.9" else "other"]
    out: dict[int, int] = {}
    for n in names:
        m = pattern.match(n)
        if m and m.group(1) in names and not m.group(1).endswith(".reloc_slot"):
            t = int(m.group(2))
            out[t] = out.get(t, 0) + 1
    return out


def check_object_exports(view: BinaryView, info: ImageInfo, defined: set[str]) -> CheckResult:
    needed = [n for n, _ in LOADER_SYMBOLS[info.layout] if n in defined]
    lost = [n for n in needed if view.export_address(n) is None]
    nums = {"input_defines": needed, "not_exported": lost}
    if lost:
        return failed("object-exports", f"the input defines {', '.join(lost)} but the image does not export it",
                       **nums)
    return passed("object-exports", f"all {len(needed)} loader symbols the input defines are exported", **nums)


def check_object_clones(info: ImageInfo, input_clones: dict[int, int]) -> CheckResult:
    n = len(info.targets)
    table = [sum(s.records[t].nptrs for s in info.shards) if all(len(s.records) == n for s in info.shards) else None
             for t in range(n)]
    nums = {"input": {str(k): v for k, v in sorted(input_clones.items())}, "image": table}
    if any(x is None for x in table):
        return not_applicable("object-clones", "the image's clone tables could not be walked", **nums)
    bad = []
    for t in range(1, n):
        if input_clones.get(t, 0) != table[t]:
            bad.append(f"target {t} ({info.targets[t].name}): {input_clones.get(t, 0)} clones in the input, "
                       f"{table[t]} table entries in the image")
    extra = sorted(t for t in input_clones if t >= n or t == 0)
    if extra:
        bad.append(f"the input has clones for target(s) {extra} that the image's {n}-target list lacks")
    if bad:
        return failed("object-clones", join_problems(bad), **nums)
    return passed("object-clones", "clones per target in the input match the image's tables", **nums)
