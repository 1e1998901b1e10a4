"""The lazy LIEF import (deliberately never at module level) and LIEF's name quirk."""

from __future__ import annotations

from typing import Any


def load_lief() -> Any:
    import lief  # heavy import, deliberately local: pylinkjl link must never pay for it

    lief.logging.disable()
    return lief


def as_text(value: Any) -> str:
    """LIEF hands back bytes for names that are not valid UTF-8 (corrupt files): always give a str."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
