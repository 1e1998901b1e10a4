"""Planning a link: from a request to the exact LLD command, without running anything.

Pure apart from looking at the files the request names (inputs, the Julia tree): what it needs to know
about this machine (LLD, the host, its loaded libc) comes in as HostFacts (link/host.py). The result is a
LinkPlan: the argv, the environment changes, the stub decisions and where the output goes. The
runner executes it; ``--dry-run`` and ``--json`` print it; golden tests compare it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import stat
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pylinkjl.errors import InputError, PylinkjlError, TargetError, filesystem_error
from pylinkjl.fs.identity import how_same
from pylinkjl.fs.leftovers import STAGING_PREFIX
from pylinkjl.link.deviations import Draft, Stage, apply_deviations
from pylinkjl.link.host import HostFacts, gather_host_facts
from pylinkjl.link.inputs import InputSummary, examine_inputs
from pylinkjl.link.libraries import find_static, resolve_libraries
from pylinkjl.link.lld import LldProbe, flavor_args
from pylinkjl.link.stubs.libraries import StubLibrary, StubSet
from pylinkjl.link.stubs.objects import dll_entry_stub
from pylinkjl.link.toolchain import Profile, Template, check_kind, julia_libraries, profile, resolve_line
from pylinkjl.target import Target, host_target

if TYPE_CHECKING:
    from pylinkjl.link.juliatree import JuliaTree

log = logging.getLogger("pylinkjl.link.plan")

TRUTHY = frozenset({"t", "T", "true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "1"})


def julia_verbose_linking(environ: Mapping[str, str] = os.environ) -> bool:
    """``JULIA_VERBOSE_LINKING`` as Julia 1.12+ reads it (Base.get_bool_env; anything else is false)."""
    return environ.get("JULIA_VERBOSE_LINKING", "") in TRUTHY


@dataclass(frozen=True)
class LinkRequest:
    """What the user asked for (the arguments of ``pylinkjl link`` / ``link_image``)."""

    inputs: tuple[Path, ...]
    output: Path
    target: Target | None = None  # None: the host
    julia_version: str | None = None  # version or line name; None: from julia_home, else the default line
    julia_home: Path | None = None
    debug: bool = False
    lld: Path | None = None
    macos_version: str | None = None
    macos_sdk: str | None = None
    stub_missing: bool = False
    lld_verbose: bool = False  # pass --verbose to LLD (-vv or JULIA_VERBOSE_LINKING)
    julia_exact: bool = False  # apply none of pylinkjl's deviations
    timeout: float | None = None
    staging_token: str | None = None  # fixed name of the staging folder (tests); random otherwise
    threads: int | None = None  # cap LLD's own threads (batch relinking); None: LLD decides
    allow_missing: bool = False  # plan even when the Julia tree lacks libraries (a dry run); such a plan
    # lists them in LinkPlan.missing and cannot be executed
    kind: str = "pkgimage"  # pkgimage, sysimage or juliac-library (toolchain.KINDS)
    library_version: str | None = None  # macOS -compatibility_version/-current_version of a sysimage or library

    def __post_init__(self) -> None:
        check_timeout(self.timeout)
        check_kind(self.kind)
        check_library_version(self.library_version, self.kind)


def check_timeout(seconds: float | None) -> None:
    """A timeout is a finite number of seconds above zero (inf, nan, 0 and negatives are refused)."""
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise TargetError(f"--timeout must be a finite number of seconds above 0, not {seconds!r}")


_PACKED_VERSION = re.compile(r"(\d{1,5})(?:\.(\d{1,3}))?(?:\.(\d{1,3}))?")


def check_library_version(version: str | None, kind: str) -> None:
    """``--library-version`` is a Mach-O dylib version, what ld64 (and LLD) accept for ``-current_version``:
    ``X[.Y[.Z]]``, X at most 65535, Y and Z at most 255; and only a system image or library has one."""
    if version is None:
        return
    if kind == "pkgimage":
        raise TargetError(f"--library-version {version!r} applies to --kind sysimage or juliac-library, not to a "
                          "package image")
    m = _PACKED_VERSION.fullmatch(version)
    limits = (65535, 255, 255)
    if m is None or any(g is not None and int(g) > top for g, top in zip(m.groups(), limits)):
        raise TargetError(f"--library-version {version!r} is not a library version: X[.Y[.Z]] with X at most "
                          "65535 and Y, Z at most 255 (e.g. 1.2.3)")


def check_output_spelling(output: str | os.PathLike[str]) -> None:
    """The output as the user spelled it must name a file: not empty, and not ending in a path separator
    (``out/`` means a folder; ``Path`` would silently drop the slash and write a file called ``out``)."""
    text = os.fspath(output)
    if text == "":
        raise TargetError("the output path is empty: give the file name of the image (-o NAME.so)")
    if text.endswith(("/", os.sep)) or (os.altsep is not None and text.endswith(os.altsep)):
        raise TargetError(f"the output {text!r} ends with a path separator, so it names a folder: give the file "
                          f"name of the image (e.g. {text}Name.so)")


_SPECIAL = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
            stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


def check_output(output: Path, inputs: Sequence[Path]) -> Path:
    """The output must be a regular file or not exist yet, and must not be one of the inputs: the link
    renames a new file over it, which would destroy a device node, FIFO or socket, or an input."""
    try:
        st = os.stat(output)
    except FileNotFoundError:
        return output
    except OSError as err:  # a name too long, a file where a folder should be, a symbolic-link loop, ...
        raise filesystem_error(err, "use it as the output", output) from None
    kind = _SPECIAL.get(stat.S_IFMT(st.st_mode))
    if kind is not None:
        raise InputError(output, f"is {kind}; the output must be a regular file or a new name "
                                 "(pylinkjl never replaces special files or folders)")
    for given in inputs:
        if how_same(given, output) is not None:
            raise InputError(output, f"is also an input ({given}); linking would overwrite it")
    return output


@dataclass(frozen=True)
class StubDecision:
    """Whether a ``_DllMainCRTStartup`` stub object is added to a Windows link, and why."""

    inject: bool
    symbol: str | None
    object: Path | None
    reason: str


@dataclass(frozen=True)
class MacosVersion:
    """The ``-platform_version`` minimum and SDK of a macOS link, and where they came from."""

    minimum: str
    sdk: str
    source: str


@dataclass(frozen=True)
class LinkPlan:
    """Everything a link will do, decided before anything runs: argv, environment, staging and output."""

    request: LinkRequest
    target: Target
    line: str
    profile: Profile
    julia: JuliaTree | None
    lld: LldProbe
    argv: tuple[str, ...]
    env: dict[str, str]  # variables set for LLD (on top of the current environment)
    output: Path
    staging_dir: Path  # created beside the output; LLD writes here; renamed into place on success
    staged_output: Path
    inputs: InputSummary
    entry_stub: StubDecision
    stubs: StubSet | None = None  # generated stand-ins, rendered once here; the runner builds these bytes
    stubbed: tuple[str, ...] = ()  # what was replaced by generated stubs, for the log
    deviations: tuple[str, ...] = ()
    macos: MacosVersion | None = None
    notes: tuple[str, ...] = field(default=())
    missing: tuple[str, ...] = ()  # what the Julia tree lacks (only with LinkRequest.allow_missing)

    @property
    def timeout(self) -> float | None:
        return self.request.timeout

    @property
    def julia_version(self) -> str:
        """The Julia version the image is linked for (asked for, else the tree's), or the line's name: what
        ``verify_image(julia_version=...)`` expects the image to match."""
        return self.request.julia_version or (self.julia.version if self.julia else None) or self.line

    @property
    def stub_libraries(self) -> tuple[StubLibrary, ...]:
        return self.stubs.libraries if self.stubs is not None else ()

    @property
    def stub_dir(self) -> Path | None:
        return self.stubs.directory if self.stubs is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "triple": self.target.triple,
            "julia_line": self.line,
            "kind": self.profile.kind,
            "julia_home": str(self.julia.home) if self.julia else None,
            "lld": {"path": str(self.lld.candidate.path), "source": self.lld.candidate.source,
                    "version": ".".join(map(str, self.lld.version)) if self.lld.version else None},
            "argv": list(self.argv),
            "env": dict(self.env),
            "output": str(self.output),
            "staged_output": str(self.staged_output),
            "inputs": [{"path": str(f.path), "kind": f.kind, "members": list(f.members)} for f in self.inputs.files],
            "entry_stub": {"inject": self.entry_stub.inject, "symbol": self.entry_stub.symbol,
                           "object": str(self.entry_stub.object) if self.entry_stub.object else None,
                           "reason": self.entry_stub.reason},
            "stub_dir": str(self.stub_dir) if self.stub_dir else None,
            "stub_libraries": [lib.file_name for lib in self.stub_libraries],
            "stubbed": list(self.stubbed),
            "deviations": list(self.deviations),
            "macos_version": None if self.macos is None else
            {"minimum": self.macos.minimum, "sdk": self.macos.sdk, "source": self.macos.source},
            "notes": list(self.notes),
            "missing": list(self.missing),
        }


# -- pieces of the plan ------------------------------------------------------------------------------


def _choose_line(request: LinkRequest, tree: JuliaTree | None, target: Target) -> str:
    if request.julia_version is not None:
        if tree is not None and tree.version is not None and request.julia_version != tree.version:
            log.warning("--julia-version %s overrides the version of %s (%s, from %s)", request.julia_version,
                        tree.home, tree.version, tree.version_source)
        return resolve_line(request.julia_version)
    if tree is None:
        return resolve_line(None)
    if tree.version is None:
        raise InputError(tree.home, "nothing in this Julia tree tells its version (no include/julia/"
                                    "julia_version.h, share/julia/base/version_git.jl or VERSION, no "
                                    "libjulia file name with one, such as lib/libjulia.so.1.13.1, and no "
                                    "readable ijl_ver_string in bin/libjulia-internal.dll)",
                         hint="pass --julia-version (e.g. --julia-version 1.13.1) to say which Julia it is")
    line = resolve_line(tree.version)
    # release-1.13 still says 1.13.0-rc1 but ships the C runtime files it now links explicitly.
    if line == "1.13.0-rc1":
        marker = {"linux": "crtbeginS.o", "windows": "dllcrt2.o", "macos": None}[target.os]
        if marker and (tree.private_libdir / marker).is_file():
            log.info("%s has %s: using the release-1.13 line", tree.home, marker)
            return "release-1.13"
    return line


def _macos_version(request: LinkRequest, tree: JuliaTree | None, target: Target,
                   environ: Mapping[str, str]) -> MacosVersion | None:
    if target.os != "macos":
        return None
    if request.macos_version:
        return MacosVersion(request.macos_version, request.macos_sdk or request.macos_version, "--macos-version")
    env_min = environ.get("MACOSX_DEPLOYMENT_TARGET")
    if env_min:
        return MacosVersion(env_min, request.macos_sdk or env_min, "MACOSX_DEPLOYMENT_TARGET")
    if tree is not None:
        from pylinkjl.binfmt.machoversion import read_build_version

        for lib in sorted(tree.libdir.glob("libjulia*.dylib")):
            if "internal" in lib.name or lib.is_symlink():
                continue
            try:
                bv = read_build_version(lib, target.darwin_arch)
            except PylinkjlError as err:  # an unreadable libjulia only costs us its version
                log.warning("cannot read the macOS version of %s: %s", lib, err)
                continue
            if bv is not None:
                return MacosVersion(bv.minos, request.macos_sdk or bv.sdk or bv.minos, f"LC_BUILD_VERSION of {lib}")
    default = target.default_macos_version
    return MacosVersion(default, request.macos_sdk or default, f"default for {target.darwin_arch}")


def _entry_stub(target: Target, prof: Profile, summary: InputSummary, exact: bool) -> StubDecision:
    if target.os != "windows":
        return StubDecision(False, None, None, "not a Windows target")
    if "-e" in prof.default_args:
        return StubDecision(False, None, None, "this Julia line links the MinGW C runtime, whose "
                                               "DllMainCRTStartup is the entry point")
    symbol = target.dll_entry_symbol
    if summary.defines(symbol):
        return StubDecision(False, symbol, None, f"the inputs define {symbol}")
    if exact:
        return StubDecision(False, symbol, None, f"no input defines {symbol}, but --julia-exact injects nothing")
    return StubDecision(True, symbol, dll_entry_stub(target), f"no input defines {symbol}: injecting pylinkjl's stub")


PE_EXPORT_LIMIT = 65535  # PE export ordinals are 16-bit


def check_export_limit(summary: InputSummary, inputs: Sequence[Path], added: int = 0) -> None:
    """``--export-all-symbols`` exports every global the inputs define; more than 65,535 cannot be numbered
    (LLD: "too many exported symbols", PackageCompiler.jl#892, #1099). Checked before LLD runs. ``added``:
    globals of the objects pylinkjl adds (the entry stub's ``_DllMainCRTStartup`` is exported too)."""
    n = None if summary.defined_count is None else summary.defined_count + added
    if n is not None and n > PE_EXPORT_LIMIT:
        raise InputError(inputs[0] if len(inputs) == 1 else None,
                         f"defines {n} global symbols{' (with the entry stub pylinkjl adds)' if added else ''}, "
                         "which --export-all-symbols would export; a DLL's export "
                         f"ordinals stop at {PE_EXPORT_LIMIT}",
                         hint="put fewer packages into the image, or link for Julia < 1.11 (PackageCompiler exports "
                              "all symbols only from 1.11 on)")


# -- the planner -------------------------------------------------------------------------------------


def _open_julia(home: Path) -> JuliaTree:
    from pylinkjl.link.juliatree import open_tree  # only a link against a real install reads one

    return open_tree(home)


def plan_link(request: LinkRequest, *, host: HostFacts | None = None,
              environ: Mapping[str, str] = os.environ) -> LinkPlan:
    """Decide everything about a link without running it. Raises the pylinkjl error that fits.

    Pure given ``host``; without it the facts are gathered from this machine first (``environ`` is
    where LLD is searched for)."""
    if host is None:
        host = gather_host_facts(target=request.target, lld=request.lld, julia_home=request.julia_home,
                                 environ=environ)
    target = request.target or host.target or host_target()
    tree = _open_julia(request.julia_home) if request.julia_home is not None else None
    if tree is not None and tree.os is not None and tree.os != target.os:
        raise TargetError(f"--julia-home {tree.home} is a {tree.os} install, but the target is {target.name}",
                          hint="point --julia-home at a Julia for the target's OS, or leave it out to link "
                               "against generated stub libraries")
    if tree is not None and tree.os is None:  # nothing in it names an OS (headers only, a partial layer)
        log.info("%s: no libjulia tells its OS; laying it out for the target's (%s)", tree.home, target.os)
        tree = dataclasses.replace(tree, os=target.os)
    line = _choose_line(request, tree, target)
    prof = profile(line, target.os, request.kind)
    summary = examine_inputs(request.inputs, target, probes=(target.dll_entry_symbol,
                                                             target.mangle("_pei386_runtime_relocator")),
                             count_defined="--export-all-symbols" in prof.argv)
    lld = host.lld
    debug = request.debug or (tree.debug if tree is not None else False)
    exact = request.julia_exact
    output = check_output(Path(request.output).absolute(), request.inputs)
    staging_dir = output.parent / f"{STAGING_PREFIX}{request.staging_token or uuid.uuid4().hex[:12]}"
    staged_output = staging_dir / output.name
    notes: list[str] = []

    entry = _entry_stub(target, prof, summary, exact)
    inputs = [str(Path(p).absolute()) for p in request.inputs]
    if entry.inject and entry.object is not None:
        inputs.append(str(entry.object))
    macos = _macos_version(request, tree, target, host.environ)
    libs = resolve_libraries(prof, target, tree, summary, debug=debug, lld_version=lld.version_string or "",
                             stub_missing=request.stub_missing,
                             loaded_here=host.loaded if target == host.target else {},
                             cache_root=host.cache_root,
                             julia_version=(tree.version or request.julia_version) if tree else None,
                             allow_missing=request.allow_missing)
    if tree is not None and libs.stubbed:
        notes.append(f"--stub-missing: generated stand-ins for {', '.join(libs.stubbed)}")
    for name, replacement in libs.renamed.items():
        notes.append(f"-l{name}: {libs.found[name]} in the tree, named in the command as {replacement}")
    draft = Draft(target=target, profile=prof, summary=summary, entry_symbol=entry.symbol, output=output,
                  inputs=inputs, values={}, args=[], body=[])
    # pylinkjl's deviations from Julia's command (deviations.py), stage by stage; none with --julia-exact
    def deviate(stage: Stage) -> list[str]:
        return [] if exact else apply_deviations(stage, draft)

    applied = deviate("inputs")
    draft.values = {
        "verbose": ["--verbose" if request.lld_verbose else ""],
        "empty": [""],
        "out": [str(staged_output)],
        "inputs": inputs,
        "force_load_inputs": [x for p in inputs for x in ("-force_load", p)],
        "julia_libs": [f"-l{name}" for name in julia_libraries(debug)],
        "darwin_arch": [target.darwin_arch],
        "macos_min": [macos.minimum if macos else ""],
        "macos_sdk": [macos.sdk if macos else ""],
        "mingw_emulation": [target.julia_mingw_emulation],
        "crt_entry": ["DllMainCRTStartup" if target.arch == "x86_64" else "_DllMainCRTStartup"],
        "soname": [output.name],
        "library_version": [request.library_version or ""],
        "libc": [str(libs.loaded.get("libc", ""))],
        "dynamic_loader": [str(libs.loaded.get("dynamic_loader", ""))],
        **{k: [v] for k, v in libs.dirs.items()},
    }
    applied += deviate("values")
    template = Template(draft.values, libs.static, debug,
                        (lambda name: find_static(tree, name).is_file()) if tree else (lambda name: False))
    draft.args = template.expand(prof.default_args)
    draft.body = template.expand(prof.argv)
    if libs.renamed:  # the tree has these only under runtime names, or needs a link-time alias
        draft.body = [libs.renamed.get(a[2:], a) if a.startswith("-l") else a for a in draft.body]
    if "--export-all-symbols" in draft.body:
        check_export_limit(summary, request.inputs, added=1 if entry.inject else 0)
    draft.body += [f"-L{d}" for d in libs.extra_dirs]  # after Julia's folders: real libraries win where they exist
    applied += deviate("command")
    if request.threads is not None:  # pylinkjl's own addition for batch work, not part of Julia's command
        draft.body.append(f"--threads={request.threads}")
    applied += deviate("final")
    argv = [str(lld.candidate.path), *flavor_args(lld.candidate, prof.flavor), *draft.args, *draft.body]

    return LinkPlan(
        request=request, target=target, line=line, profile=prof, julia=tree, lld=lld, argv=tuple(argv),
        env=dict(lld.candidate.env), output=output, staging_dir=staging_dir, staged_output=staged_output,
        inputs=summary, entry_stub=entry, stubs=libs.stubs,
        stubbed=libs.stubbed, deviations=tuple(dict.fromkeys(applied)), macos=macos, notes=tuple(notes),
        missing=libs.missing,
    )

