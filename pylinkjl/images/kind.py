"""Which kind of Julia image a file is: a package image, a system image, or a juliac library.

All three carry the same multi-versioning tables and loader symbols (``jl_image_pointers``,
``jl_system_image_data``, ...). What tells them apart:

* a **package image**'s heap starts with a copy of the cache header (julia-linking.md §3.7), or the image has
  no heap at all (master's split images keep it in the ``.ji``);
* a **system image**'s heap has no cache header (Julia's ``sys.so``, PackageCompiler's sysimages);
* a **juliac library** is a system image that also exports ``@ccallable`` entry points (juliac
  ``--output-lib``, PackageCompiler's ``create_library``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pylinkjl.images.layout import LOADER_SYMBOLS

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView
    from pylinkjl.images.heap import Heap
    from pylinkjl.images.imageinfo import ImageInfo

ImageKind = Literal["package-image", "system-image", "juliac-library"]
KINDS: tuple[ImageKind, ...] = ("package-image", "system-image", "juliac-library")
KIND_NAMES: dict[str, str] = {"package-image": "package image", "system-image": "system image",
                              "juliac-library": "juliac library"}

# Exports that belong to Julia's loader or runtime glue, never to the user.
_JULIA_EXPORTS = frozenset(n for line in LOADER_SYMBOLS.values() for n, _ in line) | {
    "jl_RTLD_DEFAULT_handle_pointer", "get_jl_RTLD_DEFAULT_handle_addr", "_DllMainCRTStartup",
    "DllMainCRTStartup", "_DllMainCRTStartup@12", "DllMainCRTStartup@12"}
# Names Julia's code generator gives (exported too when a sysimage is linked with --export-all-symbols).
_GENERATED = re.compile(r"^(julia_|jfptr_|japi\d?_|jlcapi_|jlplt_|jlsys_|jl_|ijl_|j_|j1_|tojlinvoke|_j_|__|\.)"
                        r"|[.#]")


@dataclass
class KindInfo:
    kind: ImageKind
    reason: str
    entry_points: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return KIND_NAMES[self.kind]

    @property
    def is_system_image(self) -> bool:
        return self.kind != "package-image"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "kind_name": self.name, "why": self.reason, "entry_points": self.entry_points}


def entry_points(view: BinaryView) -> list[str]:
    """Exported functions that are neither Julia's loader symbols nor code-generator names: the
    ``@ccallable`` entry points (sorted)."""
    out = []
    for name in view.exported_symbols():
        if name in _JULIA_EXPORTS or _GENERATED.search(name):
            continue
        addr = view.export_address(name)
        sec = view.section_at(addr) if addr is not None else None
        if sec is not None and sec.executable:
            out.append(name)
    return sorted(out)


def image_kind(view: BinaryView, heap: Heap | None) -> KindInfo:
    """The kind of a decoded image (see the module docstring), with the reason."""
    entries = entry_points(view)
    if heap is None:
        return KindInfo("package-image", "no jl_system_image_data: the heap lives in the .ji (split package image)",
                        entries)
    if heap.data is None:
        return KindInfo("package-image", f"the heap cannot be read ({heap.problem}); taken as a package image",
                        entries)
    if heap.has_cache_header:
        return KindInfo("package-image", "the heap starts with a cache header", entries)
    packed = "zstd-compressed heap" if heap.compressed else "heap"
    if entries:
        return KindInfo("juliac-library", f"{packed} without a cache header, and {len(entries)} @ccallable entry "
                                          "point(s) exported", entries)
    return KindInfo("system-image", f"{packed} without a cache header, no @ccallable entry points", entries)


def read_image_kind(path: str | Path, *, julia_version: str | None = None) -> tuple[ImageInfo, KindInfo]:
    """Open ``path`` once: its decoded tables and its kind (see :func:`pylinkjl.images.decode.read_image`)."""
    from pylinkjl.binfmt.lief import open_binary
    from pylinkjl.images.decode import decode_image
    from pylinkjl.images.heap import read_heap

    with open_binary(path) as view:
        info = decode_image(view, julia_version=julia_version)
        return info, image_kind(view, read_heap(view, info))
