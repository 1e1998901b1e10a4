"""What the planner needs to know about this machine, gathered in one place so that planning is pure.

``plan_link(request, host=HostFacts(...))`` decides everything from the request, the files it names and
these facts; golden tests pass made-up facts and need neither LLD nor monkeypatching.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pylinkjl.errors import TargetError
from pylinkjl.link.cachedir import default_cache_root
from pylinkjl.link.libraries import loaded_libraries
from pylinkjl.link.lld import LldProbe, find_lld, target_flavor
from pylinkjl.target import Target, host_target


@dataclass(frozen=True)
class HostFacts:
    """What the planner may know about the machine, gathered before planning so that planning stays pure."""

    lld: LldProbe  # the LLD the link will run (found and probed)
    target: Target | None = None  # this machine, None when it is no target pylinkjl knows
    loaded: Mapping[str, Path] = field(default_factory=dict)  # libc / dynamic loader mapped into this process
    environ: Mapping[str, str] = field(default_factory=dict)  # MACOSX_DEPLOYMENT_TARGET, ...
    cache_root: Path | None = None  # stub libraries live in <cache_root>/stubs; None: the default


def safe_host_target() -> Target | None:
    try:
        return host_target()
    except TargetError:
        return None


def gather_host_facts(*, target: Target | None = None, lld: str | os.PathLike[str] | None = None,
                      julia_home: str | os.PathLike[str] | None = None,
                      environ: Mapping[str, str] = os.environ) -> HostFacts:
    """Look at this machine: find and probe LLD for ``target``'s flavor, read which libc and dynamic
    loader this process maps (Julia's ``_find_loaded``: only a host link against a real Julia tree uses them;
    without a tree, stubs stand in and ``/proc/self/maps`` is not read)."""
    host = safe_host_target()
    wanted = target or host or host_target()  # no target and an unknown host: host_target's own error
    probe = find_lld(explicit=lld, julia_home=julia_home, flavor=target_flavor(wanted), environ=environ)
    loaded = loaded_libraries() if host is not None and wanted == host and julia_home is not None else {}
    return HostFacts(lld=probe, target=host, loaded=loaded, environ=dict(environ),
                     cache_root=default_cache_root())  # the process's own, like the stub cache
