"""pylinkjl: link, verify and inspect Julia package and system images with LLD.

The public API is imported lazily so that ``import pylinkjl`` (and ``pylinkjl link``) stay fast and
never pull in LIEF; the ``TYPE_CHECKING`` block gives type checkers the real names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pylinkjl.batch import relink_many
    from pylinkjl.caches.ji import read_ji
    from pylinkjl.errors import (
        InputError,
        LinkError,
        LldNotFoundError,
        MissingLibraryError,
        PylinkjlError,
        TargetError,
        VerificationError,
    )
    from pylinkjl.images.judge import judge_with_runtime
    from pylinkjl.images.verify import verify_image
    from pylinkjl.link.api import link_image, link_image_cmd, link_request
    from pylinkjl.link.plan import LinkPlan, LinkRequest, plan_link
    from pylinkjl.link.run import LinkResult, execute
    from pylinkjl.target import ALL_TARGETS, Target, host_target, parse_target

# public name -> module that defines it
_EXPORTS = {
    "Target": "target", "parse_target": "target", "host_target": "target", "ALL_TARGETS": "target",
    "PylinkjlError": "errors", "InputError": "errors", "TargetError": "errors", "LldNotFoundError": "errors",
    "LinkError": "errors", "MissingLibraryError": "errors", "VerificationError": "errors",
    "link_image": "link.api", "link_image_cmd": "link.api", "link_request": "link.api",
    "LinkRequest": "link.plan", "LinkPlan": "link.plan", "plan_link": "link.plan",
    "execute": "link.run", "LinkResult": "link.run",
    "verify_image": "images.verify", "judge_with_runtime": "images.judge", "relink_many": "batch",
    "read_ji": "caches.ji",
}

__all__ = ["ALL_TARGETS", "InputError", "LinkError", "LinkPlan", "LinkRequest", "LinkResult",
    "LldNotFoundError", "MissingLibraryError", "PylinkjlError", "Target", "TargetError",
    "VerificationError", "execute", "host_target", "judge_with_runtime", "link_image", "link_image_cmd", "link_request",
    "parse_target", "plan_link", "read_ji", "relink_many", "verify_image"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pylinkjl' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))
