"""Julia's file checksum: CRC-32C (Castagnoli, seed 0) as its ``_crc32c`` computes it (a ``.ji``'s
``crc_so`` is the image file's)."""

from __future__ import annotations

from pathlib import Path

import crc32c

from pylinkjl.binfmt.files import mapped_view


def crc32c_file(path: Path) -> int:
    """CRC-32C (Castagnoli, seed 0) of a whole file, as Julia's ``_crc32c`` computes it."""
    with mapped_view(path) as data:
        return int(crc32c.crc32c(data))
