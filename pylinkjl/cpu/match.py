"""Which target of an image a Julia session would pick (``match_sysimg_targets``), or why none.

The walk is Julia's, step by step (``src/processor.cpp``, identical 1.9 - 1.13): a target whose
enabled features meet the session's disabled ones is rejected; a CPU-name match beats everything
else; then the larger vector width; then the larger feature count; a tie goes to the later target.
Reasons are worded exactly as Julia 1.10+ words them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pylinkjl.binfmt.targetlist import JL_TARGET_VEC_CALL, TargetRecord
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
               description: str = "", sysimage_target: str | None = None) -> JitTarget:
    """Build the JIT target of a session started with ``-C cpu_target`` on a host with these features.
    ``assumed`` features count as present (they cannot be observed, e.g. from /proc/cpuinfo);
    ``sysimage_target`` is what the 1.13+ keyword ``sysimage`` expands to (the system image's string)."""
    spec: TargetSpec = parse_cpu_target(cpu_target, t, sysimage_target=sysimage_target)[0]
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


# -- the system image decides the JIT target (sysimg_init_cb, 1.9 - 1.13) ------------------------

# features_disable_avx512 / features_disable_avx of processor_x86.cpp: cleared from the JIT target's
# *enabled* set when the chosen system-image target has JL_TARGET_VEC_CALL and a narrower vector width.
_X86_AVX512 = ("avx512f", "avx512dq", "avx512ifma", "avx512pf", "avx512er", "avx512cd", "avx512bw", "avx512vl",
               "avx512vbmi", "avx512vpopcntdq", "avx512vbmi2", "avx512vnni", "avx512bitalg", "avx512vp2intersect",
               "avx512bf16", "avx512fp16")
_X86_AVX = ("avx", "fma", "f16c", "xsave", "avx2", "xop", "fma4", "xsaveopt", "xsavec", "xsaves", "vaes",
            "vpclmulqdq")
CX16_ERROR = ("Your CPU does not support the CX16 instruction, which is required by this version of Julia!  "
              "This is often due to running inside of a virtualized environment.  Please read "
              "https://docs.julialang.org/en/v1/devdocs/sysimg/ for more.")


@dataclass
class SysimageMatch:
    """What ``sysimg_init_cb`` does with a session's JIT target when the system image is loaded."""

    result: MatchResult  # the system image's targets, judged by the same walk as a package image's
    jit: JitTarget  # the JIT target afterwards: what every package image is then matched against
    error: str | None  # Julia's message when it does not start at all
    narrowed: list[str] = field(default_factory=list)  # features dropped from the JIT target's enabled set

    @property
    def starts(self) -> bool:
        return self.error is None


def match_sysimage(image: list[TargetRecord], jit: JitTarget, t: CpuTables) -> SysimageMatch:
    """Julia 1.9 - 1.13 ``sysimg_init_cb``: the x86-64 CX16 rule, then ``match_sysimg_targets`` over the
    system image's targets, then the vector-width rule (a chosen target with ``JL_TARGET_VEC_CALL`` and a
    narrower vector width clears AVX-512 / AVX / NEON from the JIT target's *enabled* features; its
    disabled set is not recomputed, so package-image matching, which tests ``en & jit.dis``, is unchanged).
    ``jl_check_pkgimage_clones`` then matches package images against this JIT target (``jit_targets.front()``)."""
    if t.arch == "x86_64" and "cx16" in t.feature_bits and image:
        allows_no_cx16 = any(not F.has(r.en, "cx16", t) for r in image)
        if not allows_no_cx16 and not F.has(jit.en, "cx16", t):
            empty = MatchResult(None, [], CX16_ERROR)
            return SysimageMatch(empty, jit, CX16_ERROR)
    result = match_targets(image, jit, t)
    if result.best is None:
        return SysimageMatch(result, jit, result.message)
    chosen = image[result.best]
    vreg = result.verdicts[result.best].vector_size
    narrowed = 0
    if vreg != F.max_vector_size(jit.en, t) and chosen.flags & JL_TARGET_VEC_CALL:
        drop: tuple[str, ...] = ()
        if t.family == "x86":
            drop = (_X86_AVX512 if vreg < 64 else ()) + (_X86_AVX if vreg < 32 else ())
        elif t.family == "aarch32":
            drop = ("neon",)
        narrowed = jit.en & F.bits_of([n for n in drop if n in t.feature_bits], t)
    after = JitTarget(jit.name, jit.en & ~narrowed, jit.dis, jit.assumed & ~narrowed, jit.description)
    return SysimageMatch(result, after, None, F.names(narrowed, t))
