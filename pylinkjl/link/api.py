"""The library API, named as in Julia's ``Base.Linking``.

    request = link_request(path, out, ...)  # the friendly arguments, checked, as a LinkRequest
    plan = plan_link(request)               # decide (pure given HostFacts)
    result = execute(plan)                  # run
    link_image_cmd(path, out, ...)          # the argv Julia's link_image_cmd would build (list[str])
    link_image(path, out, ...)              # all three steps; returns a LinkResult
    link_image(path, out, verify=True, ji=cache)   # ... and verify, reseal, before the output is replaced
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pylinkjl.link.plan import LinkRequest, check_output_spelling, julia_verbose_linking, plan_link
from pylinkjl.link.run import LinkResult, execute
from pylinkjl.target import Target, parse_target

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    class SharedLinkOptions(TypedDict, total=False):
        """The keywords of :func:`link_request` that a batch shares among its items (each item has its own
        target and Julia version; the batch sets LLD's threads)."""

        julia_home: PathLike | None
        debug: bool
        lld: PathLike | None
        macos_version: str | None
        macos_sdk: str | None
        stub_missing: bool
        julia_exact: bool
        timeout: float | None
        staging_token: str | None
        verbose: bool | None
        kind: str
        library_version: str | None
        allow_missing: bool

    class LinkOptions(SharedLinkOptions, total=False):
        """The keywords of :func:`link_request`, for the functions that pass them on."""

        target: Target | str | None
        julia_version: str | None
        threads: int | None

PathLike = str | os.PathLike[str]


def link_request(path: PathLike | Sequence[PathLike], out: PathLike, *, target: Target | str | None = None,
                 julia_version: str | None = None, julia_home: PathLike | None = None, debug: bool = False,
                 lld: PathLike | None = None, macos_version: str | None = None, macos_sdk: str | None = None,
                 stub_missing: bool = False, julia_exact: bool = False, timeout: float | None = None,
                 threads: int | None = None, staging_token: str | None = None,
                 verbose: bool | None = None, kind: str = "pkgimage",
                 library_version: str | None = None, allow_missing: bool = False) -> LinkRequest:
    """A LinkRequest from friendly arguments. ``path`` is one input or several; ``target`` a Target or any
    spelling :func:`parse_target` accepts (None: this machine); ``verbose`` (None: from
    JULIA_VERBOSE_LINKING) passes ``--verbose`` to LLD; ``kind`` is what is linked: ``pkgimage`` (Julia's
    command), ``sysimage`` (with PackageCompiler's additions) or ``juliac-library`` (with JuliaC.jl's);
    ``allow_missing`` plans even when the Julia tree lacks libraries (what ``--dry-run`` does: the plan lists
    them in ``missing`` and cannot be executed). The rest are the options of ``pylinkjl link``."""
    inputs = (path,) if isinstance(path, (str, os.PathLike)) else tuple(path)
    check_output_spelling(out)
    return LinkRequest(
        inputs=tuple(Path(p) for p in inputs), output=Path(out),
        target=parse_target(target) if isinstance(target, str) else target,
        julia_version=julia_version, julia_home=None if julia_home is None else Path(julia_home), debug=debug,
        lld=None if lld is None else Path(lld), macos_version=macos_version, macos_sdk=macos_sdk,
        stub_missing=stub_missing, lld_verbose=julia_verbose_linking() if verbose is None else verbose,
        julia_exact=julia_exact, timeout=timeout, staging_token=staging_token, threads=threads, kind=kind,
        library_version=library_version, allow_missing=allow_missing)


def link_image_cmd(path: PathLike | Sequence[PathLike], out: PathLike, **options: Unpack[LinkOptions]) -> list[str]:
    """The full LLD argv for linking ``path`` into ``out`` (LLD writes to a staging path beside ``out``)."""
    return list(plan_link(link_request(path, out, **options)).argv)


def link_image(path: PathLike | Sequence[PathLike], out: PathLike, *, force_response_file: bool = False,
               verify: bool = False, ji: PathLike | None = None, **options: Unpack[LinkOptions]) -> LinkResult:
    """Link ``path`` (Julia's object archive, or several objects/archives) into the package image ``out``.
    ``verify``: verify the new image; ``ji``: reseal that cache for it. Both happen before the image is
    renamed over ``out``, so a failure leaves an existing ``out`` (and ``ji``) untouched."""
    return execute(plan_link(link_request(path, out, **options)), force_response_file=force_response_file,
                   verify=verify, ji=ji)
