"""A bounded little/big-endian reader of cache-file bytes: the ``.ji`` reader's and the embedded header's
one way to read, so that a length field never makes either read past what is really there."""

from __future__ import annotations

import struct
from pathlib import Path

from pylinkjl.errors import InputError

MAX_HEADER_STRING = 4096  # a header string (OS, arch, version, branch, commit) longer than this is corrupt
MAX_NAME = 1 << 16  # a module or file name longer than this is corrupt


class Cursor:
    """A bounded reader over a memory-mapped file: every read is checked against the bytes really there,
    and a failure names the file and the offset."""


    def __init__(self, data: memoryview, path: Path, endian: str = "<") -> None:
        self.data = data
        self.path = path
        self.pos = 0
        self.end = len(data)
        self.endian = endian

    def fail(self, problem: str, at: int | None = None) -> InputError:
        return InputError(self.path, problem, offset=self.pos if at is None else at)

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.end:
            raise self.fail(f"{what}: needs {n} bytes but only {max(self.end - self.pos, 0)} remain "
                            f"(truncated or corrupt .ji)")

    def unpack(self, fmt: str, what: str) -> int:
        size = struct.calcsize(fmt)
        self.need(size, what)
        value = struct.unpack_from(self.endian + fmt, self.data, self.pos)[0]
        self.pos += size
        return int(value) if not isinstance(value, float) else value  # type: ignore[return-value]

    def u8(self, what: str) -> int:
        return self.unpack("B", what)

    def u32(self, what: str) -> int:
        return self.unpack("I", what)

    def i32(self, what: str) -> int:
        return self.unpack("i", what)

    def u64(self, what: str) -> int:
        return self.unpack("Q", what)

    def i64(self, what: str) -> int:
        return self.unpack("q", what)

    def f64(self, what: str) -> float:
        size = 8
        self.need(size, what)
        value = float(struct.unpack_from(self.endian + "d", self.data, self.pos)[0])
        self.pos += size
        return value

    def raw(self, n: int, what: str) -> bytes:
        self.need(n, what)
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def cstring(self, what: str) -> str:
        limit = min(self.end, self.pos + MAX_HEADER_STRING)
        chunk = bytes(self.data[self.pos:limit])
        nul = chunk.find(b"\0")
        if nul < 0:
            why = " (truncated or corrupt .ji)" if limit == self.end else ""
            raise self.fail(f"{what}: no terminating NUL within {len(chunk)} bytes{why}")
        self.pos += nul + 1
        return chunk[:nul].decode("utf-8", errors="replace")

    def name(self, n: int, what: str) -> str:
        if n < 0 or n > MAX_NAME:
            raise self.fail(f"{what}: length {n} is implausible", self.pos - 4)
        return self.raw(n, what).decode("utf-8", errors="replace")
