"""The CPU a Julia session runs on: this machine, or a CPU named with ``--cpu``.

This machine: on Linux the ``/proc/cpuinfo`` flags are mapped to Julia's feature names
(``cpuinfo-flags-*.tsv``) and the vendor/family/model (x86) or MIDR (AArch64) to Julia's CPU name
(``cpu-detect-*.tsv``), the way Julia's ``_get_host_cpu`` does it from CPUID. Features Linux does
not print are *unknown*, not absent, and are assumed present (README of the tables). archspec
(a maintained CPU-detection library) covers other systems and names the microarchitecture.

Named CPUs: Julia's names and aliases, LLVM names, x86-64 psABI levels (``x86-64-v3``), and
archspec/marketing names (``zen4``, ``graviton3``, ``m2``); the host is that CPU's table set.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.cpu import features as F
from pylinkjl.cpu.tables import CpuTables, family_of
from pylinkjl.errors import TargetError

log = logging.getLogger("pylinkjl.cpu.host")


class WrongArchitecture(TargetError):
    """A CPU (named or this machine) of another architecture than the cache or image."""


@dataclass
class HostCpu:
    name: str  # Julia's name for it (what `native` becomes)
    family: str  # x86 / aarch64 / aarch32
    features: int  # observed (or table) features
    unknown: int = 0  # features that cannot be observed; assumed present
    source: str = ""  # where the description came from
    notes: list[str] = field(default_factory=list)

    def describe(self, t: CpuTables) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "features": F.names(self.features, t),
                "assumed": F.names(self.unknown & ~self.features, t), "notes": list(self.notes)}


# psABI micro-architecture levels (x86-64 System V ABI), in Julia's feature names.
_X86_LEVELS = {
    "x86-64-v2": "cx16,sahf,popcnt,sse3,sse4.1,sse4.2,ssse3",
    "x86-64-v3": "cx16,sahf,popcnt,sse3,sse4.1,sse4.2,ssse3,avx,avx2,bmi,bmi2,f16c,fma,lzcnt,movbe,xsave",
    "x86-64-v4": "cx16,sahf,popcnt,sse3,sse4.1,sse4.2,ssse3,avx,avx2,bmi,bmi2,f16c,fma,lzcnt,movbe,xsave,"
                 "avx512f,avx512bw,avx512cd,avx512dq,avx512vl",
}
# Common names (archspec, marketing, GCC) -> Julia CPU names.
_COMMON = {
    "zen": "znver1", "zen2": "znver2", "zen3": "znver3", "zen4": "znver4", "zen5": "znver5",
    "icelake": "icelake-client", "skylake_avx512": "skylake-avx512", "cascadelake": "cascadelake",
    "sapphirerapids": "sapphirerapids", "cannonlake": "cannonlake", "tigerlake": "tigerlake",
    "rocketlake": "icelake-client", "alderlake": "alderlake", "raptorlake": "alderlake", "meteorlake": "alderlake",
    "core2": "core2", "nehalem": "nehalem", "westmere": "westmere", "sandybridge": "sandybridge",
    "ivybridge": "ivybridge", "haswell": "haswell", "broadwell": "broadwell", "skylake": "skylake",
    "x86_64": "generic", "x86-64-v1": "generic", "x86_64_v2": "x86-64-v2", "x86_64_v3": "x86-64-v3",
    "x86_64_v4": "x86-64-v4",
    "m1": "apple-m1", "m2": "apple-m2", "m3": "apple-m3", "m4": "apple-m4",
    "graviton": "cortex-a72", "graviton2": "neoverse-n1", "graviton3": "neoverse-v1",
    "neoverse_n1": "neoverse-n1", "neoverse_v1": "neoverse-v1", "neoverse_n2": "neoverse-n2",
    "thunderx2": "thunderx2t99", "neoverse-512tvb": "neoverse-v1", "a64fx": "a64fx", "armv8.3-a": "armv8.3_a", "armv8.6-a": "armv8.6_a",
}
_FAMILY_OF_LEVEL = {k: "x86" for k in _X86_LEVELS}


def all_cpu_names(t: CpuTables) -> list[str]:
    return sorted(set(t.cpus) | set(t.aliases) | set(t.llvm_fallback))


def named_cpu(name: str, t: CpuTables) -> HostCpu:
    """A hypothetical host that is exactly CPU ``name`` (Julia's table set, dependencies applied)."""
    key = name.strip().lower()
    if key in ("native", "host"):
        return detect_host(t)
    if key in _X86_LEVELS and t.family == "x86":
        bits = F.bits_of(_X86_LEVELS[key].split(","), t)
        # Julia never calls a host by a psABI level (its name comes from CPUID or LLVM's host name), so the
        # name is one no image target carries: it must not name-match a target spelled `x86-64-v4`.
        return HostCpu(f"({key})", t.family, F.enable_depends(bits, t), source=f"psABI level {key}",
                       notes=[f"{key} is not a Julia CPU name; `native` on such a machine would use its real name"])
    julia = t.normalize(_COMMON.get(key, key))
    julia = t.normalize(_COMMON.get(julia, julia))
    if julia in t.cpus:
        src = f"Julia's CPU table ({t.label})" + (f", {name!r} -> {julia!r}" if julia != name else "")
        return HostCpu(julia, t.family, F.enable_depends(t.cpus[julia].features, t), source=src)
    newer = _from_newer_table(julia, t)
    if newer is not None:
        return newer
    other = _other_family(key, t)
    if other:
        raise WrongArchitecture(f"{name!r} is an {other} CPU, but this is about {t.arch} ({t.label})")
    raise TargetError(f"unknown CPU {name!r} for {t.label}; known names include: "
                      + ", ".join(sorted(t.cpus)[:40]) + ", ... (or x86-64-v2/v3/v4, zen4, graviton3, m2)")


def _from_newer_table(name: str, t: CpuTables) -> HostCpu | None:
    """A CPU this Julia does not know but a later one does (znver4 on 1.9): take the later table's
    features by name; Julia would call such a host by LLVM's name and detect its features."""
    from pylinkjl.cpu.tables import NEWEST_LINE, load

    for minor in range(t.version[1] + 1, NEWEST_LINE[1] + 1):
        try:
            later = load((1, minor, 10**6), t.arch)
        except TargetError:
            continue
        if name in later.cpus:
            wanted = F.names(later.cpus[name].features, later)
            bits = F.bits_of([n for n in wanted if n in t.feature_bits], t)
            return HostCpu(name, t.family, F.enable_depends(bits, t),
                           source=f"Julia 1.{minor}'s CPU table ({t.label} does not know {name!r})",
                           notes=[f"{t.label} does not know {name!r}: `native` would use LLVM's name for it"])
    return None


def _other_family(key: str, t: CpuTables) -> str | None:
    from pylinkjl.cpu.tables import NEWEST_LINE, load  # local: avoid loading other tables unless needed

    for arch, fam in (("x86_64", "x86"), ("aarch64", "aarch64")):
        if fam == t.family:
            continue
        for version in (t.version, (*NEWEST_LINE, 10**6)):  # a CPU this Julia does not know yet (apple-m2 on 1.9)
            try:
                other = load(version, arch)
            except TargetError:
                continue
            cand = other.normalize(_COMMON.get(key, key))
            if cand in other.cpus or (key in _X86_LEVELS and fam == "x86"):
                return arch
    return None


# -- this machine -------------------------------------------------------------------------------

def detect_host(t: CpuTables, *, cpuinfo_path: str = "/proc/cpuinfo") -> HostCpu:
    """Describe this machine as Julia ``t.version`` would see it. Raises TargetError if it is of
    another architecture family than ``t`` or cannot be described."""
    machine = platform.machine().lower()
    try:
        fam = family_of(machine)
    except TargetError:
        raise WrongArchitecture(f"this machine ({machine}) has no Julia CPU tables; name a CPU with --cpu") from None
    if fam != t.family:
        raise WrongArchitecture(f"this machine is {machine}, not {t.arch}; name a {t.arch} CPU with --cpu")
    text = ""
    if sys.platform.startswith("linux"):
        try:
            text = Path(cpuinfo_path).read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            log.debug("cannot read %s: %s", cpuinfo_path, e)
    if text:
        host = host_from_cpuinfo(text, t)
    else:
        host = _host_from_archspec(t)
    _annotate_with_archspec(host)
    return host


def _cpuinfo_records(text: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip().lower()] = value.strip()
    if current:
        records.append(current)
    return [r for r in records if r]


def features_from_flags(flags: set[str], t: CpuTables) -> tuple[int, int]:
    """Map Linux flag words to (observed Julia features, unobservable Julia features)."""
    present = unknown = 0
    for feature, flag in t.cpuinfo_flags.items():
        bit = t.feature_bits.get(feature)
        if bit is None:
            continue
        if not flag or flag == "(none)":
            unknown |= 1 << bit
        elif flag in flags:
            present |= 1 << bit
    if t.family == "aarch64" and "pacg" in flags and "pauth" in t.feature_bits:
        present |= 1 << t.feature_bits["pauth"]
    return present, unknown


def host_from_cpuinfo(text: str, t: CpuTables) -> HostCpu:
    """Describe the CPU in a ``/proc/cpuinfo`` text (all cores; hybrid CPUs are intersected)."""
    recs = [r for r in _cpuinfo_records(text) if "flags" in r or "features" in r]
    if not recs:
        raise TargetError("no CPU flags found in /proc/cpuinfo; name a CPU with --cpu")
    key = "flags" if t.family == "x86" else "features"
    flag_sets = [set(r.get(key, "").split()) for r in recs]
    common = set.intersection(*flag_sets)
    present, unknown = features_from_flags(common, t)
    notes: list[str] = []
    if t.family == "x86":
        name = _x86_name(recs[0], present, t)
        if name == "generic":
            notes.append("Julia does not recognise this CPU model and would use LLVM's host name; "
                         "matching is by features, so the verdict stands")
    elif t.family == "aarch64":
        name, table = _aarch64_cores(recs, t)
        if table is not None:
            present |= table  # Julia ORs in the intersection of the recognised cores' table sets
        else:
            notes.append("a core Julia does not recognise: v8.x architecture bits are not set")
        unknown = 0  # the v8_Xa bits have no hwcap: Julia sets them only from the core table
    else:
        name = "generic"
    present = F.enable_depends(present, t) if t.family != "x86" else present
    model = recs[0].get("model name") or recs[0].get("cpu model") or ""
    src = "/proc/cpuinfo" + (f" ({model})" if model else "")
    return HostCpu(name, t.family, present, unknown & ~present, src, notes)


def _ints(text: str, *, hex_ok: bool) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if re.fullmatch(r"0x[0-9a-f]+-0x[0-9a-f]+", part):
            lo, hi = (int(x, 16) for x in part.split("-"))
            out.update(range(lo, hi + 1))
        elif part.startswith("0x"):
            out.add(int(part, 16))
        elif part.isdigit():
            out.add(int(part, 16 if hex_ok else 10))
    return out


def _x86_name(rec: dict[str, str], features: int, t: CpuTables) -> str:
    """``get_intel_processor_name`` / ``get_amd_processor_name`` as tabulated in cpu-detect-x86.tsv."""
    vendor = rec.get("vendor_id", "")
    try:
        family = int(rec.get("cpu family", "-1"))
        model = int(rec.get("model", "-1"))
    except ValueError:
        return "generic"
    known_vendor = vendor in ("GenuineIntel", "AuthenticAMD")
    for row in t.detect:
        r_vendor, r_family, r_model, condition = row.cols
        if (r_vendor == "other vendor") == known_vendor or (known_vendor and r_vendor != vendor):
            continue
        if r_family == "other":
            if _family_listed(t, vendor, family):
                continue
        elif r_family != "any" and family not in _ints(r_family, hex_ok=False):
            continue
        if r_model == "other":
            if _model_listed(t, vendor, family, model):
                continue
        elif r_model != "any" and model not in _ints(r_model, hex_ok=True):
            continue
        if condition.startswith("CPUID(1).EBX"):
            continue  # brand id: not shown in /proc/cpuinfo; 0 on every CPU since the Pentium 4
        if condition.startswith(("has ", "else has ")) and not F.has(features, condition.split()[-1], t):
            continue
        if condition.startswith("x86_64 build") and t.arch == "i686":
            return "prescott"
        return row.cpu_name
    return "generic"


def _family_listed(t: CpuTables, vendor: str, family: int) -> bool:
    return any(r.cols[0] == vendor and r.cols[1] not in ("any", "other") and family in _ints(r.cols[1], hex_ok=False)
               for r in t.detect)


def _model_listed(t: CpuTables, vendor: str, family: int, model: int) -> bool:
    return any(r.cols[0] == vendor and r.cols[1] not in ("any", "other") and family in _ints(r.cols[1], hex_ok=False)
               and r.cols[2] not in ("any", "other") and model in _ints(r.cols[2], hex_ok=True) for r in t.detect)


def _aarch64_cores(recs: list[dict[str, str]], t: CpuTables) -> tuple[str, int | None]:
    names: list[str] = []
    for r in recs:
        try:
            impl = int(r.get("cpu implementer", "x"), 16)
            part = int(r.get("cpu part", "x"), 16)
            variant = int(r.get("cpu variant", "0"), 16)
        except ValueError:
            return "generic", None
        found = None
        for row in t.detect:
            r_impl, r_part, cond = row.cols
            if int(r_impl, 16) != impl or int(r_part, 16) != part:
                continue
            if cond and not _variant_ok(cond, variant):
                continue
            found = row.cpu_name
            break
        if found is None:
            return "generic", None
        names.append(found)
    table = None
    for n in dict.fromkeys(names):
        feats = t.cpus[n].features if n in t.cpus else 0
        table = feats if table is None else table & feats
    return (names[0] if names else "generic"), table


def _variant_ok(cond: str, variant: int) -> bool:
    m = re.fullmatch(r"variant(==|!=)(\d+)", cond.replace(" ", ""))
    if not m:
        return True
    return (variant == int(m[2])) == (m[1] == "==")


# -- archspec -----------------------------------------------------------------------------------

def _archspec_host() -> object | None:
    try:
        import archspec.cpu  # type: ignore[import-untyped]
        host: object = archspec.cpu.host()
        return host
    except (ImportError, OSError, ValueError, KeyError, AttributeError, RuntimeError) as e:  # exotic systems
        log.debug("archspec could not describe this CPU: %s", e)
        return None


def _annotate_with_archspec(host: HostCpu) -> None:
    a = _archspec_host()
    if a is not None:
        host.notes.append(f"archspec: {getattr(a, 'name', '?')} ({getattr(a, 'vendor', '?')})")


def _host_from_archspec(t: CpuTables) -> HostCpu:
    a = _archspec_host()
    if a is None:
        raise TargetError("cannot detect this machine's CPU; name one with --cpu")
    aname = str(getattr(a, "name", "generic"))
    flags = set(getattr(a, "features", set()))
    if t.family == "aarch64" and sys.platform == "darwin":
        # Julia takes the host from the brand string: M1/M2/M3/M4, by version (tables README)
        chip = {"m1": "apple-m1", "m2": "apple-m2", "m3": "apple-m3", "m4": "apple-m4"}.get(aname, "apple-m1")
        if t.version < (1, 11, 0) or chip not in t.cpus:
            chip = "apple-m1"
        return HostCpu(chip, t.family, F.enable_depends(t.cpus[chip].features, t), source=f"archspec ({aname})")
    present, unknown = features_from_flags(flags, t)
    julia = t.normalize(_COMMON.get(aname, aname))
    name = julia if julia in t.cpus else "generic"
    return HostCpu(name, t.family, present, unknown & ~present, f"archspec ({aname})")
