"""Verify a linked package image against what Julia's loader will need, per Julia line.

A link can succeed and still produce an image Julia cannot use (an empty library, an unexported
symbol, a clone table that points nowhere). :func:`verify_image` reads the image once through the LIEF
facade, decodes the tables (:mod:`pylinkjl.images.decode`) and runs a list of named checks. Each check passes,
fails, or does not apply, always with the reason and the numbers behind it, so that a corrupt table
fails exactly the check that names it.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pylinkjl.errors import InputError
from pylinkjl.images.decode import LOADER_SYMBOLS, TAG, ImageInfo, decode_image
from pylinkjl.target import ALL_TARGETS, Target, parse_target

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

log = logging.getLogger("pylinkjl.images.verify")

Status = Literal["passed", "failed", "not_applicable"]
_MAX_EXAMPLES = 5


@dataclass
class CheckResult:
    name: str
    status: Status
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class Report:
    path: Path
    checks: list[CheckResult] = field(default_factory=list)
    image: dict[str, Any] = field(default_factory=dict)  # summary of what was decoded

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    def __getitem__(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def __iter__(self) -> Any:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def add(self, check: CheckResult) -> None:
        self.checks.append(check)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "image": self.image,
                "checks": [asdict(c) for c in self.checks]}

    def render(self, *, verbose: bool = False) -> str:
        """The report as a person reads it (what every command prints): a line per check; a failed
        check, or every check with ``verbose``, shows its numbers."""
        img = self.image
        head = (f"{self.path}: {img.get('line_name', '?')} image, {img.get('format', '?')} {img.get('arch', '?')}"
                f", {len(img.get('targets') or [])} target(s), {img.get('nshards', 0)} shard(s), "
                f"{img.get('nfuncs', 0)} functions")
        lines = [head]
        for c in self.checks:
            lines.append(f"  {_MARK[c.status]} {c.name}: {c.reason}")
            if c.numbers and (verbose or c.failed):
                lines.append(f"       {json.dumps(c.numbers, default=str)[:2000]}")
        failed = self.failed
        lines.append("verification passed" if not failed else f"verification FAILED: {len(failed)} check(s) "
                     f"failed ({', '.join(c.name for c in failed)})")
        return "\n".join(lines)


_MARK = {"passed": "ok  ", "failed": "FAIL", "not_applicable": "n/a "}


def _passed(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "passed", reason, numbers)


def _failed(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "failed", reason, numbers)


def _na(name: str, reason: str, **numbers: Any) -> CheckResult:
    return CheckResult(name, "not_applicable", reason, numbers)


def _join(problems: list[str]) -> str:
    head = "; ".join(problems[:3])
    return head + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")


# =================================================================================================
# individual checks
# =================================================================================================

def check_format(view: BinaryView, target: Target | None) -> tuple[CheckResult, Target | None]:
    """Format, architecture and kind (shared library) match the target."""
    os_of = {"elf": "linux", "macho": "macos", "coff": "windows"}[view.format]
    found = Target(os_of, view.arch) if Target(os_of, view.arch) in ALL_TARGETS else None  # type: ignore[arg-type]
    nums = {"format": view.format, "arch": view.arch, "kind": view.kind,
            "target": None if target is None else target.name}
    if target is not None:
        if view.format != target.format or view.arch != target.arch:
            return _failed("image-format", f"the image is {view.format} {view.arch}, but the target "
                                           f"{target.name} needs {target.format} {target.arch}", **nums), target
    elif found is None:
        return _failed("image-format", f"{view.format} {view.arch} is not one of the pkgimage targets", **nums), None
    if view.kind != "shared":
        return _failed("image-format", f"the file is a{'n' if view.kind[0] in 'aeiou' else ''} {view.kind}, "
                                       "not a shared library", **nums), target or found
    t = target or found
    assert t is not None
    return _passed("image-format", f"{view.format} shared library for {t.name}", **nums), t


def check_line(info: ImageInfo) -> CheckResult:
    probs = info.problems.get("julia-line", [])
    nums = {"line": info.line, "detected_by": info.line_reason}
    if probs:
        return _failed("julia-line", _join(probs), **nums)
    return _passed("julia-line", f"{info.line_name} layout ({info.line_reason})", **nums)


def check_exports(view: BinaryView, info: ImageInfo) -> CheckResult:
    """The symbols the loader looks up with jl_dlsym are present and exported."""
    table = {"elf": ".dynsym", "macho": "export trie", "coff": "export table"}[view.format]
    missing: list[str] = []
    hidden: list[str] = []
    present: list[str] = []
    for name, required in LOADER_SYMBOLS[info.line]:
        if info.line == "1.9" and name == "jl_sysimg_fvars_base":
            required = info.nfuncs > 0
        if info.line == "1.9" and name == "jl_sysimg_gvars_base":
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
        return _failed("loader-exports", "; ".join(parts + probs), **nums)
    return _passed("loader-exports", f"{len(present)} loader symbols exported in the {table}", **nums)


def check_header(info: ImageInfo) -> CheckResult:
    probs = info.problems.get("image-header", [])
    nums = {"version": info.header_version, "nshards": info.nshards, "nfuncs": info.nfuncs, "ngvars": info.ngvars,
            "shard_funcs": [s.nfuncs for s in info.shards], "shard_gvars": [s.ngvars for s in info.shards]}
    if probs:
        return _failed("image-header", _join(probs), **nums)
    if info.line == "1.9":
        return _passed("image-header", f"{info.nfuncs} functions, {info.ngvars} global variables (1.9 has no "
                                       "header)", **nums)
    return _passed("image-header", f"version 1, {info.nshards} shard(s), {info.nfuncs} functions, "
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
        return _failed("target-list", _join(probs), **nums)
    names = ", ".join(t.name for t in info.targets)
    return _passed("target-list", f"{len(info.targets)} target(s): {names}", **nums)


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
        return _na("target-count", "no target list to compare with", **nums)
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
        return _failed("target-count", _join(probs), **nums)
    return _passed("target-count", f"{n} target(s) in the list, and every one of {len(info.shards)} shard(s) "
                                   f"walks {n} clone record(s)", **nums)


def check_clones(info: ImageInfo) -> CheckResult:
    nums: dict[str, Any] = {"clones_per_target": info.clones_per_target,
                            "targets": [t.name for t in info.targets]}
    if not info.clones_per_target:
        return _na("clones-per-target", "the clone tables could not be walked (see target-count)", **nums)
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
    return _passed("clones-per-target", text, **nums)


class _Ranges:
    """Merged address ranges of the sections that have one property (executable / writable)."""

    def __init__(self, view: BinaryView, pick: Callable[[Any], bool]) -> None:
        spans = sorted((s.vaddr, s.end) for s in view.sections if pick(s))
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
        return len(bad), bad[:_MAX_EXAMPLES]


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
        return _failed("function-pointers", _join(probs), **nums)
    if not nf and not nc:
        return _passed("function-pointers", "the image has no functions", **nums)
    return _passed("function-pointers", f"{nf} function and {nc} clone pointers land in executable sections",
                   **nums)


def check_data_pointers(view: BinaryView, info: ImageInfo) -> CheckResult:
    """Every relocation slot, global variable and TLS slot lies in a writable section."""
    rw = _Ranges(view, lambda s: s.writable)
    probs = list(info.problems.get("data-pointers", []))
    ng = nslots = 0
    for s in info.shards:
        ng += len(s.gvar_addrs)
        nslots += len(s.slot_addrs)
        for what, addrs in (("global variable", s.gvar_addrs), ("relocation slot", s.slot_addrs)):
            n_bad, examples = rw.outside(addrs)
            if n_bad:
                idx = next(i for i, a in enumerate(addrs) if a == examples[0])
                probs.append(f"shard {s.index}: {n_bad} {what}(s) outside writable sections, e.g. #{idx} at "
                             f"{_describe(view, examples[0])}")
    extra = {k: v for k, v in info.tls_slots.items() if v is not None}
    if info.small_typeof is not None:
        extra["jl_small_typeof"] = info.small_typeof
    for name, addr in extra.items():
        if not rw.contains(addr):
            probs.append(f"{name} at {_describe(view, addr)} is not writable")
    nums = {"gvars": ng, "slots": nslots, "runtime_slots": len(extra)}
    if probs:
        return _failed("data-pointers", _join(probs), **nums)
    return _passed("data-pointers", f"{ng} global variables, {nslots} relocation slots and {len(extra)} runtime "
                                    "slots are writable", **nums)


_HEAP_MAGIC = b"\xfbjli\r\n\x1a\n"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def check_image_data(view: BinaryView, info: ImageInfo) -> CheckResult:
    probs = list(info.problems.get("system-image-data", []))
    nums = {"address": info.image_data, "size": info.image_size}
    if info.image_data is None and info.image_size is None and info.line == "1.13":
        return _na("system-image-data", "no jl_system_image_data: the heap lives in the .ji (split image)", **nums)
    if info.image_data is None or info.image_size is None:
        missing = "jl_system_image_data" if info.image_data is None else "jl_system_image_size"
        return _failed("system-image-data", f"{missing} is not defined", **nums)
    sec = view.section_at(info.image_data)
    if sec is None:
        probs.append(f"jl_system_image_data at {info.image_data:#x} is in no section")
    elif info.image_data + info.image_size > sec.end:
        probs.append(f"jl_system_image_size says {info.image_size} bytes but only {sec.end - info.image_data} "
                     f"remain in {sec.name}")
    elif info.image_size >= 8:
        head = view.read_bytes(info.image_data, 8)
        if head != _HEAP_MAGIC and head[:4] != _ZSTD_MAGIC:
            probs.append(f"jl_system_image_data does not start with the cache header magic (found {head.hex()})")
    if probs:
        return _failed("system-image-data", _join(probs), **nums)
    return _passed("system-image-data", f"{info.image_size} bytes of serialized heap in "
                                        f"{sec.name if sec else '?'}", **nums)


# -- Windows ---------------------------------------------------------------------------------------

def check_pe_entry(view: BinaryView) -> CheckResult:
    sym = view.entry_symbol
    nums = {"entry_rva": view.entry_point, "symbol": sym}
    if view.entry_point is None:
        return _failed("pe-entry-point", "the DLL has no entry point (AddressOfEntryPoint is 0)", **nums)
    sec = view.section_at(view.entry_point)
    if sec is None or not sec.executable:
        return _failed("pe-entry-point", f"the entry point {view.entry_point:#x} is not in an executable section",
                       **nums)
    if sym in ("_DllMainCRTStartup", "_DllMainCRTStartup@12"):
        return _passed("pe-entry-point", "the entry point is Julia's _DllMainCRTStartup stub", **nums)
    if sym in ("DllMainCRTStartup", "DllMainCRTStartup@12"):
        return _passed("pe-entry-point", "the entry point is the MinGW CRT's DllMainCRTStartup", **nums)
    what = f"symbol {sym}" if sym else "code that is neither Julia's stub nor a named CRT entry"
    return _failed("pe-entry-point", f"the entry point {view.entry_point:#x} is {what}; Windows calls it as "
                                     "DllMain on load", **nums)


def check_pe_exports(view: BinaryView) -> CheckResult:
    n = view.export_count
    if n >= 65535:
        return _failed("pe-export-count", f"{n} exports: PE export ordinals stop at 65535", exports=n)
    return _passed("pe-export-count", f"{n} exports (limit 65535)", exports=n)


def check_pe_pseudo_relocs(view: BinaryView) -> CheckResult:
    pr = view.pseudo_relocs
    if pr is None:
        return _na("pe-pseudo-relocs", "the image has no COFF symbol table naming the pseudo-relocation list")
    nums = {"count": pr.count, "has_relocator": pr.has_relocator}
    rtld = view.export_address("jl_RTLD_DEFAULT_handle_pointer")
    if pr.count and not pr.has_relocator and rtld is not None and pr.targets and \
            all(rtld <= t < rtld + 8 for t in pr.targets):
        # Julia 1.9 - 1.10.3 images auto-import this one pointer; the loader reads it only for system
        # images, so Julia's own images carry it unrelocated too.
        return _passed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocation(s), all in "
                       "jl_RTLD_DEFAULT_handle_pointer, which Julia checks only for system images", **nums)
    if pr.count and not pr.has_relocator:
        return _failed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocation(s) but no "
                                           "_pei386_runtime_relocator: those pointers stay unrelocated", **nums)
    return _passed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocations"
                   + (" with a relocator" if pr.count else ""), **nums)


# -- macOS ------------------------------------------------------------------------------------------

def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


def check_macho_build_version(view: BinaryView) -> CheckResult:
    bv = view.build_version
    if bv is None:
        return _failed("macho-build-version", "no LC_BUILD_VERSION (or LC_VERSION_MIN_MACOSX): dyld cannot tell "
                                              "the platform")
    nums = {"platform": bv.platform, "minos": bv.minos, "sdk": bv.sdk}
    if bv.platform != "macos":
        return _failed("macho-build-version", f"platform is {bv.platform}, not macos", **nums)
    floor = (11, 0) if view.arch == "aarch64" else (10, 9)
    if _ver(bv.minos) < floor:
        return _failed("macho-build-version", f"minimum macOS {bv.minos} is below what {view.arch} supports "
                                              f"({'.'.join(map(str, floor))})", **nums)
    return _passed("macho-build-version", f"macos, minimum {bv.minos}, sdk {bv.sdk}", **nums)


def check_macho_install_name(view: BinaryView) -> CheckResult:
    name = view.install_name
    if not name:
        return _failed("macho-install-name", "no LC_ID_DYLIB install name: not a loadable dylib")
    return _passed("macho-install-name", name, install_name=name)


def check_macho_signature(view: BinaryView) -> CheckResult:
    sig = view.code_signature
    if sig is None:
        if view.arch == "aarch64":
            return _failed("macho-code-signature", "arm64 images must carry a code signature (LLD signs ad hoc "
                                                   "unless -no_adhoc_codesign)")
        return _na("macho-code-signature", f"{view.arch} images need no code signature")
    nums = {"offset": sig.offset, "size": sig.size, "code_limit": sig.code_limit, "page_size": sig.page_size,
            "file_size": view.file_size}
    if sig.hashes_ok is False or sig.problem and sig.hashes_ok is not True:
        return _failed("macho-code-signature", sig.problem or "the signature does not match", **nums)
    return _passed("macho-code-signature", f"signature covers {sig.code_limit} bytes, every page hash matches",
                   **nums)


# -- ELF --------------------------------------------------------------------------------------------

def check_elf_needed(view: BinaryView) -> CheckResult:
    needed = list(view.needed_libraries)
    missing = [lib for lib in ("libjulia", "libjulia-internal")
               if not any(re.fullmatch(rf"{lib}(-debug)?\.so(\.\d+)*", n) for n in needed)]
    if missing:
        return _failed("elf-needed", f"DT_NEEDED lacks {' and '.join(missing)} (has: {', '.join(needed) or 'none'})",
                       needed=needed)
    return _passed("elf-needed", ", ".join(needed), needed=needed)


def check_elf_textrel(view: BinaryView) -> CheckResult:
    if view.has_textrel:
        return _failed("elf-textrel", "the image has text relocations (DT_TEXTREL): code was not compiled PIC")
    return _passed("elf-textrel", "no text relocations")


# -- comparison with the input ---------------------------------------------------------------------

_CLONE_RE = {"1.9": re.compile(r"^(.+)\.clone_(\d+)$"), "other": re.compile(r"^(.+)\.(\d+)$")}


def count_input_clones(functions: Iterable[str], line: str) -> dict[int, int]:
    """Target index -> number of clone functions named as Julia names them (``f.N`` / ``f.clone_N``)."""
    names = set(functions)
    pattern = _CLONE_RE["1.9" if line == "1.9" else "other"]
    out: dict[int, int] = {}
    for n in names:
        m = pattern.match(n)
        if m and m.group(1) in names and not m.group(1).endswith(".reloc_slot"):
            t = int(m.group(2))
            out[t] = out.get(t, 0) + 1
    return out


def check_object_exports(view: BinaryView, info: ImageInfo, defined: set[str]) -> CheckResult:
    needed = [n for n, _ in LOADER_SYMBOLS[info.line] if n in defined]
    lost = [n for n in needed if view.export_address(n) is None]
    nums = {"input_defines": needed, "not_exported": lost}
    if lost:
        return _failed("object-exports", f"the input defines {', '.join(lost)} but the image does not export it",
                       **nums)
    return _passed("object-exports", f"all {len(needed)} loader symbols the input defines are exported", **nums)


def check_object_clones(info: ImageInfo, input_clones: dict[int, int]) -> CheckResult:
    n = len(info.targets)
    table = [sum(s.records[t].nptrs for s in info.shards) if all(len(s.records) == n for s in info.shards) else None
             for t in range(n)]
    nums = {"input": {str(k): v for k, v in sorted(input_clones.items())}, "image": table}
    if any(x is None for x in table):
        return _na("object-clones", "the image's clone tables could not be walked", **nums)
    bad = []
    for t in range(1, n):
        if input_clones.get(t, 0) != table[t]:
            bad.append(f"target {t} ({info.targets[t].name}): {input_clones.get(t, 0)} clones in the input, "
                       f"{table[t]} table entries in the image")
    extra = sorted(t for t in input_clones if t >= n or t == 0)
    if extra:
        bad.append(f"the input has clones for target(s) {extra} that the image's {n}-target list lacks")
    if bad:
        return _failed("object-clones", _join(bad), **nums)
    return _passed("object-clones", "clones per target in the input match the image's tables", **nums)


# =================================================================================================
# driver
# =================================================================================================

def _platform_checks(view: BinaryView) -> list[CheckResult]:
    if view.format == "coff":
        return [check_pe_entry(view), check_pe_exports(view), check_pe_pseudo_relocs(view)]
    if view.format == "macho":
        return [check_macho_build_version(view), check_macho_install_name(view), check_macho_signature(view)]
    return [check_elf_needed(view), check_elf_textrel(view)]


def input_functions_and_globals(obj: Path) -> tuple[set[str], set[str]]:
    """(functions defined by the input, locals included; global symbols it defines), plain names."""
    from pylinkjl.binfmt.ar import is_archive, iter_member_data
    from pylinkjl.binfmt.lief import object_functions
    from pylinkjl.binfmt.symbols import input_symbols  # pure Python, cheap

    defined: set[str] = set()
    for _member, syms in input_symbols(obj):
        strip = syms.format == "macho" or (syms.format == "coff" and syms.arch == "i686")
        defined.update(n[1:] if strip and n.startswith("_") else n for n in syms.defined)
    with open(obj, "rb") as f:
        head = f.read(8)
    funcs: set[str] = set()
    if is_archive(head):
        for member, data in iter_member_data(obj):
            funcs |= object_functions(data, f"{obj}({member.name})")[1]
    else:
        funcs |= object_functions(obj.read_bytes(), str(obj))[1]
    return funcs, defined


def _object_checks(view: BinaryView, info: ImageInfo, obj: Path) -> list[CheckResult]:
    funcs, defined = input_functions_and_globals(obj)
    clones = count_input_clones(funcs, info.line)
    return [check_object_exports(view, info, defined), check_object_clones(info, clones)]


def verify_view(view: BinaryView, *, object: str | Path | None = None, target: Target | str | None = None,
                julia_version: str | None = None) -> Report:
    """Run every check on an opened image."""
    tgt = parse_target(target) if isinstance(target, str) else target
    report = Report(view.path)
    fmt_check, _found = check_format(view, tgt)
    report.add(fmt_check)
    try:
        info = decode_image(view, julia_version=julia_version)
    except InputError as err:
        if "not a Julia package image" not in err.problem:
            raise
        report.add(_failed("julia-line", err.problem))
        report.image = {"format": view.format, "arch": view.arch, "line_name": "not a Julia"}
        report.checks.extend(_platform_checks(view))
        return report
    report.image = info.summary()
    for check in (check_line(info), check_exports(view, info), check_header(info), check_target_list(info),
                  check_target_count(info), check_clones(info), check_function_pointers(view, info),
                  check_data_pointers(view, info), check_image_data(view, info)):
        report.add(check)
    report.checks.extend(_platform_checks(view))
    if object is not None:
        report.checks.extend(_object_checks(view, info, Path(object)))
    return report


def verify_image(path: str | Path, *, object: str | Path | None = None, target: Target | str | None = None,
                 julia_version: str | None = None) -> Report:
    """Verify the image at ``path``; see the module docstring. Raises InputError when the file cannot be
    read as an image at all (a Report with failed checks otherwise)."""
    from pylinkjl.binfmt.lief import open_binary

    tgt = parse_target(target) if isinstance(target, str) else target
    with open_binary(path, arch=None if tgt is None else tgt.arch) as view:
        return verify_view(view, object=object, target=tgt, julia_version=julia_version)
