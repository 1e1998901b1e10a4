"""The cache header Julia embeds inside a package image, in front of its heap: what ties an image to its
``.ji`` (the same heap checksum) and names the exact Julia version that wrote it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pylinkjl.caches.ji import FORMAT_CLASSIC, JI_MAGIC
from pylinkjl.caches.jicursor import Cursor
from pylinkjl.errors import InputError


@dataclass(frozen=True)
class EmbeddedHeader:
    """The cache header Julia writes in front of the heap inside the image (``jl_system_image_data``).
    Its checksum equals the ``.ji``'s: the surest sign that a ``.ji`` and an image belong together."""

    offset: int
    julia_version: str
    pkgimage_byte: int
    heap_checksum: int
    cache_flags_byte: int


def find_embedded_header(data: bytes | memoryview, path: str | os.PathLike[str] = "<image>",
                         *, max_candidates: int = 16) -> EmbeddedHeader | None:
    """Find and parse the first well-formed format-12 cache header inside an image's bytes."""
    view = memoryview(data)
    raw: Any = data if isinstance(data, bytes) else view.obj  # bytes.find / mmap.find run in C
    pos = 0
    for _ in range(max_candidates):
        pos = raw.find(JI_MAGIC, pos)
        if pos < 0:
            return None
        c = Cursor(view, Path(path))
        c.pos = pos + len(JI_MAGIC)
        try:
            if c.unpack("H", "format") == FORMAT_CLASSIC and c.unpack("H", "BOM") == 0xFEFF:
                c.u8("pointer size")
                for what in ("OS", "arch"):
                    c.cstring(what)
                version = c.cstring("version")
                c.cstring("branch")
                c.cstring("commit")
                pk = c.u8("pkgimage byte")
                checksum = c.u64("checksum")
                c.u64("datastartpos")
                c.u64("dataendpos")
                return EmbeddedHeader(pos, version, pk, checksum, c.u8("cache flags"))
        except InputError:
            pass
        pos += 1
    return None
