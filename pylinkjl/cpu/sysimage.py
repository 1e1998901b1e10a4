"""The CPU targets of a system image (``sys.so``, a PackageCompiler sysimage, a juliac library).

A system image carries the same ``jl_image_pointers`` / ``jl_dispatch_target_ids`` tables as a package
image (julia-linking.md §3.2, §4.2), so :func:`pylinkjl.images.decode.read_image` reads its target list;
this module keeps only what the CPU matcher needs from it. The Julia version is not stored in a
system image (no cache header): its layout and its targets' feature-word count (the 1.12+ x86 tables have
12 words, 1.9-1.11 eleven) are what can be compared with a cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.cpu.tables import CpuTables
from pylinkjl.errors import InputError


@dataclass(frozen=True)
class SystemImage:
    path: Path
    arch: str  # x86_64, aarch64, ... as the image's header says
    layout: str  # image layout of its tables (1.9, 1.10, 1.11, 1.13; images/layout.py)
    targets: tuple[TargetRecord, ...]
    cpu_target_string: str | None = None  # stored by the 1.13 line

    def fits(self, arch: str, t: CpuTables, julia_version: str | None = None) -> str | None:
        """Why a cache of ``arch`` and ``julia_version`` (read with tables ``t``) cannot have been written by
        this system image's Julia, or None. Julia would reject such a cache by its header already."""
        from pylinkjl.images.layout import layout_of_version

        if arch != self.arch:
            return f"the system image is {self.arch}, the cache {arch}: another Julia install"
        if julia_version is not None and layout_of_version(julia_version) != self.layout:
            return (f"the system image has the Julia {self.layout} layout, the cache was written by Julia "
                    f"{julia_version}: another Julia version")
        words = {r.nwords for r in self.targets}
        if words != {t.nwords}:
            return (f"the system image's targets have {sorted(words)} feature words, {t.label} uses {t.nwords}: "
                    "the system image belongs to another Julia version than this cache")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "arch": self.arch, "layout": self.layout,
                "targets": [r.name for r in self.targets], "cpu_target_string": self.cpu_target_string}


def read_sysimage(path: str | Path) -> SystemImage:
    """Read a system image's target list. Raises InputError when it is not an image with Julia's tables."""
    from pylinkjl.images.kind import read_image_kind  # LIEF-based; imported only here

    p = Path(path)
    if not p.is_file():
        raise InputError(p, "no such file (--sysimage)")
    info, kind = read_image_kind(p)
    if not kind.is_system_image:
        raise InputError(p, f"is a package image, not a system image ({kind.reason})",
                         hint="pass the system image Julia starts with (lib/julia/sys.so, a PackageCompiler "
                              "sysimage or a juliac library)")
    if not info.targets:
        raise InputError(p, "no CPU target list found in this image", hint="is it a Julia system image?")
    return SystemImage(p, info.arch, info.layout, tuple(info.targets), info.cpu_target_string)
