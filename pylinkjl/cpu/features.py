"""Feature bitsets the way Julia's ``processor*.cpp`` treats them.

A bitset is an int (bit ``b`` = feature bit ``b``). The functions mirror ``enable_depends``,
``disable_depends``, ``max_vector_size`` and the x86 masking step of ``arg_target_data``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pylinkjl.cpu.tables import CpuTables

# x86: arg_target_data clears these ("LLVM doesn't use and rr disables"); never set in a stored target.
X86_CLEARED = ("rdrnd", "rdseed", "rtm", "xsaveopt")


def names(bits: int, t: CpuTables) -> list[str]:
    """Feature names of ``bits`` in bit order; bits Julia does not define are left out."""
    return [t.feature_names[b] for b in iter_bits(bits) if b in t.feature_names]


def unknown_bits(bits: int, t: CpuTables) -> list[int]:
    """Bits set in ``bits`` that this Julia version does not define."""
    return [b for b in iter_bits(bits) if b not in t.feature_names]


def iter_bits(bits: int) -> Iterable[int]:
    """The set bits, lowest first (one step per set bit, not per bit position)."""
    while bits:
        low = bits & -bits
        yield low.bit_length() - 1
        bits ^= low


def bits_of(feature_names: Iterable[str], t: CpuTables) -> int:
    out = 0
    for n in feature_names:
        out |= 1 << t.feature_bits[n]
    return out


def has(bits: int, name: str, t: CpuTables) -> bool:
    b = t.feature_bits.get(name)
    return b is not None and bool(bits >> b & 1)


def enable_depends(bits: int, t: CpuTables) -> int:
    """Add every feature implied by one that is set (ARM architecture-version rows first)."""
    changed = True
    while changed:
        changed = False
        for feature, second, implied in t.arch_deps:
            if bits >> feature & 1 and (second < 0 or bits >> second & 1) and not bits >> implied & 1:
                bits |= 1 << implied
                changed = True
        for feature, implied in reversed(t.deps):
            if bits >> feature & 1 and not bits >> implied & 1:
                bits |= 1 << implied
                changed = True
    return bits


def disable_depends(bits: int, t: CpuTables) -> int:
    """Drop every feature one of whose prerequisites is missing (``kind=table`` rows only)."""
    changed = True
    while changed:
        changed = False
        for feature, implied in reversed(t.deps):
            if bits >> feature & 1 and not bits >> implied & 1:
                bits &= ~(1 << feature)
                changed = True
    return bits


def cleared_mask(t: CpuTables) -> int:
    """Bits ``arg_target_data`` clears on x86 (plus ``avx512fp16`` on the 1.12.7 backport branch)."""
    if t.family != "x86":
        return 0
    extra = ("avx512fp16",) if (1, 12, 7) <= t.version < (1, 13, 0) else ()
    return bits_of([n for n in X86_CLEARED + extra if n in t.feature_bits], t)


def max_vector_size(bits: int, t: CpuTables) -> int:
    """Julia's ``max_vector_size``: ranks compatible targets by vector register width (bytes)."""
    if t.family == "x86":
        return 64 if has(bits, "avx512f", t) else 32 if has(bits, "avx", t) else 16
    if t.family == "aarch64":
        return 256 if has(bits, "sve2", t) else 128 if has(bits, "sve", t) else 16
    return 16 if has(bits, "neon", t) else 8


def llvm_supported(bits: int, t: CpuTables, llvm_version: int) -> int:
    """Keep the features the build's LLVM knows (serialization drops the others)."""
    for name, minimum in t.feature_llvm.items():
        if minimum > llvm_version:
            bits &= ~(1 << t.feature_bits[name])
    return bits


def popcount(bits: int) -> int:
    return bits.bit_count()
