"""Reader of ``ar`` archives: the object archive Julia hands to LLD, and import libraries.

Understands the GNU/System V layout (``/`` and ``/SYM64/`` symbol tables, ``//`` long-name table with
``/<offset>`` references; the COFF ``lib`` variant with two ``/`` members and NUL-terminated long
names) and the BSD/Darwin layout (``#1/<len>`` names stored in front of the data, ``__.SYMDEF*`` symbol
tables). Symbol tables and the long-name table are not reported as members. Thin archives
(``!<thin>``) keep their members in other files; only an empty one is accepted.

Each member header is 60 bytes: name[16] date[12] uid[6] gid[6] mode[8] size[10] "`\\n"; data follow
and are padded to an even offset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from pylinkjl.binfmt.bounded import BoundedBytes, Buffer
from pylinkjl.binfmt.files import mapped_file
from pylinkjl.errors import InputError

ARCHIVE_MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
HEADER_SIZE = 60

# Names of symbol-table members: GNU (32/64-bit), COFF arm64ec, BSD/Darwin (32/64-bit, sorted or not).
SYMBOL_TABLE_NAMES = frozenset({
    "/", "/SYM64/", "/<ECSYMBOLS>/",
    "__.SYMDEF", "__.SYMDEF SORTED", "__.SYMDEF_64", "__.SYMDEF_64 SORTED",
})


@dataclass(frozen=True)
class Member:
    """One archive member: ``offset`` is where its data start in the archive file, ``size`` their
    length (a BSD ``#1/`` name is not part of either)."""

    name: str
    offset: int
    size: int


def is_archive(head: bytes) -> bool:
    return head.startswith((ARCHIVE_MAGIC, THIN_MAGIC))


def _decimal(field: bytes) -> int | None:
    text = field.strip(b" ")
    return int(text) if text.isdigit() and len(text) <= 20 else None


def _long_name(view: BoundedBytes, table: bytes | None, ref: bytes, header_at: int) -> str:
    """Resolve ``/<offset>`` against the ``//`` table (GNU: ``name/\\n``; COFF: ``name\\0``)."""
    if table is None:
        raise view.fail(header_at, "long member name used before the '//' name table")
    start = int(ref)
    if start >= len(table):
        raise view.fail(header_at, f"long member name offset {start} is outside the name table "
                                   f"({len(table)} bytes)")
    stops = [i for i in (table.find(b"\n", start), table.find(b"\0", start)) if i >= 0]
    raw = table[start:min(stops)] if stops else table[start:]
    return raw.removesuffix(b"/").decode("utf-8", errors="backslashreplace")


def iter_members(data: Buffer, source: str) -> Iterator[Member]:
    """Walk the member headers of an archive held in ``data`` (the whole file). Raises InputError,
    naming ``source`` and the offset, on anything malformed and on thin archives with members."""
    view = BoundedBytes(data, source)
    head = bytes(data[:8])
    if head not in (ARCHIVE_MAGIC, THIN_MAGIC):
        raise view.fail(0, "not an ar archive (no '!<arch>' magic)")
    thin = head == THIN_MAGIC
    longnames: bytes | None = None
    end = len(data)
    pos = 8
    while pos < end:
        if end - pos < HEADER_SIZE:
            if bytes(data[pos:end]).strip(b"\n\0 "):
                raise view.fail(pos, f"truncated member header ({end - pos} of {HEADER_SIZE} bytes)")
            return  # padding after the last member
        header = bytes(data[pos:pos + HEADER_SIZE])
        if header[58:60] != b"`\n":
            raise view.fail(pos, "bad member header (no '`\\n' terminator); the archive is corrupt")
        size = _decimal(header[48:58])
        if size is None:
            raise view.fail(pos + 48, f"bad member size field {header[48:58]!r}")
        raw_name = header[:16].rstrip(b" ")
        data_at = pos + HEADER_SIZE
        special = raw_name in (b"/", b"//", b"/SYM64/", b"/<ECSYMBOLS>/") or raw_name.startswith(b"__.SYMDEF")
        # Thin archives store only their symbol and name tables; other sizes describe outside files.
        stored = size if (special or not thin) else 0
        if stored > end - data_at:
            raise view.fail(pos, f"member claims {size} bytes but only {end - data_at} remain; "
                                 f"the archive is truncated")
        name_len = 0
        if raw_name.startswith(b"#1/"):
            name_len_field = _decimal(raw_name[3:])
            if name_len_field is None or name_len_field > size:
                raise view.fail(pos, f"bad BSD member name length in {raw_name!r}")
            name_len = name_len_field
            name = bytes(data[data_at:data_at + name_len]).rstrip(b"\0").decode("utf-8", "backslashreplace")
        elif raw_name == b"//":
            longnames = bytes(data[data_at:data_at + size])
            name = "//"
        elif raw_name.startswith(b"/") and raw_name[1:].isdigit():
            name = _long_name(view, longnames, raw_name[1:], pos)
        elif raw_name in (b"/", b"/SYM64/", b"/<ECSYMBOLS>/"):
            name = raw_name.decode("ascii")
        else:
            name = raw_name.removesuffix(b"/").decode("utf-8", errors="backslashreplace")
        if name != "//" and name not in SYMBOL_TABLE_NAMES:
            if thin:
                raise InputError(source, "thin archives are not supported (their members live in "
                                         "other files)", offset=pos,
                                 hint="rebuild it as a regular archive, e.g. `llvm-ar rcs new.a <objects>`")
            yield Member(name, data_at + name_len, size - name_len)
        pos = data_at + stored + (stored & 1)


def parse_archive(data: Buffer, source: str) -> list[Member]:
    """All regular members of the archive in ``data`` (symbol tables and the name table left out)."""
    return list(iter_members(data, source))


def read_members(path: str | os.PathLike[str]) -> list[Member]:
    """The regular members of the archive at ``path``. Raises InputError."""
    with mapped_file(path, "archive") as mapped:
        return parse_archive(mapped, str(path))


def iter_member_data(path: str | os.PathLike[str]) -> Iterator[tuple[Member, bytes]]:
    """Each regular member of the archive at ``path`` with its bytes (the file is mapped once;
    every member is copied out as it is yielded)."""
    with mapped_file(path, "archive") as mapped:
        for member in parse_archive(mapped, str(path)):
            yield member, bytes(mapped[member.offset:member.offset + member.size])
