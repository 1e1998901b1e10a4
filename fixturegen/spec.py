"""What a generated pkgimage-shaped archive should look like: :class:`FixtureSpec` and its defaults.

A *layout* is the shape of Julia's ``jl_dump_native`` output, which changed three times
(docs/julia-linking.md §3.1 - §3.4):

- ``"1.9"``:  ``text.o`` + ``data.o``; exported ``jl_sysimg_*`` / ``jl_dispatch_*`` tables with 32-bit offsets.
- ``"1.10"``: ``text#<i>.o`` shards + ``metadata.o`` + ``sysimg.o``; ``jl_image_pointers`` (5 entries),
  9-pointer shard tables with 32-bit offsets; ``jl_RTLD_DEFAULT_handle_pointer`` up to 1.10.3, the
  ``get_jl_RTLD_DEFAULT_handle_addr`` function from 1.10.4 (PR #54572, with dllimport data on Windows).
- ``"1.11"``: Julia 1.11 and 1.12: 8-pointer shard tables with absolute pointers,
  ``get_jl_RTLD_DEFAULT_handle_addr``.
- ``"1.13"``: the release-1.13 line: 6 image pointers (``jl_cpu_target_string``),
  ``jl_system_image_checksum`` and ``jl_image_unpack``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pylinkjl.errors import TargetError
from pylinkjl.target import Target, parse_target
from pylinkjl.versions import DLLIMPORT_AND_RTLD_GETTER_SINCE, JuliaVersion

Layout = Literal["1.9", "1.10", "1.11", "1.13"]
LAYOUTS: tuple[Layout, ...] = ("1.9", "1.10", "1.11", "1.13")

# A recent release of each line; the CPU feature tables (word counts) follow this version.
DEFAULT_JULIA_VERSION: dict[str, str] = {"1.9": "1.9.4", "1.10": "1.10.10", "1.11": "1.11.7", "1.13": "1.13.0"}
# Julia made its data imports dllimport in 1.10.4 (PR #54572) together with --disable-auto-import, and
# replaced jl_RTLD_DEFAULT_handle_pointer by the getter get_jl_RTLD_DEFAULT_handle_addr.
FIRST_DLLIMPORT_VERSION = DLLIMPORT_AND_RTLD_GETTER_SINCE


def layout_for_version(version: str) -> Layout:
    """The archive layout a Julia version writes (1.12 writes the 1.11 layout). Raises TargetError."""
    v = JuliaVersion.parse(version)
    line = (v.major, v.minor)
    if line < (1, 9):
        raise TargetError(f"Julia {version} writes no package images (they start with 1.9)")
    if line == (1, 9):
        return "1.9"
    if line == (1, 10):
        return "1.10"
    if line in ((1, 11), (1, 12)):
        return "1.11"
    if line == (1, 13):
        return "1.13"
    raise TargetError(f"no fixture layout for Julia {version}: the generator covers 1.9 - 1.13")


def _default_dllimport(version: str) -> bool:
    return not JuliaVersion.parse(version) < FIRST_DLLIMPORT_VERSION


@dataclass(frozen=True)
class FixtureSpec:
    """Options of one generated archive. ``None`` fields are resolved from the layout on creation, so
    a constructed spec is always concrete (and is what the manifest records)."""

    target: Target
    layout: Layout = "1.11"
    # JULIA_CPU_TARGET entries: "name[,+feat|-feat|clone_all|base(n)]*"; one string with ';' also works.
    cpu_targets: tuple[str, ...] = ("generic",)
    nshards: int = 1
    nfuncs: int = 6
    ngvars: int = 4
    blob_size: int = 4096  # bytes of jl_system_image_data (heap header included)
    dll_stub: bool = True  # Windows: put Julia's _DllMainCRTStartup stub into text.o / metadata.o
    dllimport_data: bool | None = None  # Windows data imports marked dllimport (Julia >= 1.10.4)
    julia_version: str | None = None  # decides the CPU feature tables; default per layout
    kind: str = "pkgimage"  # "sysimage": a system image's heap (no cache header)
    compress: bool = False  # sysimage, 1.13 layout: the heap as one zstd frame (--compress-sysimage)

    def __post_init__(self) -> None:
        if isinstance(self.target, str):
            object.__setattr__(self, "target", parse_target(self.target))
        if self.layout not in LAYOUTS:
            raise TargetError(f"unknown fixture layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        cpu = self.cpu_targets
        if isinstance(cpu, str):
            cpu = tuple(cpu.split(";"))
        object.__setattr__(self, "cpu_targets", tuple(cpu))
        version = self.julia_version or DEFAULT_JULIA_VERSION[self.layout]
        if layout_for_version(version) != self.layout:
            raise TargetError(f"Julia {version} writes the {layout_for_version(version)} layout, not {self.layout}")
        object.__setattr__(self, "julia_version", version)
        if self.dllimport_data is None:  # only COFF has data imports to mark
            object.__setattr__(self, "dllimport_data", self.target.format == "coff" and _default_dllimport(version))
        self._validate()

    def _validate(self) -> None:
        if not self.cpu_targets or any(not t for t in self.cpu_targets):
            raise TargetError("cpu_targets needs at least one non-empty target")
        if self.nshards < 1:
            raise TargetError(f"nshards must be at least 1, not {self.nshards}")
        if self.layout == "1.9" and self.nshards != 1:
            raise TargetError("the 1.9 layout has no shards (text.o holds everything): use nshards=1")
        if self.nfuncs < self.nshards or self.ngvars < self.nshards:
            raise TargetError(f"every shard needs a function and a global: nfuncs ({self.nfuncs}) and ngvars "
                              f"({self.ngvars}) must be at least nshards ({self.nshards})")
        if self.kind not in ("pkgimage", "sysimage"):
            raise TargetError(f"unknown fixture kind {self.kind!r}; choose pkgimage or sysimage")
        if self.compress and (self.kind != "sysimage" or self.layout != "1.13"):
            raise TargetError("compress needs kind sysimage and the 1.13 layout (--compress-sysimage is 1.13+)")
        from fixturegen.cputargets import resolve_cpu_targets  # Julia's own CPU-target errors, raised now
        from fixturegen.heap import header_size

        assert self.julia_version is not None
        minimum = 8 if self.kind == "sysimage" else header_size(self.target, self.julia_version)
        if self.blob_size < minimum:
            raise TargetError(f"blob_size {self.blob_size} cannot hold the {minimum}-byte heap header")

        resolve_cpu_targets(self)

    @property
    def cpu_target_string(self) -> str:
        return ";".join(self.cpu_targets)

    @property
    def rtld_getter(self) -> bool:
        """Whether the image defines ``get_jl_RTLD_DEFAULT_handle_addr`` (1.10.4+) rather than the
        ``jl_RTLD_DEFAULT_handle_pointer`` data pointer (1.9 - 1.10.3)."""
        assert self.julia_version is not None
        return not JuliaVersion.parse(self.julia_version) < DLLIMPORT_AND_RTLD_GETTER_SINCE

    @property
    def ntargets(self) -> int:
        return len(self.cpu_targets)

    def to_dict(self) -> dict[str, object]:
        """The resolved options, JSON-ready (what MANIFEST.json records)."""
        return {
            "target": self.target.name, "layout": self.layout, "julia_version": self.julia_version,
            "cpu_targets": list(self.cpu_targets), "nshards": self.nshards, "nfuncs": self.nfuncs,
            "ngvars": self.ngvars, "blob_size": self.blob_size, "dll_stub": self.dll_stub,
            "dllimport_data": self.dllimport_data,
            **({"kind": self.kind, "compress": self.compress} if self.kind != "pkgimage" else {}),
        }
