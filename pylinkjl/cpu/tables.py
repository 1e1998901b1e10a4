"""Load Julia's CPU tables for one (Julia version, architecture).

The TSV files in ``data/`` carry a ``julia_versions`` column of inclusive ranges (``1.9-1.11``,
``1.9.2-1.13``, several ranges separated by ``;``); a table for a version keeps the rows whose range
contains it. Bitsets are Python ints: bit ``b`` is feature bit ``b`` (word ``b // 32``, bit ``b % 32``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Literal

from pylinkjl.errors import TargetError
from pylinkjl.versions import JuliaVersion

Family = Literal["x86", "aarch64", "aarch32"]
Version = tuple[int, int, int]

# Newest and oldest Julia lines the tables describe.
OLDEST: Version = (1, 9, 0)
NEWEST_LINE = (1, 13)
_OPEN = 10**6  # "every patch release"

# Official LLVM of each Julia line (deps/llvm.version); decides which features can be serialized.
OFFICIAL_LLVM = {(1, 9): 140006, (1, 10): 150007, (1, 11): 160006, (1, 12): 180107, (1, 13): 200108}

def parse_version(text: str) -> JuliaVersion:
    """``"1.11"`` -> 1.11.0; ``"1.13.0-rc1"`` keeps its pre-release tag. Raises TargetError."""
    return JuliaVersion.parse(text)


def family_of(arch: str) -> Family:
    """Map a Julia ``Sys.ARCH`` / ``.ji`` arch string to the table family."""
    a = arch.lower()
    if a in ("x86_64", "amd64", "x64", "i686", "i386", "i586", "x86"):
        return "x86"
    if a in ("aarch64", "arm64"):
        return "aarch64"
    if a.startswith("armv") or a in ("arm", "aarch32"):
        return "aarch32"
    raise TargetError(f"no CPU tables for architecture {arch!r} (known: x86_64, i686, aarch64, armv7l)")


def _bound(text: str, upper: bool) -> Version:
    parts = [int(p) for p in text.split(".")]
    if len(parts) == 2:
        return (parts[0], parts[1], _OPEN if upper else 0)
    return (parts[0], parts[1], parts[2])


def _in_ranges(spec: str, v: Version) -> bool:
    for rng in spec.split(";"):
        lo, _, hi = rng.strip().partition("-")
        if _bound(lo, False) <= v <= _bound(hi or lo, True):
            return True
    return False


@cache
def _rows(filename: str) -> tuple[dict[str, str], ...]:
    text = resources.files(__package__).joinpath("data").joinpath(filename).read_text(encoding="utf-8")
    return tuple(csv.DictReader(text.splitlines(), delimiter="\t"))


@dataclass(frozen=True)
class CpuEntry:
    name: str
    features: int  # the CPU's table set (inherited features included; dependencies not applied)
    aliases: tuple[str, ...] = ()
    base: str = ""


@dataclass(frozen=True)
class DetectRow:
    """One row of ``cpu-detect-*.tsv`` (kept as text; :mod:`.host` interprets it)."""

    cols: tuple[str, ...]
    cpu_name: str


@dataclass
class CpuTables:
    """Everything Julia knows about CPUs of one architecture family, for one version."""

    version: Version
    family: Family
    arch: str  # the ISA as Julia spells Sys.ARCH: x86_64, i686, aarch64, armv7l
    nwords: int
    feature_bits: dict[str, int]
    feature_llvm: dict[str, int]
    cpus: dict[str, CpuEntry]
    aliases: dict[str, str]  # normalize_cpu_name
    deps: list[tuple[int, int]]  # (feature, implied) pairs, Feature::deps[] order
    arch_deps: list[tuple[int, int, int]]  # ARM enable-only (feature, second_feature_or_-1, implied)
    llvm_fallback: dict[str, tuple[int, str]]
    detect: list[DetectRow]
    cpuinfo_flags: dict[str, str]  # Julia feature -> Linux /proc/cpuinfo flag ('' = not printed)
    feature_names: dict[int, str] = field(default_factory=dict)
    mask: int = 0

    def __post_init__(self) -> None:
        self.feature_names = {b: n for n, b in self.feature_bits.items()}
        self.mask = 0
        for b in self.feature_bits.values():
            self.mask |= 1 << b

    @property
    def label(self) -> str:
        v = self.version
        patch = "" if v[2] >= _OPEN else f".{v[2]}"
        return f"Julia {v[0]}.{v[1]}{patch} {self.arch}"

    def bit(self, name: str) -> int:
        return self.feature_bits[name]

    def normalize(self, name: str) -> str:
        return self.aliases.get(name, name)


def _table_version(version: JuliaVersion | Version | str, family: Family) -> Version:
    if isinstance(version, str):
        version = parse_version(version)
    if isinstance(version, JuliaVersion):
        v = (version.major, version.minor, version.patch)
        if version.prerelease:
            if v[:2] == (1, 13) and v[2] == 0 and family == "x86":
                v = (1, 12, 6)  # 1.13.0 pre-releases still had the 1.12.0-1.12.6 x86 tables (README)
            elif v[2] == 0:
                v = (v[0], v[1], 0)
    else:
        v = version
    if v < OLDEST:
        raise TargetError(f"Julia {v[0]}.{v[1]} has no package images; the CPU tables start at 1.9")
    if v[:2] > NEWEST_LINE:
        raise TargetError(
            f"no CPU tables for Julia {v[0]}.{v[1]}: Julia 1.14 moved CPU handling to the external "
            "cpufeatures library; the tables cover 1.9 - 1.13")
    return v


def load(version: JuliaVersion | Version | str, arch: str) -> CpuTables:
    """The tables for ``version`` (a version string, JuliaVersion or triple) on ``arch``."""
    family = family_of(arch)
    return _load(_table_version(version, family), family, _canonical_arch(arch))


def _canonical_arch(arch: str) -> str:
    a = arch.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686", "i586": "i686",
            "x86": "i686"}.get(a, a)


@lru_cache(maxsize=64)
def _load(v: Version, family: Family, arch: str) -> CpuTables:
    def rows(filename: str) -> list[dict[str, str]]:
        return [r for r in _rows(filename) if _in_ranges(r["julia_versions"], v)]

    feature_bits: dict[str, int] = {}
    feature_llvm: dict[str, int] = {}
    for r in rows(f"features-{family}.tsv"):
        feature_bits[r["name"]] = int(r["bit"])
        feature_llvm[r["name"]] = int(r["min_llvm_version"])
    if arch == "i686":
        # On i686 builds cx16 and sahf have min LLVM "never" (README, generic and native)
        feature_llvm["cx16"] = feature_llvm["sahf"] = 2**32 - 1

    nwords = next(int(r["nwords"]) for r in rows("feature-words.tsv") if r["arch"] == family)

    def bits_of(names: str) -> int:
        out = 0
        for n in filter(None, names.split(",")):
            out |= 1 << feature_bits[n]
        return out

    cpus: dict[str, CpuEntry] = {}
    aliases: dict[str, str] = {}
    if family != "aarch32":
        for r in rows(f"cpus-{family}.tsv"):
            al = tuple(filter(None, r["aliases"].split(",")))
            cpus[r["cpu_name"]] = CpuEntry(r["cpu_name"], bits_of(r["features"]), al, r["base_cpu_or_empty"])
            for a in al:
                aliases[a] = r["cpu_name"]
    else:
        # AArch32 'generic' depends on build flags; the official armv7-a build has {v7, aclass}.
        cpus["generic"] = CpuEntry("generic", 0)
    if family == "x86" and arch == "i686":
        aliases.pop("x86-64", None)
        aliases.pop("x86_64", None)
        aliases["pentium4"] = aliases["i686"] = "generic"

    deps: list[tuple[int, int]] = []
    arch_deps: list[tuple[int, int, int]] = []
    for r in rows("feature-deps.tsv"):
        if r["arch"] != family:
            continue
        if r["kind"] == "table":
            for implied in r["implies"].split(","):
                deps.append((feature_bits[r["feature"]], feature_bits[implied]))
        else:
            first, _, second = r["feature"].partition("+")
            f2 = feature_bits[second] if second else -1
            for implied in r["implies"].split(","):
                if implied in feature_bits and first in feature_bits:
                    arch_deps.append((feature_bits[first], f2, feature_bits[implied]))

    fallback = {r["cpu_name"]: (int(r["cpu_min_llvm_version"]), r["llvm_fallback_cpu"])
                for r in rows("cpus-llvm-fallback.tsv") if r["arch"] == family}
    detect_file = {"x86": "cpu-detect-x86.tsv", "aarch64": "cpu-detect-aarch64.tsv"}.get(family)
    detect = []
    if detect_file:
        for r in rows(detect_file):
            cols = tuple(v for k, v in r.items() if k not in ("julia_versions", "cpu_name"))
            detect.append(DetectRow(cols, r["cpu_name"]))
    flags = {r["julia_feature"]: r["linux_flag"] for r in rows(f"cpuinfo-flags-{family}.tsv")}
    return CpuTables(v, family, arch, nwords, feature_bits, feature_llvm, cpus, aliases, deps, arch_deps,
                     fallback, detect, flags)


def official_llvm(version: Version) -> int:
    """LLVM version (major*10000+minor*100+patch) the official binaries of that line use."""
    return OFFICIAL_LLVM.get((version[0], version[1]), max(OFFICIAL_LLVM.values()))
