"""The stub objects that ship in ``stubs/`` (built from the ``.s`` files there by ``stubs/build.py``).

``dllmain-<arch>.o``: the ``_DllMainCRTStartup`` Julia puts into every Windows package image
(docs/julia-linking.md §2); pylinkjl links it when an archive lacks it. ``pseudo-reloc-<arch>.o``: a no-op
``_pei386_runtime_relocator`` for the Windows lines that allow runtime pseudo relocations.
"""

from __future__ import annotations

from pathlib import Path

from pylinkjl.errors import TargetError
from pylinkjl.resources import data_dir
from pylinkjl.target import Target


def dll_entry_stub(target: Target) -> Path:
    """The COFF object defining ``target.dll_entry_symbol``. Raises TargetError for non-Windows targets."""
    return _windows_stub(target, "dllmain")


def pseudo_reloc_stub(target: Target) -> Path:
    """The COFF object defining ``_pei386_runtime_relocator`` (mangled for i686), doing nothing."""
    return _windows_stub(target, "pseudo-reloc")


def _windows_stub(target: Target, kind: str) -> Path:
    if target.os != "windows":
        raise TargetError(f"{target.name} is not a Windows target: only Windows targets take the {kind} stub (a COFF object)")
    path = data_dir("stubs") / f"{kind}-{target.arch}.o"
    if not path.is_file():
        raise FileNotFoundError(f"stub object {path} is missing from this installation")
    return path
