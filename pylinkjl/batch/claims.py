"""Which files a batch reads and writes, compared for the whole batch before anything runs.

Each item reads its inputs and writes its output; with a ``.ji`` it reads and rewrites that too. Items
run in parallel, so an item that writes a file another item reads or writes would destroy that item's
input or race with it (item 0's output is item 1's archive; ``dup.so`` and ``sub/../dup.so``; a hard link
or a symlink to another item's file). Files are compared by resolved path and by identity
(:mod:`pylinkjl.fs.identity`), and such an item is refused with an InputError naming both items:

- an item may not write a file that is an input or a ``.ji`` of any item (itself included): the writer is
  refused and the file stays intact;
- one file has one writer (two items naming one ``.ji`` are two writers): the first item in the batch
  keeps it, later ones are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pylinkjl.errors import InputError
from pylinkjl.fs.identity import Key, file_keys

_HINT = "give every item its own output (and .ji), none of them another item's input"


@dataclass(frozen=True)
class Uses:
    """The files of one item: what it reads, and what it writes (None: an item that will not run)."""

    index: int
    inputs: tuple[Path, ...]
    output: Path | None
    ji: Path | None = None


@dataclass(frozen=True)
class _File:
    index: int
    role: str  # "input", "output", ".ji"
    path: Path
    keys: frozenset[Key]


def _describe(this: _File, other: _File) -> str:
    same = "" if str(this.path) == str(other.path) else f" ({other.path}: the same file)"
    return f"the {other.role} of item {other.index}{same}"


def refusals(items: Sequence[Uses]) -> dict[int, InputError]:
    """The items that must not run, each with the error naming the other item. Reads no file contents:
    only ``realpath`` and ``stat``."""
    inputs = [_File(u.index, "input", p, file_keys(p)) for u in items for p in u.inputs]
    inputs += [_File(u.index, ".ji", u.ji, file_keys(u.ji)) for u in items if u.ji is not None]
    read_by: dict[Key, list[_File]] = {}
    for f in inputs:
        for key in f.keys:
            read_by.setdefault(key, []).append(f)
    written: dict[Key, _File] = {}
    refused: dict[int, InputError] = {}
    for u in items:
        writes = [_File(u.index, "output", u.output, file_keys(u.output))] if u.output is not None else []
        if u.ji is not None:
            writes.append(_File(u.index, ".ji", u.ji, file_keys(u.ji)))
        problem = _conflict(u.index, writes, read_by, written)
        if problem is not None:
            refused[u.index] = InputError(problem[0], problem[1], hint=_HINT)
            continue
        for w in writes:
            for key in w.keys:
                written[key] = w
    return refused


def _conflict(index: int, writes: list[_File], read_by: dict[Key, list[_File]],
              written: dict[Key, _File]) -> tuple[Path, str] | None:
    """(the file, what is wrong) for the first write of item ``index`` that collides, else None."""
    if len(writes) == 2 and writes[0].keys & writes[1].keys:
        return writes[0].path, f"item {index} names {writes[1].path} as both its output and its .ji"
    for w in writes:
        # a .ji is read and rewritten: two items naming one .ji are two writers (the first keeps it), but an
        # output written over any item's .ji destroys it, like an output written over an input
        readers = [r for key in w.keys for r in read_by.get(key, ())
                   if not (r.role == ".ji" and (w.role == ".ji" or r.index == index))]
        if readers:
            return w.path, f"item {index} would overwrite {_describe(w, readers[0])}"
        owner = next((written[key] for key in w.keys if key in written), None)
        if owner is not None:
            what = (f"the same output as item {owner.index}" if owner.role == w.role == "output"
                    else f"the {owner.role} of item {owner.index}")
            return w.path, f"item {index} would write {what}" + (
                "" if str(owner.path) == str(w.path) else f" ({owner.path}: the same file)")
    return None
