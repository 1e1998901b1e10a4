"""The library API, named as in Julia's ``Base.Linking``.

    plan = plan_link(LinkRequest(...))       # decide (pure)
    link_image_cmd(path, out, ...)          # the argv Julia's link_image_cmd would build (list[str])
    link_image(path, out, ...)              # plan and run; returns a LinkResult
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pylinkjl.link.plan import LinkPlan, LinkRequest, julia_verbose_linking, plan_link
from pylinkjl.link.run import LinkResult, execute
from pylinkjl.target import Target, parse_target

log = logging.getLogger("pylinkjl.link.api")

PathLike = str | os.PathLike[str]


def make_request(path: PathLike | Sequence[PathLike], out: PathLike, *, target: Target | str | None = None,
                 verbose: bool | None = None, **options: Any) -> LinkRequest:
    """A LinkRequest from friendly arguments. ``path`` is one input or several; ``target`` a Target or
    any spelling :func:`parse_target` accepts; ``verbose`` (None: from JULIA_VERBOSE_LINKING) passes
    ``--verbose`` to LLD; other keywords are LinkRequest fields."""
    inputs = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path)
    if isinstance(target, str):
        target = parse_target(target)
    if verbose is None:
        verbose = julia_verbose_linking()
    for key in ("julia_home", "lld"):
        if options.get(key) is not None:
            options[key] = Path(options[key])
    return LinkRequest(inputs=tuple(Path(p) for p in inputs), output=Path(out), target=target,
                       lld_verbose=verbose, **options)


def link_plan(path: PathLike | Sequence[PathLike], out: PathLike, **options: Any) -> LinkPlan:
    """Plan the link without running it (the planning API)."""
    return plan_link(make_request(path, out, **options))


def link_image_cmd(path: PathLike | Sequence[PathLike], out: PathLike, **options: Any) -> list[str]:
    """The full LLD argv for linking ``path`` into ``out`` (LLD writes to a staging path beside ``out``)."""
    return list(link_plan(path, out, **options).argv)


def link_image(path: PathLike | Sequence[PathLike], out: PathLike, *, force_response_file: bool = False,
               **options: Any) -> LinkResult:
    """Link ``path`` (Julia's object archive, or several objects/archives) into the package image ``out``."""
    return execute(link_plan(path, out, **options), force_response_file=force_response_file)
