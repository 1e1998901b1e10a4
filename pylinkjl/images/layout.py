"""Which of Julia's four package-image layouts an image has, and the symbols each layout's loader looks up.

A *layout* (1.9, 1.10, 1.11 for 1.11-1.12, 1.13 for release-1.13 and master) is how the loader's tables are
shaped; a toolchain *line* (:mod:`pylinkjl.link.toolchain`, nine of them) is how Julia links. Several lines share
one layout: :func:`layout_of_version` maps a Julia version or line name to its layout.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pylinkjl.errors import InputError, TargetError

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

Layout = Literal["1.9", "1.10", "1.11", "1.13"]
LAYOUTS: tuple[Layout, ...] = ("1.9", "1.10", "1.11", "1.13")
LAYOUT_NAMES: dict[str, str] = {
    "1.9": "Julia 1.9",
    "1.10": "Julia 1.10",
    "1.11": "Julia 1.11-1.12",
    "1.13": "Julia 1.13 line (release-1.13, master)",
}

TAG = 0x80000000
VAL = 0x7FFFFFFF

# Symbols the loader looks up with jl_dlsym, per layout: (name, required?)
LOADER_SYMBOLS: dict[str, tuple[tuple[str, bool], ...]] = {
    "1.9": (("jl_system_image_data", True), ("jl_system_image_size", True),
            ("jl_sysimg_fvars_base", False), ("jl_sysimg_fvars_offsets", True),
            ("jl_sysimg_gvars_base", False), ("jl_sysimg_gvars_offsets", True),
            ("jl_dispatch_target_ids", True), ("jl_dispatch_reloc_slots", True),
            ("jl_dispatch_fvars_idxs", True), ("jl_dispatch_fvars_offsets", True),
            ("jl_pgcstack_func_slot", False), ("jl_pgcstack_key_slot", False), ("jl_tls_offset_image", False)),
    "1.10": (("jl_system_image_data", True), ("jl_system_image_size", True), ("jl_image_pointers", True)),
    "1.11": (("jl_system_image_data", True), ("jl_system_image_size", True), ("jl_image_pointers", True),
             ("get_jl_RTLD_DEFAULT_handle_addr", True)),
    "1.13": (("jl_image_pointers", True), ("get_jl_RTLD_DEFAULT_handle_addr", True),
             ("jl_image_unpack", True), ("jl_system_image_checksum", True),
             ("jl_system_image_data", False), ("jl_system_image_size", False)),
}


def layout_of_version(text: str) -> Layout:
    """Map a Julia version (``1.10.4``, ``1.13.0-rc1``, ``1.14-DEV``) or a link-profile line name
    (``release-1.13``, ``master``) to its image layout."""
    name = text.strip().lower()
    if name in ("master", "nightly"):
        return "1.13"
    if name.startswith("release-"):
        text = name[len("release-"):]
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:[.\-+].*)?", text.strip())
    if m is None or m.group(1) != "1":
        raise TargetError(f"cannot read Julia version {text!r}; expected e.g. 1.9, 1.10.4 or 1.13.0-rc1")
    minor = int(m.group(2))
    if minor < 9:
        raise TargetError(f"Julia {text} predates package images (1.9)")
    if minor == 9:
        return "1.9"
    if minor == 10:
        return "1.10"
    if minor <= 12:
        return "1.11"
    return "1.13"


def lookup(view: BinaryView, name: str) -> int | None:
    """Address of ``name``: exported if possible, else from the static symbol table (so that a missing
    export fails the export check, not every table check)."""
    addr = view.export_address(name)
    return addr if addr is not None else view.symbol_address(name)


def detect_layout(view: BinaryView) -> tuple[Layout, str]:
    """The image layout and a sentence saying which symbols decided it. For the 9-pointer (1.10)
    and 8-pointer (1.11-1.12) shard tables this is only a first guess: :func:`decode_image` settles it
    from the tables themselves, since 1.10.4+ images define the 1.11 RTLD getter."""
    if lookup(view, "jl_image_pointers") is not None:
        for name in ("jl_image_unpack", "jl_system_image_checksum"):
            if lookup(view, name) is not None:
                return "1.13", f"defines jl_image_pointers and {name}"
        if lookup(view, "jl_RTLD_DEFAULT_handle_pointer") is not None:
            return "1.10", "defines jl_image_pointers and jl_RTLD_DEFAULT_handle_pointer"
        for name in ("jl_fvar_base_0", "jl_fvar_offsets_0"):
            if view.symbol_address(name) is not None:
                return "1.10", f"defines jl_image_pointers and {name} (9-pointer shards)"
        if lookup(view, "get_jl_RTLD_DEFAULT_handle_addr") is not None:
            return "1.11", "defines jl_image_pointers and get_jl_RTLD_DEFAULT_handle_addr"
        return _guess_shard_layout(view)
    for name in ("jl_sysimg_fvars_offsets", "jl_dispatch_target_ids", "jl_dispatch_fvars_idxs"):
        if lookup(view, name) is not None:
            return "1.9", f"defines {name} (no jl_image_pointers)"
    raise InputError(view.path, "is not a Julia package image: it defines neither jl_image_pointers "
                                "(Julia 1.10+) nor jl_sysimg_fvars_offsets (Julia 1.9)",
                     hint="was it linked without --whole-archive / -all_load (an empty image), or is it "
                          "another library?")


def rtld_marker(view: BinaryView) -> str | None:
    """Which RTLD symbol the image defines: the data pointer (1.9 - 1.10.3) or the getter (1.10.4+)."""
    for name in ("jl_RTLD_DEFAULT_handle_pointer", "get_jl_RTLD_DEFAULT_handle_addr"):
        if lookup(view, name) is not None:
            return name
    return None


def expected_rtld_marker(julia_version: str) -> str:
    """The RTLD symbol a Julia version's images define (PR #54572 swapped it in 1.10.4)."""
    from pylinkjl.versions import DLLIMPORT_AND_RTLD_GETTER_SINCE, JuliaVersion

    try:
        v = JuliaVersion.parse(julia_version)
    except TargetError:  # a line name such as release-1.13 or master: all after 1.10.4
        return "get_jl_RTLD_DEFAULT_handle_addr"
    old = v.patch_given and v < DLLIMPORT_AND_RTLD_GETTER_SINCE  # "1.10" alone means the newest 1.10
    return "jl_RTLD_DEFAULT_handle_pointer" if old else "get_jl_RTLD_DEFAULT_handle_addr"


def _guess_shard_layout(view: BinaryView) -> tuple[Layout, str]:
    """Without the marker symbols, tell 9-pointer (1.10) from 8-pointer (1.11+) shards: a 1.11
    shard starts with a pointer to a size_t count, a 1.10 shard with a code address."""
    try:
        ptrs_addr = lookup(view, "jl_image_pointers")
        assert ptrs_addr is not None
        p = view.read_pointers(ptrs_addr, 2)
        if p[1]:
            first = view.read_pointer(p[1])
            sec = view.section_at(first) if first else None
            if sec is not None and sec.executable:
                return "1.10", "jl_image_pointers' first shard starts with a code address (9-pointer shards)"
    except InputError:
        pass
    return "1.11", "jl_image_pointers' first shard starts with a count pointer (8-pointer shards)"


# =================================================================================================
