"""A ``JULIA_CPU_TARGET`` for a fleet of CPUs: propose one, and check any string against the fleet.

:func:`check_fleet` is the judge. It builds the targets a string stores in an image the way Julia does
(:mod:`.cpuparse`: ``parse_cmdline``, ``arg_target_data``, ``ensure_jit_target``, serialization with the
official LLVM) and lets each CPU pick one with the same matcher ``inspect`` and ``depot`` use
(:func:`.match.jit_target` + :func:`.match.match_targets`). Per CPU it reports the target it runs and
what that gives up against ``-C native`` on that CPU (the best any string could give it).

:func:`propose_fleet` groups the CPUs by the features ``native`` would give them. By default every
distinct feature set gets its own target, so every CPU runs its ``native`` code and the number of
targets is the smallest that allows it. ``max_targets`` merges groups (their common features) until
the limit is met, always the merge that costs least: vector width lost first, then features lost.
Each proposal is checked with :func:`check_fleet` before it is returned.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.cpu import features as F
from pylinkjl.cpu.cpuparse import TargetSpec, clone_conditions, parse_cpu_target, target_data, to_record
from pylinkjl.cpu.host import HostCpu, named_cpu
from pylinkjl.cpu.match import jit_target, match_targets
from pylinkjl.cpu.tables import CpuTables
from pylinkjl.errors import TargetError


def vector_label(nbytes: int, t: CpuTables) -> str:
    """Julia's ``max_vector_size`` in words: bits on x86 and NEON; on AArch64 the SVE ranks (128 and 256 are
    Julia's ranks for SVE and SVE2, not register widths)."""
    if t.family == "aarch64" and nbytes > 16:
        return "SVE2" if nbytes >= 256 else "SVE"
    return f"{8 * nbytes}-bit"


def native_record(host: HostCpu, t: CpuTables) -> TargetRecord:
    """What ``-C native`` stores on ``host``: the most a target can give that CPU."""
    spec = TargetSpec(0, "native", "native")
    data = target_data(spec, t, host_name=host.name, host_features=host.features | host.unknown, require_host=True)
    return to_record(data, t)


def image_targets(string: str, t: CpuTables, *, build: HostCpu | None = None) -> list[TargetRecord]:
    """The targets an image built with ``JULIA_CPU_TARGET=string`` stores (the first one intersected with
    the build machine when it is given)."""
    specs = parse_cpu_target(string, t)
    if build is None and any(s.name == "native" for s in specs):
        raise TargetError("the string uses `native`: name the build machine (--cpu) to resolve it")
    host_name = build.name if build else None
    host_features = (build.features | build.unknown) if build else None
    datas = [target_data(s, t, host_name=host_name, host_features=host_features,
                         require_host=build is not None and s.index == 0) for s in specs]
    clone_conditions(specs, datas, t)
    return [to_record(d, t) for d in datas]


@dataclass
class CpuChoice:
    """One CPU of the fleet under one string."""

    cpu: str  # as given
    julia_name: str  # Julia's name for it (what `native` becomes)
    chosen: int | None
    chosen_name: str | None
    vector_bits: int  # Julia's max_vector_size of the chosen target, in bits (0: none chosen)
    native_vector_bits: int
    vector: str  # the same in words ("256-bit", "SVE")
    native_vector: str
    nfeatures: int
    native_nfeatures: int
    gives_up: list[str]  # features `native` would use that the chosen target does not
    message: str | None = None  # Julia's rejection when no target fits

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class FleetCheck:
    string: str
    arch: str
    tables: str
    targets: list[str]  # stored names, in order
    choices: list[CpuChoice]
    build_cpu: str | None = None

    @property
    def valid(self) -> bool:
        return all(c.chosen is not None for c in self.choices)

    @property
    def ntargets(self) -> int:
        return len(self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {"string": self.string, "arch": self.arch, "tables": self.tables, "ntargets": self.ntargets,
                "targets": self.targets, "valid": self.valid, "build_cpu": self.build_cpu,
                "cpus": [c.to_dict() for c in self.choices]}


def check_fleet(string: str, cpus: list[str], t: CpuTables, *, build: HostCpu | None = None) -> FleetCheck:
    """Which target of ``string`` each CPU runs, and what it gives up against ``native`` (Julia's matcher)."""
    records = image_targets(string, t, build=build)
    choices = []
    for name in cpus:
        host = named_cpu(name, t)
        jit = jit_target(host.name, host.features, t, assumed=host.unknown)
        result = match_targets(records, jit, t)
        best = native_record(host, t)
        chosen = records[result.best] if result.best is not None else None
        en = chosen.en if chosen is not None else 0
        choices.append(CpuChoice(
            name, host.name, result.best, chosen.name if chosen else None,
            8 * F.max_vector_size(en, t) if chosen else 0, 8 * F.max_vector_size(best.en, t),
            vector_label(F.max_vector_size(en, t), t) if chosen else "-", vector_label(F.max_vector_size(best.en, t), t),
            F.popcount(en), F.popcount(best.en), F.names(best.en & ~en, t) if chosen else F.names(best.en, t),
            result.message))
    return FleetCheck(string, t.arch, t.label, [r.name for r in records], choices,
                      build.name if build else None)


# -- proposing ------------------------------------------------------------------------------------

@dataclass
class _Group:
    members: list[int]  # indexes into the fleet
    en: int


@dataclass
class FleetProposal:
    string: str
    check: FleetCheck
    groups: list[list[str]]  # per target, the CPUs it was made for
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"string": self.string, **self.check.to_dict(), "made_for": self.groups, "notes": self.notes}


def _cost(group_en: int, members: list[int], natives: list[int], t: CpuTables) -> tuple[int, int]:
    width = sum(F.max_vector_size(natives[m], t) - F.max_vector_size(group_en, t) for m in members)
    return width, sum(F.popcount(natives[m] & ~group_en) for m in members)


