"""The CPU targets of a fixture: parsed with Julia's rules, serialized with real feature bits.

All the CPU knowledge lives in :mod:`pylinkjl.cpu`; this module only picks what a generated image
needs: per target its name, ``clone_all``/``base(n)`` and the record stored in
``jl_dispatch_target_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fixturegen.spec import FixtureSpec
from pylinkjl.binfmt.targetlist import TargetRecord, encode_target_list
from pylinkjl.cpu import tables
from pylinkjl.cpu.cpuparse import parse_cpu_target, target_data, to_record


@dataclass(frozen=True)
class CpuTarget:
    index: int
    written: str  # the entry as given in the spec
    clone_all: bool  # explicit clone_all (target 0 is always tagged "clone all" in the tables)
    base: int  # base(n); 0 unless given
    record: TargetRecord

    @property
    def tagged(self) -> bool:
        """Whether its clone_idxs record carries the 0x80000000 "clone all" tag."""
        return self.index == 0 or self.clone_all


def resolve_cpu_targets(spec: FixtureSpec) -> tuple[CpuTarget, ...]:
    """Parse ``spec.cpu_targets`` (TargetError / CpuTargetError with Julia's message on bad input)."""
    assert spec.julia_version is not None
    t = tables.load(spec.julia_version, spec.target.arch)
    parsed = parse_cpu_target(spec.cpu_target_string, t)
    out = []
    for written, p in zip(spec.cpu_targets, parsed):
        record = to_record(target_data(p, t), t)
        out.append(CpuTarget(p.index, written, p.clone_all, p.base, record))
    return tuple(out)


def target_ids_bytes(targets: tuple[CpuTarget, ...]) -> bytes:
    """``jl_dispatch_target_ids``: the classic serialized target list (1.9 - 1.13)."""
    return encode_target_list([t.record for t in targets], layout="classic")
