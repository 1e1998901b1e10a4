"""What a file is, from its first bytes (enough to pick the LIEF parser or name the mistake)."""

from __future__ import annotations

import struct


def sniff_magic(head: bytes) -> str | None:
    if head[:4] == b"\x7fELF":
        return "elf"
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xfe\xed\xfa\xce"):
        return "macho"
    if head[:4] in (b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca"):
        return "fat"
    if head[:2] == b"MZ":
        return "pe"
    if head[:8] == b"!<arch>\n" or head[:8] == b"!<thin>\n":
        return "archive"
    if len(head) >= 2 and struct.unpack("<H", head[:2])[0] in (0x8664, 0x14C, 0xAA64, 0x1C4):
        return "coff-object"
    return None
