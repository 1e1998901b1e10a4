"""Look at the link inputs before LLD does: each must exist, be an object or an archive of objects,
and match the target's format and architecture. LLD itself is not that strict: it makes an empty
dylib from an arm64 object linked for x86_64 and only warns.

The same pass collects the symbols the planner needs: is the DLL entry defined, and which symbols do
the inputs leave undefined (for stub libraries)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .binfmt.ar import iter_member_data
from .binfmt.sniff import sniff_bytes, sniff_file
from .binfmt.symbols import ObjectSymbols, read_object_symbols
from .errors import InputError
from .target import Target

_FORMAT_NAMES = {"elf": "ELF", "macho": "Mach-O", "coff": "COFF"}


@dataclass(frozen=True)
class InputFile:
    path: Path
    kind: str  # "object" or "archive"
    members: tuple[str, ...]  # archive member names (empty for an object)


@dataclass(frozen=True)
class InputSummary:
    files: tuple[InputFile, ...]
    defined: frozenset[str]  # raw object-file names (with the target's "_" prefix where it has one)
    undefined: frozenset[str]  # referenced by some input, defined by none
    data_hints: frozenset[str]  # undefined names the inputs reach as data (__imp_/.refptr.)

    def defines(self, raw_name: str) -> bool:
        return raw_name in self.defined


def _check_object(syms: ObjectSymbols, target: Target, where: str, path: Path) -> None:
    want = f"{_FORMAT_NAMES[target.format]} {target.arch}"
    got = f"{_FORMAT_NAMES.get(syms.format, syms.format)} {syms.arch}"
    if syms.format != target.format or syms.arch != target.arch:
        raise InputError(path, f"{where} is a {got} object, but target {target.name} needs {want} objects",
                         hint=f"link it for its own target (--target), or regenerate the cache for {target.name}")


def _read_object(data: bytes, source: str, target: Target, path: Path) -> ObjectSymbols:
    syms = read_object_symbols(data, source)
    _check_object(syms, target, source, path)
    return syms


def examine_inputs(paths: Sequence[Path], target: Target) -> InputSummary:
    """Check every input and collect its symbols. Raises InputError naming the file and the problem."""
    if not paths:
        raise InputError(None, "no input files given")
    files: list[InputFile] = []
    defined: set[str] = set()
    referenced: set[str] = set()
    data_hints: set[str] = set()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise InputError(path, "no such file")
        if path.is_dir():
            raise InputError(path, "is a directory, not an object file or archive")
        if not os.access(path, os.R_OK):
            raise InputError(path, "is not readable (permission denied)")
        kind = sniff_file(path)
        found: list[ObjectSymbols] = []
        if kind.format == "ar":
            members = []
            for member, data in iter_member_data(path):
                member_kind = sniff_bytes(data[:64])
                where = f"archive member {member.name!r}"
                if member_kind.kind != "object":
                    raise InputError(path, f"{where} is not an object file ({member_kind.description})")
                found.append(_read_object(data, f"{path}({member.name})", target, path))
                members.append(member.name)
            if not members:
                raise InputError(path, "archive contains no object files", hint="the precompile step that made it "
                                 "probably failed; rerun it")
            files.append(InputFile(path, "archive", tuple(members)))
        elif kind.kind == "object":
            found.append(_read_object(path.read_bytes(), str(path), target, path))
            files.append(InputFile(path, "object", ()))
        else:
            raise InputError(path, f"is not an object file or archive: {kind.description}",
                             hint="pylinkjl links the object archive Julia writes with --output-o "
                                  "(a file named jl_XXXXXX in compiled/vX.Y/<Package>/)")
        for syms in found:
            defined |= syms.defined
            referenced |= syms.undefined
            data_hints |= syms.data_hints
    undefined = frozenset(referenced - defined)
    return InputSummary(tuple(files), frozenset(defined), undefined, frozenset(data_hints & undefined))
