"""The ``_DllMainCRTStartup`` objects that ship in ``stubs/`` (built from ``stubs/dllmain-<arch>.s``).

Julia puts this stub into every Windows package image (julia-linking.md §2); pylinkjl links the
committed object when an archive lacks it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import TargetError
from .resources import data_dir
from .target import Target


def dll_entry_stub(target: Target) -> Path:
    """The COFF object defining ``target.dll_entry_symbol``. Raises TargetError for non-Windows targets."""
    if target.os != "windows":
        raise TargetError(f"{target.name} has no DLL entry point; only Windows targets take the "
                          "_DllMainCRTStartup stub")
    path = data_dir("stubs") / f"dllmain-{target.arch}.o"
    if not path.is_file():
        raise FileNotFoundError(f"stub object {path} is missing from this installation")
    return path
