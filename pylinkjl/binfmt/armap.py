"""The symbol table of an ``ar`` archive: the names every member defines, in one member.

``llvm-ar s`` (and Julia, which writes archives through LLVM) put it first: GNU ``/`` (big-endian
count, member offsets, NUL-terminated names) or ``/SYM64/`` (the same with 64-bit fields), BSD/Darwin
``__.SYMDEF`` (little-endian ``ranlib`` pairs of name offset and member offset, then a string table)
or ``__.SYMDEF_64``. The planner asks it whether a few dozen names are defined, which is much cheaper
than reading every member's symbols: a large Julia archive lists 460,000 names.

The table is only as good as the tool that wrote it, so callers check it against the members (see
``inputs.py``: entry counts) before trusting it. A table this module cannot read gives ``None``.
"""

from __future__ import annotations

import itertools
import logging
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from pylinkjl.binfmt.bounded import Buffer

log = logging.getLogger("pylinkjl.binfmt.armap")

_HEADER_AT, _HEADER_SIZE = 8, 60
_BSD_NAMES = {b"__.SYMDEF": (struct.Struct("<I"), 8), b"__.SYMDEF SORTED": (struct.Struct("<I"), 8),
              b"__.SYMDEF_64": (struct.Struct("<Q"), 16), b"__.SYMDEF_64 SORTED": (struct.Struct("<Q"), 16)}
_GNU_NAMES = {b"/": struct.Struct(">I"), b"/SYM64/": struct.Struct(">Q")}
# Up to this many wanted names, one regular expression shaped as a prefix tree scans the names (a few
# ms for 460k names); beyond it, or for a tree nested deeper than the regex compiler likes, a set
# intersection with every name (~30 ms there) is cheaper than compiling the expression.
_TREE_WORDS = 128
_TREE_DEPTH = 40
# Below this many entries, splitting the names into a set (~65 ns a name) is cheaper than compiling the
# expression (~0.3 ms): a small package's table lists a few dozen names.
_SPLIT_BELOW = 4096


@dataclass(frozen=True)
class ArchiveSymbolTable:
    """An archive's symbol table (the ``/`` or ``__.SYMDEF`` member): which names its members define."""

    count: int  # entries (a name defined by two members is listed twice)
    names: bytes  # every listed name followed by b"\0"

    def find(self, wanted: Iterable[bytes]) -> set[bytes]:
        """The ``wanted`` names that the table lists (empty names are never found)."""
        words = sorted({w for w in wanted if w})
        if not words or self.count == 0:
            return set()
        pattern = _tree_pattern(words) if len(words) <= _TREE_WORDS and self.count >= _SPLIT_BELOW else None
        if pattern is None:
            return set(words).intersection(self.names.split(b"\0"))
        first = self.names[:self.names.find(b"\0")]
        found = set(re.compile(b"\0(" + pattern + b")(?=\0)").findall(self.names))
        return found | ({first} & set(words))


class _TooDeep(Exception):
    pass


def _tree_pattern(words: list[bytes]) -> bytes | None:
    """A regular expression matching exactly ``words`` (sorted, distinct, non-empty), built as a prefix
    tree: at each position the engine follows one path instead of trying every word."""
    try:
        return _subtree(words, 0, 0)
    except _TooDeep:
        return None


def _subtree(words: list[bytes], depth: int, nesting: int) -> bytes:
    if nesting > _TREE_DEPTH:
        raise _TooDeep
    first, last = words[0], words[-1]
    k = depth  # the sorted list's common prefix is that of its first and last word
    while k < len(first) and k < len(last) and first[k] == last[k]:
        k += 1
    head = re.escape(first[depth:k])
    ends_here = len(first) == k  # a word that is the common prefix itself sorts first
    rest = words[1:] if ends_here else words
    if not rest:
        return head
    branches = [_subtree(list(group), k, nesting + 1) for _, group in itertools.groupby(rest, key=lambda w: w[k])]
    body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
    return head + (b"(?:" + body + b")?" if ends_here else body)


def _decimal(field: bytes) -> int | None:
    text = field.strip(b" ")
    return int(text) if text.isdigit() and len(text) <= 20 else None


def read_symbol_table(data: Buffer, source: str) -> ArchiveSymbolTable | None:
    """The symbol table of the archive held in ``data`` (the whole file, already walked by
    ``ar.iter_members``), or None when it has none or one this reader does not understand."""
    end = len(data)
    if end < _HEADER_AT + _HEADER_SIZE:
        return None
    header = bytes(data[_HEADER_AT:_HEADER_AT + _HEADER_SIZE])
    size = _decimal(header[48:58])
    if header[58:60] != b"`\n" or size is None or _HEADER_AT + _HEADER_SIZE + size > end:
        return None
    at = _HEADER_AT + _HEADER_SIZE
    name = header[:16].rstrip(b" ")
    if name.startswith(b"#1/"):  # BSD: the name is stored in front of the data
        name_len = _decimal(name[3:])
        if name_len is None or name_len > size:
            return None
        name = bytes(data[at:at + name_len]).rstrip(b"\0")
        at, size = at + name_len, size - name_len
    stop = at + size
    if name in _GNU_NAMES:
        field = _GNU_NAMES[name]
        if size < field.size:
            return None
        count = field.unpack_from(data, at)[0]
        names_at = at + field.size * (1 + count)
    elif name in _BSD_NAMES:
        field, entry = _BSD_NAMES[name]
        if size < field.size:
            return None
        ranlib_bytes = field.unpack_from(data, at)[0]
        count, odd = divmod(ranlib_bytes, entry)
        strsize_at = at + field.size + ranlib_bytes
        if odd or strsize_at + field.size > stop:
            return None
        names_at = strsize_at + field.size
        stop = names_at + field.unpack_from(data, strsize_at)[0]
    else:
        return None
    if names_at > stop or stop > at + size:
        log.debug("%s: symbol table %r does not fit its member", source, name)
        return None
    # the names end with a NUL, then padding (NULs) up to the end of the member
    tail = bytes(data[max(names_at, stop - 4096):stop])
    padding = len(tail) - len(tail.rstrip(b"\0"))
    if count == 0:
        names = b""
        if padding != stop - names_at:
            return None
    elif padding == 0 or padding == len(tail):
        return None  # the last name is unterminated, or the last 4 KiB hold no name
    else:
        names = bytes(data[names_at:stop - padding + 1])
    # One name per entry and nothing else: then "is X listed" is a search in this blob.
    if names.count(b"\0") != count:
        log.debug("%s: symbol table %r lists %d entries but holds other names", source, name, count)
        return None
    return ArchiveSymbolTable(count, names)
