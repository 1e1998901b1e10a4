"""``JULIA_CPU_TARGET`` / ``-C`` strings: parse them with Julia's rules and compute each target.

``parse_cpu_target`` follows ``parse_cmdline`` in ``src/processor.cpp`` (1.9 - 1.13), including its
error messages; ``target_data`` follows ``arg_target_data``; ``clone_conditions`` follows
``ensure_jit_target``. Errors raise :class:`CpuTargetError` (a TargetError, exit code 2).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

from pylinkjl.binfmt.targetlist import JL_TARGET_UNKNOWN_NAME, TargetRecord
from pylinkjl.cpu import features as F
from pylinkjl.cpu.tables import CpuTables, load, official_llvm
from pylinkjl.errors import TargetError


class CpuTargetError(TargetError):
    """An invalid CPU target string; the message is Julia's own wording."""


@dataclass
class TargetSpec:
    """One ``;``-separated entry of a CPU target string, as parsed."""

    index: int
    written: str  # the CPU name as written
    name: str  # after normalize_cpu_name
    en: int = 0  # explicitly enabled known features
    dis: int = 0  # explicitly disabled known features
    ext_features: str = ""  # features Julia does not know, passed to LLVM ("+foo,-bar")
    clone_all: bool = False
    no_clone_all: bool = False  # "-clone_all"
    base: int = 0
    opt_size: bool = False
    min_size: bool = False
    help: bool = False


def _clone_base(token: str) -> int | None:
    """``base(n)`` -> n; None when the token is not a well-formed base()."""
    if not token.startswith("base(") or len(token) <= 5 or not token.endswith(")"):
        return None
    digits = token[5:-1]
    if not digits.isdigit() or not digits.isascii():
        return None
    return int(digits)


def parse_cpu_target(text: str, t: CpuTables, *, sysimage_target: str | None = None) -> list[TargetSpec]:
    """Parse ``text`` like Julia's ``parse_cmdline``. ``sysimage_target`` expands the 1.13+ keyword
    ``sysimage`` (the string stored in the system image); without it the keyword stays a name."""
    if t.version >= (1, 13, 0) and sysimage_target is not None and (
            text == "sysimage" or text.startswith("sysimage;")):
        text = sysimage_target + text[len("sysimage"):]
    res: list[TargetSpec] = []
    for raw_target in text.split(";"):
        tokens = raw_target.split(",")
        if tokens[0] == "":
            raise CpuTargetError("Invalid target option: empty CPU name")
        written = tokens[0]
        spec = TargetSpec(len(res), written, t.normalize(written))
        if written == "help":
            spec.name, spec.help = "native", True
        for token in tokens[1:]:
            _apply_feature(spec, token, res, t)
        res.append(spec)
    return res


def _apply_feature(spec: TargetSpec, token: str, previous: list[TargetSpec], t: CpuTables) -> None:
    disable = token.startswith("-")
    fname = token[1:] if token[:1] in "+-" and token else token
    if fname == "clone_all":
        spec.clone_all, spec.no_clone_all = not disable, disable
    elif fname == "opt_size":
        if disable:
            raise CpuTargetError("Invalid target option: disabled opt_size.")
        if spec.min_size:
            raise CpuTargetError("Conflicting target option: both opt_size and min_size are specified.")
        spec.opt_size = True
    elif fname == "min_size":
        if disable:
            raise CpuTargetError("Invalid target option: disabled min_size.")
        if spec.opt_size:
            raise CpuTargetError("Conflicting target option: both opt_size and min_size are specified.")
        spec.min_size = True
    elif (base := _clone_base(fname)) is not None:
        if disable:
            raise CpuTargetError("Invalid target option: disabled base index.")
        if base >= len(previous):
            raise CpuTargetError("Invalid target option: base index must refer to a previous target.")
        if previous[base].no_clone_all or not previous[base].clone_all:
            raise CpuTargetError("Invalid target option: base target must be clone_all.")
        spec.base = base
    elif fname == "help":
        spec.help = True
    elif fname in t.feature_bits:
        bit = 1 << t.feature_bits[fname]
        if disable:
            spec.dis |= bit
        else:
            spec.en |= bit
    else:
        sep = "," if spec.ext_features else ""
        spec.ext_features += f"{sep}{'-' if disable else '+'}{fname}"


@dataclass
class TargetData:
    """A target after ``arg_target_data``: the bits Julia compiles for (and would store)."""

    name: str
    en: int
    dis: int
    known_name: bool
    ext_features: str = ""
    flags: int = 0  # JL_TARGET_* clone flags (ensure_jit_target)
    base: int = 0
    notes: list[str] = field(default_factory=list)


