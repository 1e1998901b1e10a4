"""Reproducibility: link the same inputs twice and say whether the outputs are byte-identical.

A package image should depend only on its inputs: Julia checksums the ``.so`` into the ``.ji``
(``crc_so``), so a link that embeds a time stamp, a random UUID or a temporary path makes every
relink a different file. :func:`compare_outputs` finds the differing byte ranges and names the part
of the file each falls in (through the LIEF facade, when the files parse as images).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pylinkjl.binfmt.files import open_regular
from pylinkjl.errors import InputError
from pylinkjl.images.report import CheckResult

log = logging.getLogger("pylinkjl.images.repro")

_CHUNK = 1 << 16
_MAX_RANGES = 64  # differing ranges reported in full; the rest are only counted
_MERGE_GAP = 16  # ranges closer than this are reported as one


@dataclass(frozen=True)
class DiffRange:
    start: int  # file offset of the first differing byte
    end: int  # one past the last
    region: str = ""  # which part of the file (section, header, ...)

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class ReproReport:
    a: Path
    b: Path
    identical: bool
    size_a: int
    size_b: int
    sha256_a: str
    sha256_b: str
    ranges: list[DiffRange] = field(default_factory=list)
    nranges: int = 0  # all differing ranges, also those not listed
    differing_bytes: int = 0

    def regions(self) -> list[str]:
        """Names of the file parts that differ, most bytes first."""
        count: dict[str, int] = {}
        for r in self.ranges:
            count[r.region] = count.get(r.region, 0) + r.size
        return sorted(count, key=lambda k: -count[k])

    def describe(self) -> str:
        if self.identical:
            return f"byte-identical ({self.size_a} bytes, sha256 {self.sha256_a[:16]})"
        size = "" if self.size_a == self.size_b else f"sizes differ ({self.size_a} vs {self.size_b} bytes); "
        where = ", ".join(self.regions()[:6]) or "?"
        first = self.ranges[0] if self.ranges else None
        at = f"; first at {first.start:#x}" if first else ""
        return (f"{size}{self.differing_bytes} bytes differ in {self.nranges} range(s), in {where}{at}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["a"], d["b"] = str(self.a), str(self.b)
        d["regions"] = self.regions()
        return d


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path, "a linked output") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _diff_ranges(a: Path, b: Path) -> tuple[list[tuple[int, int]], int, int]:
    """Merged (start, end) ranges where the files differ (a tail present in only one file counts),
    how many ranges there are in all, and how many bytes differ."""
    ranges: list[tuple[int, int]] = []
    total = nbytes = 0
    pos = 0
    cur: list[int] | None = None

    def close() -> None:
        nonlocal cur, total, nbytes
        if cur is not None:
            total += 1
            nbytes += cur[1] - cur[0]
            if len(ranges) < _MAX_RANGES:
                ranges.append((cur[0], cur[1]))
            cur = None

    def mark(start: int, end: int) -> None:
        nonlocal cur
        if cur is not None and start - cur[1] <= _MERGE_GAP:
            cur[1] = end
        else:
            close()
            cur = [start, end]

    with open_regular(a, "a linked output") as fa, open_regular(b, "a linked output") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if not ca and not cb:
                break
            if ca != cb:
                n = min(len(ca), len(cb))
                i = 0
                while i < n:
                    if ca[i] != cb[i]:
                        j = i + 1
                        while j < n and ca[j] != cb[j]:
                            j += 1
                        mark(pos + i, pos + j)
                        i = j
                    else:
                        i += 1
                if len(ca) != len(cb):
                    mark(pos + n, pos + max(len(ca), len(cb)))
            pos += max(len(ca), len(cb))
    close()
    return ranges, total, nbytes


def _region_namer(path: Path) -> Callable[[int], str]:
    try:
        from pylinkjl.binfmt.lief import open_binary

        view = open_binary(path)
    except InputError:
        return lambda _offset: ""
    return view.region_at


def compare_outputs(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> ReproReport:
    """Compare two linked outputs byte by byte."""
    pa, pb = Path(a), Path(b)
    for p in (pa, pb):
        if not p.is_file():
            raise InputError(p, "is not a file (was the link run?)")
    sa, sb = _sha256(pa), _sha256(pb)
    size_a, size_b = pa.stat().st_size, pb.stat().st_size
    if sa == sb and size_a == size_b:
        return ReproReport(pa, pb, True, size_a, size_b, sa, sb)
    raw, total, nbytes = _diff_ranges(pa, pb)
    name = _region_namer(pa)
    ranges = [DiffRange(s, e, name(s)) for s, e in raw]
    report = ReproReport(pa, pb, False, size_a, size_b, sa, sb, ranges, total, nbytes)
    log.info("%s vs %s: %s", pa, pb, report.describe())
    return report


def check_reproducible(link: Callable[[Path], None], workdir: str | os.PathLike[str], *,
                       name: str = "image") -> ReproReport:
    """Call ``link(out)`` twice with the same output path (the first result is moved aside in between,
    so that a path embedded in the output, like a Mach-O install name, is the same both times) and
    compare the two results."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    out = work / name
    first = work / f"{name}.first"
    for p in (out, first):
        if p.exists():
            p.unlink()
    link(out)
    if not out.is_file():
        raise InputError(out, "the first link produced no output")
    shutil.move(str(out), str(first))
    link(out)
    if not out.is_file():
        raise InputError(out, "the second link produced no output")
    return compare_outputs(first, out)


def check_reproducible_link(obj: str | Path, *, name: str, target: str | None = None,
                            julia_version: str | None = None) -> CheckResult:
    """The ``reproducible`` verify check: link ``obj`` twice (as ``name``) in a scratch folder and compare."""
    import tempfile

    from pylinkjl.link.api import link_image

    obj = Path(obj)
    with tempfile.TemporaryDirectory(prefix="pylinkjl-repro-") as work:
        def link(out: Path) -> None:
            link_image(obj, out, target=target, julia_version=julia_version)

        res = check_reproducible(link, work, name=name)
        nums = res.to_dict()
    if res.identical:
        return CheckResult("reproducible", "passed", f"two links of {obj.name} are {res.describe()}", nums)
    return CheckResult("reproducible", "failed", f"two links of {obj.name} differ: {res.describe()}", nums)
