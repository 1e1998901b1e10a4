"""The serialized heap an image carries in ``jl_system_image_data`` (``jl_system_image_size`` bytes).

A package image's heap starts with a copy of the cache header (julia-linking.md §3.7); a system image's
does not. From the release-1.13 line a system image may be zstd-compressed (``--compress-sysimage``): then
``jl_system_image_size`` is the compressed length, the frame header gives the real one (what
``jl_image_unpack_zstd`` in the real 1.13.1 libjulia-internal does: ``ZSTD_getFrameContentSize``, then
``ZSTD_decompress``), and ``jl_system_image_checksum`` is the CRC-32C of the decompressed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pylinkjl.errors import InputError

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView
    from pylinkjl.images.imageinfo import ImageInfo

CACHE_HEADER_MAGIC = b"\xfbjli\r\n\x1a\n"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_HEAP = 1 << 34  # 16 GiB: a size above this is corruption


@dataclass
class Heap:
    address: int
    stored_size: int  # jl_system_image_size: bytes in the image (compressed length when compressed)
    compressed: bool
    data: bytes | None  # the (decompressed) heap; None when it could not be read
    problem: str | None = None  # why data is None

    @property
    def has_cache_header(self) -> bool:
        return self.data is not None and self.data.startswith(CACHE_HEADER_MAGIC)

    @property
    def size(self) -> int | None:
        return None if self.data is None else len(self.data)

    def checksum(self) -> int | None:
        """CRC-32C of the decompressed heap (what ``jl_system_image_checksum`` holds)."""
        if self.data is None:
            return None
        import crc32c

        return int(crc32c.crc32c(self.data))


def decompress(raw: bytes) -> bytes:
    """One zstd frame, decompressed as ``jl_image_unpack_zstd`` does: the frame must record its decompressed size
    (``ZSTD_getFrameContentSize``), and must decompress to exactly that. Raises ValueError with the reason. Streams,
    so a header that claims more than the frame holds costs no memory."""
    import zstandard

    try:
        declared = zstandard.frame_content_size(raw)
    except zstandard.ZstdError as err:
        raise ValueError(str(err)) from None
    if declared < 0:
        raise ValueError("the frame does not record its decompressed size, which jl_image_unpack_zstd needs")
    if declared > _MAX_HEAP:
        raise ValueError(f"the frame claims {declared} decompressed bytes, which is implausible")
    out = bytearray()
    try:
        dobj = zstandard.ZstdDecompressor().decompressobj()
        for start in range(0, len(raw), 1 << 20):
            out += dobj.decompress(raw[start:start + (1 << 20)])
            if len(out) > declared:
                break
    except zstandard.ZstdError as err:
        raise ValueError(str(err)) from None
    if len(out) != declared:
        raise ValueError(f"the frame declares {declared} bytes but decompresses to {len(out)}")
    return bytes(out)


def read_heap(view: BinaryView, info: ImageInfo) -> Heap | None:
    """The heap of a decoded image, or None when it has none (split 1.13 images keep it in the .ji)."""
    if info.image_data is None or info.image_size is None:
        return None
    addr, size = info.image_data, info.image_size
    if size > _MAX_HEAP:
        return Heap(addr, size, False, None, f"jl_system_image_size is {size}, which is implausible")
    try:
        raw = view.read_bytes(addr, size)
    except InputError as err:
        return Heap(addr, size, False, None, f"the {size} heap bytes cannot be read: {err.problem}")
    if not raw.startswith(ZSTD_MAGIC):
        return Heap(addr, size, False, raw)
    try:
        return Heap(addr, size, True, decompress(raw))
    except ValueError as err:
        return Heap(addr, size, True, None, f"the zstd-compressed heap does not decompress: {err}")