def target_data(spec: TargetSpec, t: CpuTables, *, host_name: str | None = None, host_features: int | None = None,
                require_host: bool = False) -> TargetData:
    """``arg_target_data``: start from the CPU's table set (or the host's for ``native``), add explicit
    features and dependencies, clear x86's four, remove explicit ``-features``, AND with the host
    when ``require_host``, drop features whose prerequisites are gone, then fill ``dis``."""
    name = spec.name
    notes: list[str] = []
    cpu_features: int | None = None
    if name == "native":
        if host_features is None or host_name is None:
            raise TargetError("'native' needs a host CPU (detected, or named with --cpu)")
        name, cpu_features = host_name, host_features
    elif name in t.cpus:
        cpu_features = t.cpus[name].features
    else:
        notes.append(f"{name!r} is not in Julia's CPU table: stored with JL_TARGET_UNKNOWN_NAME and only the "
                     "features listed explicitly; LLVM still receives the name")
    en = spec.en | (cpu_features or 0)
    en = F.enable_depends(en, t)
    en &= ~F.cleared_mask(t)
    en &= ~spec.dis
    if require_host:
        if host_features is None:
            raise TargetError("the first target is intersected with the host's features, but no host was given")
        en &= host_features
    en = F.disable_depends(en, t)
    dis = (t.mask & ~en) if cpu_features is not None else spec.dis
    return TargetData(name, en, dis, cpu_features is not None, spec.ext_features, base=spec.base, notes=notes)


# JL_TARGET_* clone flags (src/processor.h)
CLONE_ALL, CLONE_MATH, CLONE_LOOP, CLONE_SIMD = 1 << 1, 1 << 2, 1 << 3, 1 << 4
OPTSIZE, MINSIZE, CLONE_CPU, CLONE_FLOAT16, CLONE_BFLOAT16 = 1 << 6, 1 << 7, 1 << 8, 1 << 9, 1 << 10

_CLONE_MATH = {"x86": ("fma", "fma4"), "aarch64": ("fullfp16", "fp16fml"), "aarch32": ("vfp4",)}
_CLONE_SIMD = {
    "x86": ("sse3", "ssse3", "sse4.1", "sse4.2", "avx", "avx2", "sse4a", "avx512f", "avx512dq", "avx512ifma",
            "avx512pf", "avx512er", "avx512cd", "avx512bw", "avx512vl", "avx512vbmi", "avx512vpopcntdq"),
    "aarch64": ("sve", "sve2"),
    "aarch32": ("neon",),
}


def clone_conditions(specs: list[TargetSpec], datas: list[TargetData], t: CpuTables) -> None:
    """Fill ``flags`` like ``ensure_jit_target``: which functions each non-first target clones."""
    for spec, data in zip(specs, datas):
        data.flags |= (CLONE_ALL if spec.clone_all else 0) | (OPTSIZE if spec.opt_size else 0)
        data.flags |= MINSIZE if spec.min_size else 0
    for i in range(1, len(datas)):
        d, spec = datas[i], specs[i]
        if d.flags & CLONE_ALL:
            continue
        d.flags |= CLONE_LOOP
        if t.version >= (1, 10, 0):
            d.flags |= CLONE_CPU
        base = datas[spec.base].en
        if t.family == "x86" and not spec.no_clone_all and d.name in ("knl", "knm") and \
                datas[spec.base].name != d.name:
            d.flags |= CLONE_ALL
            continue
        if any(F.has(d.en, f, t) and not F.has(base, f, t) for f in _CLONE_MATH[t.family]):
            d.flags |= CLONE_MATH
        if any(F.has(d.en, f, t) and not F.has(base, f, t) for f in _CLONE_SIMD[t.family]):
            d.flags |= CLONE_SIMD
        if t.version >= (1, 10, 0) and F.has(d.en, "avx512fp16", t) and not F.has(base, "avx512fp16", t):
            d.flags |= CLONE_FLOAT16
        if t.version >= (1, 11, 0) and F.has(d.en, "avx512bf16", t) and not F.has(base, "avx512bf16", t):
            d.flags |= CLONE_BFLOAT16


def to_record(data: TargetData, t: CpuTables, *, llvm_version: int | None = None, vec_call: bool = False) -> TargetRecord:
    """What the image would store for ``data`` (serialization drops features the LLVM lacks)."""
    llvm = official_llvm(t.version) if llvm_version is None else llvm_version
    en = F.disable_depends(F.llvm_supported(data.en, t, llvm), t)
    dis = F.llvm_supported(data.dis, t, llvm)
    flags = (1 if vec_call else 0) | (0 if data.known_name else JL_TARGET_UNKNOWN_NAME)
    return TargetRecord(data.name, flags, en, dis, t.nwords, data.ext_features)


