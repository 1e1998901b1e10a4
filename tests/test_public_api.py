"""The public names of ``pylinkjl``: lazily imported, all listed in ``__all__``, each resolving."""

from __future__ import annotations

import pylinkjl


def test_all_lists_every_lazy_export() -> None:
    assert sorted(pylinkjl.__all__) == sorted(pylinkjl._EXPORTS)


def test_every_public_name_resolves() -> None:
    for name in pylinkjl.__all__:
        assert getattr(pylinkjl, name) is not None, name
