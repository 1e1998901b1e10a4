"""Bounds-checked reads from a byte buffer, for the pure-Python readers of this package.

Every malformed length or offset in a file must become an :class:`InputError` naming the file and the
offset, never an ``IndexError``/``struct.error`` and never a read (or allocation) that a length field
alone decides. Hot loops check a whole table once with :meth:`BoundedBytes.need` and then unpack
without further checks.
"""

from __future__ import annotations

import mmap
import struct

from pylinkjl.errors import InputError

Buffer = bytes | bytearray | memoryview | mmap.mmap

U16 = struct.Struct("<H")
U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")


class BoundedBytes:
    """``data`` seen as the contents of ``source``; ``base`` is added to offsets in error messages
    (the position of ``data`` inside a bigger file, e.g. an archive member)."""

    __slots__ = ("base", "data", "source")

    def __init__(self, data: Buffer, source: str, base: int = 0) -> None:
        self.data = data
        self.source = source
        self.base = base

    def __len__(self) -> int:
        return len(self.data)

    def fail(self, offset: int, problem: str) -> InputError:
        return InputError(self.source, problem, offset=self.base + max(offset, 0))

    def need(self, offset: int, size: int, what: str) -> None:
        """Raise unless ``size`` bytes at ``offset`` lie inside the buffer."""
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise self.fail(offset, f"{what} ({size} bytes) runs past the end of the data "
                                    f"({len(self.data)} bytes)")

    def unpack(self, fmt: struct.Struct, offset: int, what: str) -> tuple[int, ...]:
        self.need(offset, fmt.size, what)
        return fmt.unpack_from(self.data, offset)

    def u16(self, offset: int, what: str) -> int:
        return int(self.unpack(U16, offset, what)[0])

    def u32(self, offset: int, what: str) -> int:
        return int(self.unpack(U32, offset, what)[0])

    def u64(self, offset: int, what: str) -> int:
        return int(self.unpack(U64, offset, what)[0])

    def slice(self, offset: int, size: int, what: str) -> bytes:
        self.need(offset, size, what)
        return bytes(self.data[offset:offset + size])


def c_strings(table: bytes, offsets: list[int]) -> set[str]:
    """The NUL-terminated strings at ``offsets`` of a string table, decoded as UTF-8 (invalid bytes
    escaped). The caller has checked that every offset lies inside the table. One pass over all
    names: symbol tables of Julia images hold 100k+ of them."""
    table = table + b"\0"
    find = table.find
    raw = {table[o:find(b"\0", o)] for o in offsets}
    try:
        return {r.decode() for r in raw}
    except UnicodeDecodeError:
        return {r.decode("utf-8", errors="backslashreplace") for r in raw}


def c_string(table: bytes, offset: int) -> str:
    """The NUL-terminated string at ``offset`` of a string table (to the end if unterminated).
    The caller has checked ``0 <= offset``; an offset past the end gives ``""``."""
    end = table.find(b"\0", offset)
    raw = table[offset:] if end < 0 else table[offset:end]
    return raw.decode("utf-8", errors="backslashreplace")
