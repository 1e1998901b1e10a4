"""Mach-O ad-hoc code signature check: the CodeDirectory must cover the file and match every page."""

from __future__ import annotations

import hashlib
import struct

from pylinkjl.binfmt.lief.base import BinaryView
from pylinkjl.binfmt.lief.records import CodeSignature


def parse_code_signature(view: BinaryView, offset: int, size: int) -> CodeSignature:
    """Check the ad-hoc signature's CodeDirectory: it must cover the file up to the signature and
    every page hash must match (dyld kills an arm64 process whose pages do not)."""
    def bad(problem: str) -> CodeSignature:
        return CodeSignature(offset, size, None, None, False, problem)

    if offset + size > view.file_size or size < 12:
        return bad(f"signature ({size} bytes at {offset:#x}) lies outside the file ({view.file_size} bytes)")
    blob = view.file_bytes(offset, size)
    magic, _length, count = struct.unpack(">III", blob[:12])
    if magic != 0xFADE0CC0:
        return bad(f"signature magic is {magic:#x}, not an embedded-signature SuperBlob")
    cd_off = None
    for i in range(min(count, (size - 12) // 8)):
        btype, boff = struct.unpack(">II", blob[12 + 8 * i:20 + 8 * i])
        if btype == 0 and boff + 40 <= size:
            cd_off = boff
            break
    if cd_off is None:
        return bad("signature has no CodeDirectory")
    cd = blob[cd_off:]
    if len(cd) < 40:
        return bad("the CodeDirectory is truncated")
    (cmagic, _clen, _ver, _flags, hash_off, _ident, _nspecial, ncode, code_limit, hash_size, hash_type,
     _plat, page_log) = struct.unpack_from(">IIIIIIIIIBBBB", cd, 0)
    if cmagic != 0xFADE0C02:
        return bad(f"CodeDirectory magic is {cmagic:#x}")
    page = 1 << page_log if page_log else 0
    if code_limit != offset:
        return CodeSignature(offset, size, code_limit, page, False,
                             f"the signature covers {code_limit} bytes but sits at offset {offset}")
    algo = {1: "sha1", 2: "sha256", 3: "sha256"}.get(hash_type)
    if algo is None or not page:
        return CodeSignature(offset, size, code_limit, page, None, f"unknown hash type {hash_type}")
    want_pages = -(-code_limit // page)
    if ncode != want_pages or hash_off + ncode * hash_size > len(cd):
        return CodeSignature(offset, size, code_limit, page, False,
                             f"{ncode} page hashes for {want_pages} pages")
    for i in range(ncode):
        chunk = view.file_bytes(i * page, min(page, code_limit - i * page))
        digest = hashlib.new(algo, chunk).digest()[:hash_size]
        if digest != cd[hash_off + i * hash_size:hash_off + (i + 1) * hash_size]:
            return CodeSignature(offset, size, code_limit, page, False,
                                 f"page {i} (file offset {i * page:#x}) does not match its hash")
    return CodeSignature(offset, size, code_limit, page, True)
