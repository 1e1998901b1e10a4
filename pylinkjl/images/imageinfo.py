"""What decoding an image's tables yields: per shard, per target record, and the whole :class:`ImageInfo`
with the problems found, filed under the verification check that reports each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.images.layout import LAYOUT_NAMES, Layout


@dataclass
class CloneRecord:
    """One target's record in a shard's ``clone_idxs`` walk."""

    target: int
    clone_all: bool
    base: int | None  # base target of an untagged record
    count: int  # functions cloned for this target (nfuncs for clone_all targets)
    nreloc: int  # indices that also need their relocation slots refilled
    nptrs: int  # entries this target owns in the clone pointer/offset table


@dataclass
class ShardInfo:
    index: int
    nfuncs: int
    ngvars: int
    func_addrs: list[int | None] = field(default_factory=list)
    clone_addrs: list[int | None] = field(default_factory=list)
    gvar_addrs: list[int] = field(default_factory=list)
    slot_addrs: list[int] = field(default_factory=list)
    fvar_idxs: list[int] = field(default_factory=list)
    gvar_idxs: list[int] = field(default_factory=list)
    records: list[CloneRecord] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)  # table name -> address
    idxs_words: int = 0  # words the clone-index walk consumed
    idxs_extent: int | None = None  # bytes available for the clone-index table (symbol bound)
    idxs_extent_exact: bool = False  # extent from a symbol size (ELF) rather than the next symbol
    trailing_words: list[int] = field(default_factory=list)  # words after the walk, within the extent


@dataclass
class ImageInfo:
    path: Path
    layout: Layout
    layout_reason: str
    format: str
    arch: str
    kind: str
    pointer_size: int
    target_list: bytes = b""
    target_layout: str = "classic"
    targets: list[TargetRecord] = field(default_factory=list)
    header_version: int | None = None
    nshards: int = 0
    nfuncs: int = 0
    ngvars: int = 0
    shards: list[ShardInfo] = field(default_factory=list)
    clones_per_target: list[int] = field(default_factory=list)
    image_data: int | None = None  # address of jl_system_image_data
    image_size: int | None = None  # value of jl_system_image_size
    cpu_target_string: str | None = None
    tls_slots: dict[str, int | None] = field(default_factory=dict)
    small_typeof: int | None = None
    table_symbols: dict[str, int] = field(default_factory=dict)  # located entry symbols
    rtld_marker: str | None = None  # jl_RTLD_DEFAULT_handle_pointer (to 1.10.3) or get_jl_..._addr (1.10.4+)
    problems: dict[str, list[str]] = field(default_factory=dict)  # check name -> what is wrong

    @property
    def layout_name(self) -> str:
        return LAYOUT_NAMES[self.layout]

    @property
    def ntargets(self) -> int:
        return len(self.targets)

    def problem(self, check: str, text: str) -> None:
        self.problems.setdefault(check, []).append(text)

    def summary(self) -> dict[str, object]:
        return {
            "path": str(self.path), "line": self.layout, "line_name": self.layout_name, "line_reason": self.layout_reason,  # keys kept: public JSON
            "format": self.format, "arch": self.arch, "kind": self.kind,
            "targets": [t.name for t in self.targets], "nshards": self.nshards, "nfuncs": self.nfuncs,
            "ngvars": self.ngvars, "clones_per_target": self.clones_per_target,
            "image_size": self.image_size, "cpu_target_string": self.cpu_target_string,
            "rtld_marker": self.rtld_marker,
        }
