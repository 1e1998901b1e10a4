"""Byte-level codec of Julia's serialized CPU target list.

The same bytes appear as ``jl_dispatch_target_ids`` in an image and as the clone-targets block of a
``.ji`` file (docs/julia-linking.md §3.6). This module knows the two layouts but nothing about feature
names; ``pylinkjl.cpu`` maps bits to names per Julia version and architecture.

Layout "classic" (1.9 - 1.13), all little-endian::

    uint32 ntargets; repeat: uint32 flags; uint32 nfeature; uint32 en[nfeature]; uint32 dis[nfeature];
                             uint32 name_len; name; uint32 ext_len; ext

Layout "cpufeatures" (master)::

    uint32 ntargets; repeat: uint32 flags; uint32 base; uint32 nwords; uint64 en[nwords]; uint64 dis[nwords];
                             uint32 name_len; name; uint32 ext_len; ext
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from pylinkjl.errors import InputError

Layout = Literal["classic", "cpufeatures"]

# JL_TARGET_* flags (src/processor.h, 1.9 - 1.13)
JL_TARGET_VEC_CALL = 1 << 0
JL_TARGET_CLONE_ALL = 1 << 1
JL_TARGET_UNKNOWN_NAME = 1 << 5
# cpufeatures flags (master)
TF_CLONE_ALL = 1 << 1
TF_UNKNOWN_NAME = 1 << 5
TF_OPTSIZE = 1 << 6
TF_MINSIZE = 1 << 7

# Plausibility caps: a length field must never make us allocate or loop without bound.
_MAX_TARGETS = 1024
_MAX_WORDS = 64
_MAX_STRING = 1 << 16


@dataclass(frozen=True)
class TargetRecord:
    """One serialized target. ``en``/``dis`` hold the feature bitset as one int (bit b = feature bit b)."""

    name: str
    flags: int
    en: int
    dis: int
    nwords: int  # words as stored (uint32 words for classic, uint64 words for cpufeatures)
    ext_features: str = ""
    base: int | None = None  # only stored by the cpufeatures layout

    def enabled_bits(self) -> list[int]:
        return [b for b in range(self.en.bit_length()) if self.en >> b & 1]

    def disabled_bits(self) -> list[int]:
        return [b for b in range(self.dis.bit_length()) if self.dis >> b & 1]


class _Reader:
    def __init__(self, data: bytes, source: str, base_offset: int) -> None:
        self.data = data
        self.pos = 0
        self.source = source
        self.base_offset = base_offset

    def fail(self, problem: str) -> InputError:
        return InputError(self.source, f"target list: {problem}", offset=self.base_offset + self.pos)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"needs {n} more bytes but only {len(self.data) - self.pos} remain")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def words(self, count: int, size: int) -> int:
        raw = self.take(count * size)
        return int.from_bytes(raw, "little")

    def string(self, what: str) -> str:
        n = self.u32()
        if n > _MAX_STRING:
            raise self.fail(f"{what} length {n} is implausible")
        return self.take(n).decode("utf-8", errors="replace")


def decode_target_list(data: bytes, *, layout: Layout = "classic", source: str = "<bytes>",
                       base_offset: int = 0) -> tuple[list[TargetRecord], int]:
    """Decode the list at the start of ``data``. Returns the targets and the number of bytes used.
    Raises InputError (naming ``source`` and the offset) on malformed input."""
    r = _Reader(data, source, base_offset)
    ntargets = r.u32()
    if ntargets == 0 or ntargets > _MAX_TARGETS:
        r.pos -= 4
        raise r.fail(f"target count {ntargets} is implausible")
    out: list[TargetRecord] = []
    for _ in range(ntargets):
        flags = r.u32()
        base: int | None = None
        if layout == "cpufeatures":
            base = r.u32()
        nwords = r.u32()
        if nwords > _MAX_WORDS:
            r.pos -= 4
            raise r.fail(f"feature word count {nwords} is implausible")
        size = 8 if layout == "cpufeatures" else 4
        en = r.words(nwords, size)
        dis = r.words(nwords, size)
        name = r.string("CPU name")
        ext = r.string("extra features")
        out.append(TargetRecord(name, flags, en, dis, nwords, ext, base))
    return out, r.pos


def encode_target_list(targets: list[TargetRecord], *, layout: Layout = "classic") -> bytes:
    """Inverse of :func:`decode_target_list` (used by the fixture generator and by tests)."""
    size = 8 if layout == "cpufeatures" else 4
    parts = [struct.pack("<I", len(targets))]
    for t in targets:
        parts.append(struct.pack("<I", t.flags))
        if layout == "cpufeatures":
            parts.append(struct.pack("<I", t.base or 0))
        parts.append(struct.pack("<I", t.nwords))
        parts.append(t.en.to_bytes(t.nwords * size, "little"))
        parts.append(t.dis.to_bytes(t.nwords * size, "little"))
        for text in (t.name, t.ext_features):
            raw = text.encode()
            parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)