def _merge(groups: list[_Group], natives: list[int], t: CpuTables, limit: int) -> list[_Group]:
    """Merge the pair that costs least (vector width, then features) until at most ``limit`` groups remain."""
    groups = list(groups)
    while len(groups) > limit:
        best: tuple[tuple[int, int, int], int, int] | None = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                en = F.disable_depends(groups[i].en & groups[j].en, t)
                members = groups[i].members + groups[j].members
                before = _cost(groups[i].en, groups[i].members, natives, t)
                before2 = _cost(groups[j].en, groups[j].members, natives, t)
                after = _cost(en, members, natives, t)
                key = (after[0] - before[0] - before2[0], after[1] - before[1] - before2[1], i * len(groups) + j)
                if best is None or key < best[0]:
                    best = (key, i, j)
        assert best is not None
        _, i, j = best
        merged = _Group(groups[i].members + groups[j].members,
                        F.disable_depends(groups[i].en & groups[j].en, t))
        groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
    return groups


def _generators(en: int, t: CpuTables) -> list[str]:
    """The fewest feature names whose dependencies give ``en`` (on top of ``generic``)."""
    base = F.enable_depends(t.cpus["generic"].features, t) & en if "generic" in t.cpus else 0
    keep = en & ~base
    for b in sorted(F.iter_bits(keep), reverse=True):
        trial = keep & ~(1 << b)
        if F.enable_depends(trial | base, t) & en == en and not F.enable_depends(trial | base, t) & ~en:
            keep = trial
    return F.names(keep, t)


def _spell(group: _Group, fleet_hosts: list[HostCpu], natives: list[int], t: CpuTables) -> str:
    """A target entry that stores exactly ``group.en``: a member's own CPU name when the group is that CPU's
    ``native`` set (the name match then sends it there), else ``generic`` plus features, so that no CPU
    name-matches a target reduced by a merge."""
    for m in group.members:
        name = fleet_hosts[m].name
        if natives[m] == group.en and name in t.cpus and _stored(name, t) == group.en:
            return name
    feats = _generators(group.en, t)
    removed = F.names(_stored("generic", t) & ~group.en, t)  # generic's own features the group lacks (cx16)
    text = ",".join(["generic", *(f"+{f}" for f in feats), *(f"-{f}" for f in removed)])
    if _stored(text, t) != group.en:  # pragma: no cover - a table whose dependencies cannot express the set
        raise TargetError(f"cannot spell the feature set {F.names(group.en, t)} as a target")
    return text


def _stored(entry: str, t: CpuTables) -> int:
    return image_targets(entry, t)[0].en


def _join(entries: list[str], ens: list[int]) -> str:
    """Julia's official pattern for three targets or more: the second clones everything (``clone_all``) and
    later targets that contain its features take it as their base (``base(1)``), so functions a target does
    not clone itself come from the second target, not from the baseline."""
    if len(entries) < 3:
        return ";".join(entries)
    out = [entries[0], entries[1] + ",clone_all"]
    for entry, en in zip(entries[2:], ens[2:]):
        out.append(entry + (",base(1)" if en & ens[1] == ens[1] else ""))
    return ";".join(out)


def propose_fleet(cpus: list[str], t: CpuTables, *, max_targets: int | None = None,
                  build: HostCpu | None = None) -> FleetProposal:
    """A target string for ``cpus`` (all of ``t``'s architecture), checked with :func:`check_fleet`."""
    if not cpus:
        raise TargetError("an empty fleet")
    if max_targets is not None and max_targets < 1:
        raise TargetError("--max-targets must be at least 1")
    hosts = [named_cpu(c, t) for c in cpus]
    natives = [native_record(h, t).en for h in hosts]
    groups: list[_Group] = []
    for i, en in enumerate(natives):
        same = next((g for g in groups if g.en == en), None)
        if same is None:
            groups.append(_Group([i], en))
        else:
            same.members.append(i)
    if max_targets is not None:
        groups = _merge(groups, natives, t, max_targets)
    groups.sort(key=lambda g: (F.max_vector_size(g.en, t), F.popcount(g.en), min(g.members)))
    entries = [_spell(g, hosts, natives, t) for g in groups]
    string = _join(entries, [g.en for g in groups])
    check = check_fleet(string, cpus, t, build=build)
    notes = []
    first = groups[0].en
    notes.append("target 0 is intersected with the build machine's features (arg_target_data): build where all of "
                 f"them are present ({entries[0]}), or give --cpu to check a build machine")
    if any(first & ~g.en for g in groups[1:]):
        notes.append("target 0 is not contained in every other target: not every CPU of the fleet can be the "
                     "build machine")
    if len(groups) > 1 and t.version < (1, 11, 2):
        notes.append(f"Julia {t.version[0]}.{t.version[1]} package images keep only the first target (Julia issue "
                     "54464, fixed in 1.11.2): the other targets help only a system image")
    return FleetProposal(string, check, [[cpus[m] for m in sorted(g.members)] for g in groups], notes)


def split_by_arch(cpus: list[str], version: Any, arch: str | None = None) -> dict[str, list[str]]:
    """Group fleet names by architecture (``x86_64`` / ``aarch64``; ``native`` is this machine's)."""
    from pylinkjl.cpu.cpulist import arch_of_cpu

    if arch is not None:
        return {arch: list(cpus)}
    out: dict[str, list[str]] = {}
    for name in cpus:
        a = arch_of_cpu(name)
        if a == "native":
            m = platform.machine().lower()
            a = "aarch64" if m in ("arm64", "aarch64") else "x86_64"
        out.setdefault(a, []).append(name)
    return out
