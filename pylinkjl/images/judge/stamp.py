"""A stock image judged by a privatised runtime: the symbol version.

JuliaC's ``--privatize`` renames the version node of libjulia and libjulia-internal (``JL_LIBJULIA_1.13`` ->
``JL_<salt>_1.13``, same length) and stamps its own product likewise (docs/julia-linking.md §1.8). An image
linked for a stock Julia of the tree's version needs ``JL_LIBJULIA_1.13``, which glibc then refuses ("version
`JL_LIBJULIA_1.13' not found"). The judge gives the runtime a copy of the image stamped as the tree stamps its
own product, as it gives it links named as a stock tree names its files (``run._shim``). Only the stock node of
the tree's own version is restamped: an image that needs another version is left to fail, as it would.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pylinkjl.binfmt.files import mapped_file, read_file
from pylinkjl.binfmt.symversions import read_symbol_versions, with_needed_version
from pylinkjl.errors import PylinkjlError
from pylinkjl.images.judge.tree import RuntimeTree
from pylinkjl.link.stubs.libraries import julia_symbol_version

log = logging.getLogger("pylinkjl.images.judge")


def _defined(path: Path) -> set[str]:
    with mapped_file(path, "shared library") as data:
        versions = read_symbol_versions(data, str(path)) if data else None
    return set(versions.defined[1:]) if versions is not None else set()  # [0] is the BASE (the soname)


def tree_symbol_version(tree: RuntimeTree) -> str | None:
    """The version node the tree's libjulia and libjulia-internal both define (``JL_LIBJULIA_1.13``, or
    ``JL_ICl90UHn_1.13`` in a privatised tree), or None (none, several, or unreadable libraries)."""
    if tree.os != "linux" or tree.libjulia_internal is None:
        return None
    try:
        common = _defined(tree.libjulia) & _defined(tree.libjulia_internal)
    except PylinkjlError as exc:
        log.debug("cannot read the symbol versions of the tree: %s", exc)
        return None
    return common.pop() if len(common) == 1 else None


def stamp(image: Path, tree: RuntimeTree, folder: Path) -> tuple[Path, str] | None:
    """``(copy of image in folder, what was done)`` when the image needs the stock version node of the tree's
    version and the tree defines another one in its place; else None (the image is judged as it is)."""
    if tree.os != "linux" or not tree.version:
        return None
    major, minor = (tree.version.split(".") + ["0"])[:2]
    stock = julia_symbol_version(f"{major}.{minor}")
    own = tree_symbol_version(tree)
    if not stock or own is None or own == stock or not own.endswith(stock[len("JL_LIBJULIA"):]):
        return None
    try:
        stamped = with_needed_version(read_file(image, "a package image"), str(image), stock, own)
    except PylinkjlError as exc:
        log.debug("cannot read the symbol versions of %s: %s", image, exc)
        return None
    if stamped is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / image.name
    copy.write_bytes(stamped)
    return copy, f"symbol version {stock} -> {own} (the tree's privatised node) in a copy of the image"
