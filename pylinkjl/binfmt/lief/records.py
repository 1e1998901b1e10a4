"""The plain records a :class:`~.base.BinaryView` hands out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["elf", "macho", "coff"]
FileKind = Literal["shared", "executable", "object", "other"]


@dataclass(frozen=True)
class Section:
    name: str
    vaddr: int
    size: int
    executable: bool
    writable: bool  # writable at run time (ELF RELRO and Mach-O __DATA_CONST count as read-only)
    segment: str = ""

    @property
    def end(self) -> int:
        return self.vaddr + self.size


@dataclass(frozen=True)
class BuildVersion:
    platform: str  # "macos", "ios", ...
    minos: str  # "11.0"
    sdk: str


@dataclass(frozen=True)
class CodeSignature:
    offset: int  # file offset of the signature blob
    size: int
    code_limit: int | None  # bytes of the file the CodeDirectory covers
    page_size: int | None
    hashes_ok: bool | None  # every page hash matches the file (None: not checked / unknown hash type)
    problem: str | None = None


@dataclass(frozen=True)
class PseudoRelocs:
    count: int  # runtime pseudo-relocations in the image
    has_relocator: bool  # the image defines _pei386_runtime_relocator
    targets: tuple[int, ...] = ()  # addresses patched at run time (when the list was found by scanning)
