"""pylinkjl: link, verify and inspect Julia package images with LLD.

The public API is imported lazily so that ``import pylinkjl`` (and ``pylinkjl link``) stay fast and
never pull in LIEF.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Target": "target", "parse_target": "target", "host_target": "target", "ALL_TARGETS": "target",
    "PylinkjlError": "errors", "InputError": "errors", "TargetError": "errors", "LldNotFoundError": "errors",
    "LinkError": "errors", "MissingLibraryError": "errors", "VerificationError": "errors",
    "link_image": "linking", "link_image_cmd": "linking", "link_plan": "linking",
    "LinkRequest": "plan", "LinkPlan": "plan", "plan_link": "plan", "execute": "runner", "LinkResult": "runner",
    "verify_image": "verify", "relink_many": "batch", "read_ji": "ji",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pylinkjl' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