def llvm_cpu_name(name: str, t: CpuTables, llvm_version: int | None = None) -> str:
    """The CPU name Julia hands to LLVM (fallbacks for older LLVMs; ``generic`` spelled per ISA)."""
    llvm = official_llvm(t.version) if llvm_version is None else llvm_version
    seen = set()
    while name in t.llvm_fallback and name not in seen:
        seen.add(name)
        minimum, fallback = t.llvm_fallback[name]
        if minimum <= llvm or not fallback:
            break
        name = fallback
    if name == "generic" and t.family == "x86":
        return "pentium4" if t.arch == "i686" else "x86-64"
    return name


def _clone_words(flags: int, index: int) -> str:
    if index == 0:
        return "the default code: every function"
    if flags & CLONE_ALL:
        return "every function (clone_all)"
    parts = ["functions with loops"]
    if flags & CLONE_CPU:
        parts.append("CPU-specific intrinsics")
    if flags & CLONE_MATH:
        parts.append("fma math")
    if flags & CLONE_SIMD:
        parts.append("SIMD code")
    if flags & CLONE_FLOAT16:
        parts.append("Float16")
    if flags & CLONE_BFLOAT16:
        parts.append("BFloat16")
    return ", ".join(parts) + "; the rest comes from its base target"


def explain_cpu_target(text: str, t: CpuTables, *, host_name: str | None = None, host_features: int | None = None,
                       sysimage_target: str | None = None) -> dict[str, Any]:
    """Parse ``text``, compute every target the way Julia would, and say what each one buys over its
    base. Without a host, ``native`` cannot be resolved and the first target is not intersected
    with the build machine."""
    specs = parse_cpu_target(text, t, sysimage_target=sysimage_target)
    have_host = host_features is not None and host_name is not None
    datas = [target_data(s, t, host_name=host_name, host_features=host_features,
                         require_host=have_host and s.index == 0)
             if (s.name != "native" or have_host) else TargetData("native", 0, 0, True, notes=["needs a host CPU"])
             for s in specs]
    clone_conditions(specs, datas, t)
    llvm = official_llvm(t.version)
    out_targets: list[dict[str, Any]] = []
    for spec, data in zip(specs, datas):
        rec = to_record(data, t)
        base_en = datas[spec.base].en if spec.index else 0
        out_targets.append({
            "index": spec.index, "written": spec.written, "name": data.name, "known": data.known_name,
            "llvm_cpu": llvm_cpu_name(data.name, t, llvm),
            "base": spec.base if spec.index else None, "clone_all": bool(data.flags & CLONE_ALL),
            "opt_size": spec.opt_size, "min_size": spec.min_size,
            "features": F.names(rec.en, t), "nfeatures": F.popcount(rec.en),
            "adds": F.names(rec.en & ~base_en, t) if spec.index else [],
            "removed": F.names(spec.dis, t), "ext_features": spec.ext_features,
            "vector_bits": 8 * F.max_vector_size(rec.en, t), "clones": _clone_words(data.flags, spec.index),
            "notes": list(data.notes),
        })
    notes = []
    if len(specs) > 1 or any(s.clone_all or s.opt_size or s.min_size for s in specs):
        notes.append("several targets, clone_all, opt_size and min_size are accepted only when writing an image "
                     "(--output-*): as JULIA_CPU_TARGET for precompilation, or for a system image")
    if len(specs) > 1 and t.version < (1, 11, 2):
        notes.append(f"Julia {t.version[0]}.{t.version[1]} package images keep only the first target "
                     "(Julia issue 54464, fixed in 1.12 and backported to 1.11.2)")
    if not have_host:
        notes.append("the first target is intersected with the build machine's features at build time; "
                     "give --cpu to model that machine")
    return {"string": text, "tables": t.label, "llvm": llvm, "targets": out_targets, "notes": notes}


def guess_arch(text: str, version: str) -> str:
    """The architecture whose CPU table knows the string's names (else this machine's)."""
    names = {tok.split(",")[0] for tok in text.split(";")} - {"", "generic", "native", "help", "sysimage"}
    for arch in ("x86_64", "aarch64"):
        t = load(version, arch)
        if names and all(t.normalize(n) in t.cpus or n.startswith("x86-64") for n in names if n):
            return arch
    machine = platform.machine().lower()
    return "aarch64" if machine in ("arm64", "aarch64") else "x86_64"
