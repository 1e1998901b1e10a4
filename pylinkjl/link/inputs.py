"""Look at the link inputs before LLD does: each must exist, be an object or an archive of objects,
and match the target's format and architecture. LLD itself is not that strict: it makes an empty
dylib from an arm64 object linked for x86_64 and only warns.

The same pass answers the planner's symbol questions: which symbols do the inputs leave undefined
(for stub libraries), and do they define a few given names (the DLL entry point). It must stay cheap
next to LLD, so an archive is not read symbol by symbol: each member's symbol table is scanned for
its undefined names only (``binfmt.fastsyms``), and the archive's own symbol table (``binfmt.armap``)
says which names its members define, once its entry count agrees with the members. Archives without
a usable symbol table, and plain object files, are read in full (``binfmt.symbols``). Either way the
answers are the same.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.binfmt.ar import iter_member_data, parse_archive
from pylinkjl.binfmt.armap import ArchiveSymbolTable, read_symbol_table
from pylinkjl.binfmt.fastsyms import ObjectRefs, scan_object
from pylinkjl.binfmt.files import mapped_file, read_file, require_exists
from pylinkjl.binfmt.sniff import sniff_bytes, sniff_file
from pylinkjl.errors import InputError
from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.inputs")

_FORMAT_NAMES = {"elf": "ELF", "macho": "Mach-O", "coff": "COFF"}


@dataclass(frozen=True)
class InputFile:
    """One object file or archive given to a link."""

    path: Path
    kind: str  # "object" or "archive"
    members: tuple[str, ...]  # archive member names (empty for an object)


@dataclass(frozen=True)
class InputSummary:
    """Names are raw object-file names (with the target's ``_`` prefix where it has one)."""

    files: tuple[InputFile, ...]
    undefined: frozenset[str]  # referenced by some input, defined by none
    data_hints: frozenset[str]  # undefined names the inputs reach as data (__imp_/.refptr.)
    probes: frozenset[str] = frozenset()  # the names examine_inputs was asked about
    defined_probes: frozenset[str] = frozenset()  # those of them some input defines
    defined_count: int | None = None  # distinct global names the inputs define (when asked: count_defined)

    def defines(self, raw_name: str) -> bool:
        """Whether some input defines ``raw_name``, one of the ``probes`` given to examine_inputs."""
        if raw_name not in self.probes:
            raise ValueError(f"{raw_name!r} was not among the names examine_inputs was asked about")
        return raw_name in self.defined_probes


@dataclass
class _Examined:
    """One input, checked: what it leaves undefined, and how to ask what it defines."""

    file: InputFile
    undefined: frozenset[str]
    data_hints: frozenset[str]
    defined: frozenset[str] | None = None  # every defined name, when the input was read in full
    table: ArchiveSymbolTable | None = None  # otherwise the archive's symbol table...
    also_defined: frozenset[str] = field(default_factory=frozenset)  # ...and what it may leave out

    def all_defined(self) -> set[str]:
        """Every global name this input defines (from the archive's symbol table when it has one)."""
        if self.defined is not None:
            return set(self.defined)
        assert self.table is not None
        return {n.decode(errors="replace") for n in self.table.names.split(b"\0") if n} | set(self.also_defined)

    def defined_among(self, names: set[str]) -> set[str]:
        if self.defined is None and not all(_searchable(n) for n in names):
            log.debug("%s: a wanted name cannot be searched for in the symbol table; reading every member's "
                      "symbols", self.file.path)
            self.defined = _read_archive(self.file).defined
        if self.defined is not None:
            return names & self.defined
        assert self.table is not None
        found = self.table.find(n.encode() for n in names)
        return {n.decode() for n in found} | (names & self.also_defined)


def _searchable(name: str) -> bool:
    """Names the readers decoded losslessly: those the raw bytes of a symbol table can be searched
    for (an invalid UTF-8 byte reads as ``\\xNN``; an empty name is never listed)."""
    return bool(name) and "\\" not in name


def _check_format(fmt: str, arch: str | None, target: Target, where: str, path: Path) -> None:
    want = f"{_FORMAT_NAMES[target.format]} {target.arch}"
    got = f"{_FORMAT_NAMES.get(fmt, fmt)} {arch}"
    if fmt != target.format or arch != target.arch:
        raise InputError(path, f"{where} is a {got} object, but target {target.name} needs {want} objects",
                         hint=f"link it for its own target (--target), or regenerate the cache for {target.name}")


def _examine_object(path: Path, target: Target) -> _Examined:
    from pylinkjl.binfmt.symbols import read_object_symbols  # loose objects are rare: archives are the norm

    syms = read_object_symbols(read_file(path, "object file"), str(path))
    _check_format(syms.format, syms.arch, target, str(path), path)
    return _Examined(InputFile(path, "object", ()), syms.undefined, syms.data_hints, defined=syms.defined)


def _examine_archive(path: Path, target: Target) -> _Examined:
    refs: list[ObjectRefs] = []
    with mapped_file(path, "archive") as data:
        members = parse_archive(data, str(path))
        for member in members:
            member_kind = sniff_bytes(bytes(data[member.offset:member.offset + min(member.size, 64)]))
            if member_kind.kind != "object":
                raise InputError(path, f"archive member {member.name!r} is not an object file "
                                       f"({member_kind.description})")
            source = f"{path}({member.name})"
            found = scan_object(data, source, member.offset, member.size)
            _check_format(found.format, found.arch, target, source, path)
            refs.append(found)
        table = read_symbol_table(data, str(path))
    if not members:
        raise InputError(path, "archive contains no object files", hint="the precompile step that made it "
                         "probably failed; rerun it")
    file = InputFile(path, "archive", tuple(m.name for m in members))
    fewest, most = sum(r.listed[0] for r in refs), sum(r.listed[1] for r in refs)
    if table is not None and fewest <= table.count <= most:
        return _Examined(file, frozenset().union(*(r.undefined for r in refs)),
                         frozenset().union(*(r.data_hints for r in refs)), table=table,
                         also_defined=frozenset().union(*(r.also_defined for r in refs)))
    log.debug("%s: %s; reading every member's symbols", path, "no usable symbol table" if table is None else
              f"its symbol table lists {table.count} names, the members define {fewest}..{most}")
    return _read_archive(file)


def _read_archive(file: InputFile) -> _Examined:
    """Every member's symbols, read in full."""
    from pylinkjl.binfmt.symbols import (
        read_object_symbols,  # the slow reader: only when the table cannot serve
    )
    defined: set[str] = set()
    undefined: set[str] = set()
    hints: set[str] = set()
    for member, data in iter_member_data(file.path):
        syms = read_object_symbols(data, f"{file.path}({member.name})")
        defined |= syms.defined
        undefined |= syms.undefined
        hints |= syms.data_hints
    return _Examined(file, frozenset(undefined), frozenset(hints), defined=frozenset(defined))


def _examine(path: Path, target: Target) -> _Examined:
    require_exists(path)
    if path.is_dir():
        raise InputError(path, "is a directory, not an object file or archive")
    if not os.access(path, os.R_OK):
        raise InputError(path, "is not readable (permission denied)")
    kind = sniff_file(path)
    if kind.format == "ar":
        return _examine_archive(path, target)
    if kind.kind == "object":
        return _examine_object(path, target)
    raise InputError(path, f"is not an object file or archive: {kind.description}",
                     hint="pylinkjl links the object archive Julia writes with --output-o "
                          "(a file named jl_XXXXXX in compiled/vX.Y/<Package>/)")


def examine_inputs(paths: Sequence[Path], target: Target, probes: Iterable[str] = (),
                   count_defined: bool = False) -> InputSummary:
    """Check every input and collect what the planner needs: the names left undefined, and which of
    ``probes`` (raw names) some input defines. Raises InputError naming the file and the problem."""
    if not paths:
        raise InputError(None, "no input files given")
    inputs = [_examine(Path(p), target) for p in paths]
    asked = frozenset(probes)
    referenced: set[str] = set().union(*(i.undefined for i in inputs))
    wanted = referenced | asked
    defined: set[str] = set()
    for examined in inputs:
        defined |= examined.defined_among(wanted - defined)
    undefined = frozenset(referenced - defined)
    hints = frozenset().union(*(i.data_hints for i in inputs))
    count = len(set().union(*(i.all_defined() for i in inputs))) if count_defined else None
    return InputSummary(tuple(i.file for i in inputs), undefined, hints & undefined, asked, asked & defined, count)
