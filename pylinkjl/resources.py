"""Where the data that ships with pylinkjl lives.

``stubs/`` and ``toolchains/`` sit at the top of the repository and are copied into the wheel as
``pylinkjl/_data/<name>``; from a source checkout (or an editable install) we read them in place.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def package_path(*parts: str) -> Path:
    """A file or folder inside the installed ``pylinkjl`` package (``samples/``, ``data/``)."""
    return _PACKAGE.joinpath(*parts)


def data_dir(name: str) -> Path:
    """Directory of the shipped data set ``name`` (``"stubs"`` or ``"toolchains"``)."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pylinkjl data directory {name!r} is missing from this installation")
