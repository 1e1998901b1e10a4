"""Which target of an image a Julia session would pick (``match_sysimg_targets``), or why none.

The walk is Julia's, step by step (``src/processor.cpp``, identical 1.9 - 1.13): a target whose
enabled features meet the session's disabled ones is rejected; a CPU-name match beats everything
else; then the larger vector width; then the larger feature count; a tie goes to the later target.
Reasons are worded exactly as Julia 1.10+ words them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.cpu import features as F
from pylinkjl.cpu.cpuparse import TargetData, TargetSpec, parse_cpu_target, target_data
from pylinkjl.cpu.tables import CpuTables

REJECT_DISABLED = "Rejecting this target due to use of runtime-disabled features"
REJECT_NAME = "Rejecting this target since another target has a cpu name match"
REJECT_VECTOR = "Rejecting this target since another target has a larger vector register size"
UPDATE_VECTOR = "Updating best match to this target due to larger vector register size"
REJECT_FEATURES = "Rejecting this target since another target has a larger feature set"
UPDATE = "Updating best match to this target"


@dataclass
class JitTarget:
    """The session's JIT target: what the running Julia enables (``en``) and rules out (``dis``)."""

    name: str
    en: int
    dis: int
    assumed: int = 0  # features we could not observe on the host and assume present
    description: str = ""


def jit_target(host_name: str, host_features: int, t: CpuTables, *, assumed: int = 0, cpu_target: str = "native",
               description: str = "") -> JitTarget:
    """Build the JIT target of a session started with ``-C cpu_target`` on a host with these features.
    ``assumed`` features count as present (they cannot be observed, e.g. from /proc/cpuinfo)."""
    spec: TargetSpec = parse_cpu_target(cpu_target, t)[0]
    data: TargetData = target_data(spec, t, host_name=host_name, host_features=host_features | assumed,
                                   require_host=True)
    return JitTarget(data.name, data.en, data.dis, assumed & data.en, description or host_name)


@dataclass
class TargetVerdict:
    index: int
    name: str  # as stored in the image
    normalized: str  # after Julia's normalize_cpu_name
    reason: str  # Julia's wording
    compatible: bool  # passed the feature check (may still lose to a better target)
    missing: list[str] = field(default_factory=list)  # enabled in the image, disabled in the session
    assumed: list[str] = field(default_factory=list)  # used by the image, only assumed on the host
    vector_size: int = 0
    nfeatures: int = 0


@dataclass
class MatchResult:
    best: int | None
    verdicts: list[TargetVerdict]
    message: str | None  # Julia's rejection message when nothing matched

    @property
    def ok(self) -> bool:
        return self.best is not None


def match_targets(image: list[TargetRecord], jit: JitTarget, t: CpuTables) -> MatchResult:
    best: int | None = None
    vreg_size = 0
    feature_size = 0
    match_name = False
    reasons: list[str] = []
    verdicts: list[TargetVerdict] = []
    for i, rec in enumerate(image):
        norm = t.normalize(rec.name)
        clash = rec.en & jit.dis
        v = TargetVerdict(i, rec.name, norm, "", clash == 0, F.names(clash, t), F.names(rec.en & jit.assumed, t),
                          F.max_vector_size(rec.en, t), F.popcount(rec.en))
        verdicts.append(v)
        if clash:
            reasons.append(REJECT_DISABLED)
            continue
        if norm == jit.name:
            if not match_name:
                match_name, vreg_size, feature_size = True, 0, 0
        elif match_name:
            reasons.append(REJECT_NAME)
            continue
        if vreg_size > v.vector_size:
            reasons.append(REJECT_VECTOR)
            continue
        if vreg_size < v.vector_size:
            best, vreg_size, feature_size = i, v.vector_size, v.nfeatures
            reasons.append(UPDATE_VECTOR)
            continue
        if v.nfeatures < feature_size:
            reasons.append(REJECT_FEATURES)
            continue
        best, feature_size = i, v.nfeatures
        reasons.append(UPDATE)
    for v, r in zip(verdicts, reasons):
        v.reason = r
    message = None
    if best is None:
        message = rejection_message(verdicts, t)
    return MatchResult(best, verdicts, message)


def rejection_message(verdicts: list[TargetVerdict], t: CpuTables) -> str:
    """Julia's error text when no target fits (1.9 had one line and no per-target reasons)."""
    if t.version < (1, 10, 0):
        return "Unable to find compatible target in system image."
    lines = ["Unable to find compatible target in cached code image."]
    lines += [f"Target {v.index} ({v.normalized}): {v.reason}" for v in verdicts]
    return "\n".join(lines)
