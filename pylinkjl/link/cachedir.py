"""pylinkjl's cache folder: generated stub libraries and LLD probe results, both keyed by content."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def default_cache_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$PYLINKJL_CACHE_DIR``, else ``$XDG_CACHE_HOME/pylinkjl``, else ``~/.cache/pylinkjl``."""
    env = os.environ if environ is None else environ
    if env.get("PYLINKJL_CACHE_DIR"):
        return Path(env["PYLINKJL_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "pylinkjl"
    return Path.home() / ".cache" / "pylinkjl"


def read_json(name: str) -> dict[str, Any]:
    """A small JSON record from the cache folder ({} when missing or unreadable: a cache is optional)."""
    try:
        data = json.loads((default_cache_root() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(name: str, data: dict[str, Any]) -> None:
    """Replace a cache record atomically; failures are ignored (the cache is an optimisation)."""
    path = default_cache_root() / name
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
