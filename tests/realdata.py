"""Where the real Julia caches of shared/fixtures/real are: beside the repository (as in CI), or named by
PYLINKJL_SHARED (no machine path is written here)."""

from __future__ import annotations

import os
from pathlib import Path


def _find() -> Path:
    candidates = [Path(__file__).resolve().parents[2] / "shared"]
    if os.environ.get("PYLINKJL_SHARED"):
        candidates.insert(0, Path(os.environ["PYLINKJL_SHARED"]))
    for shared in candidates:
        if (shared / "fixtures" / "real").is_dir():
            return shared / "fixtures" / "real"
    return candidates[0] / "fixtures" / "real"


REAL = _find()


def require_real() -> Path:
    """REAL, or skip the calling test module when the shared fixtures are not there."""
    import pytest

    if not REAL.is_dir():
        pytest.skip("shared/fixtures/real is not available", allow_module_level=True)
    return REAL
