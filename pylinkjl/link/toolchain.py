"""Julia profiles: the link command of each Julia release line, loaded from ``toolchains/*.toml``.

The TOML files are the data; this module owns their whole template language: resolving a version to a
line and a (line, OS) pair to its argv template, the conditions (``debug``, ``exists:NAME``), what a
template needs (``-l`` names, ``{static:NAME}`` files, ``{libc}``/``{dynamic_loader}``) and filling it in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pylinkjl.errors import TargetError
from pylinkjl.resources import data_dir
from pylinkjl.versions import JuliaVersion

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


@dataclass(frozen=True)
class Conditional:
    """Arguments added only when ``condition`` holds: ``debug``, ``exists:NAME``, joined with ``and``."""

    condition: str
    args: tuple[str, ...]


Token = str | Conditional


@dataclass(frozen=True)
class Line:
    """A Julia release line of the toolchain table (``lines.toml``): its name, first version and source."""

    name: str
    first: JuliaVersion
    source: str


# What is linked: Julia's package images (base/linking.jl), system images with PackageCompiler's additions, or
# juliac libraries with JuliaC.jl's (the [kind.*] tables of toolchains/<os>.toml).
KINDS = ("pkgimage", "sysimage", "juliac-library")


@dataclass(frozen=True)
class Profile:
    """Julia's link command for one release line and one OS (and one kind of image)."""

    line: str
    os: str
    flavor: str
    default_args: tuple[Token, ...]
    argv: tuple[Token, ...]
    source: str
    kind: str = "pkgimage"
    kind_source: str = ""

    @property
    def name(self) -> str:
        suffix = "" if self.kind == "pkgimage" else f", {self.kind}"
        return f"julia-{self.line} ({self.os}{suffix})"


def _toolchains() -> Path:
    return data_dir("toolchains")


@cache
def _load(name: str) -> dict[str, Any]:
    path = _toolchains() / f"{name}.toml"
    with open(path, "rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


@cache
def lines() -> tuple[Line, ...]:
    """Every release line, oldest first."""
    data = _load("lines")
    out = tuple(Line(d["name"], JuliaVersion.parse(d["first"]), d.get("source", "")) for d in data["line"])
    return tuple(sorted(out, key=lambda line: line.first.sort_key()))


def default_line() -> str:
    return str(_load("lines")["default"])


def line_names() -> list[str]:
    return [line.name for line in lines()]


def resolve_line(version: str | None) -> str:
    """Map ``--julia-version`` (a version or a line name; None = the default) to a line name.

    A version without a patch number (``1.10``) means the newest release of that minor version."""
    if version is None:
        return default_line()
    if version in line_names():
        return version
    v = JuliaVersion.parse(version)
    if not v.patch_given:
        v = JuliaVersion(v.major, v.minor, 10**6)
    chosen = None
    newest = lines()[-1].first
    if (v.major, v.minor) > (newest.major, newest.minor):
        raise TargetError(f"Julia {version} is newer than any line pylinkjl knows: the newest is "
                          f"{lines()[-1].name} ({newest.major}.{newest.minor}-DEV); known lines: "
                          f"{', '.join(line_names())}",
                          hint="pass a known version or line name; a newer Julia's link command is not known yet")
    for line in lines():
        if line.first <= v:
            chosen = line.name
    if chosen is None or (v.major, v.minor) < (1, 9):
        raise TargetError(f"Julia {version} has no package images (they start with Julia 1.9); "
                          f"known lines: {', '.join(line_names())}")
    return chosen


def _tokens(raw: list[Any], where: str) -> tuple[Token, ...]:
    out: list[Token] = []
    for item in raw:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and set(item) == {"if", "args"}:
            out.append(Conditional(str(item["if"]), tuple(str(a) for a in item["args"])))
        else:
            raise ValueError(f"{where}: bad argv entry {item!r}")
    return tuple(out)


def _since(tokens: tuple[Token, ...], first: JuliaVersion) -> tuple[Token, ...]:
    """Settle the ``since:VERSION`` parts of conditions for a line whose first version is ``first``: a
    condition whose ``since`` fails drops its arguments; one that holds keeps the rest of its condition."""
    out: list[Token] = []
    base = (first.major, first.minor, first.patch)
    for token in tokens:
        if not isinstance(token, Conditional) or "since:" not in token.condition:
            out.append(token)
            continue
        rest, ok = [], True
        for part in (p.strip() for p in token.condition.split(" and ")):
            if part.startswith("since:"):
                v = JuliaVersion.parse(part[len("since:"):])
                ok = ok and base >= (v.major, v.minor, v.patch)
            else:
                rest.append(part)
        if not ok:
            continue
        args = token.args  # plain strings: conditions do not nest
        if rest:
            out.append(Conditional(" and ".join(rest), args))
        else:
            out.extend(args)
    return tuple(out)


def kind_names() -> tuple[str, ...]:
    return KINDS


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise TargetError(f"unknown image kind {kind!r}; known kinds: {', '.join(KINDS)}")
    return kind


@cache
def profile(line: str, os: str, kind: str = "pkgimage") -> Profile:
    """The profile of ``line`` (a line name) for ``os`` (linux, macos, windows) and ``kind`` (KINDS): a
    system image or juliac library adds its ``[kind.*]`` arguments after Julia's."""
    check_kind(kind)
    base = _line_profile(line, os)
    if kind == "pkgimage":
        return base
    data = _load(os)
    entry = data["kind"][kind]
    where = f"toolchains/{os}.toml [kind.{kind}]"
    first = next(li.first for li in lines() if li.name == line)
    extra = _since(_tokens(entry.get("args", []), where), first)
    return Profile(base.line, os, base.flavor, base.default_args, base.argv + extra, base.source, kind,
                   str(entry.get("source", "")))


@cache
def _line_profile(line: str, os: str) -> Profile:
    if line not in line_names():
        raise TargetError(f"unknown Julia line {line!r}; known lines: {', '.join(line_names())}")
    data = _load(os)
    table = data["line"]
    entry = table[line]
    seen = {line}
    while "same_as" in entry:  # a line whose command did not change on this OS
        ref = entry["same_as"]
        if ref in seen:
            raise ValueError(f"toolchains/{os}.toml: same_as cycle at {ref}")
        seen.add(ref)
        entry = table[ref]
    where = f"toolchains/{os}.toml [line.{line}]"
    source = next(li.source for li in lines() if li.name == line)
    return Profile(line, os, data["flavor"], _tokens(entry["default_args"], where),
                   _tokens(entry["argv"], where), source)


# -- the template language ------------------------------------------------------------------------

LOADED_KINDS = ("libc", "dynamic_loader")  # placeholders for what Julia takes from its own process


def julia_libraries(debug: bool) -> tuple[str, str]:
    """The ``-l`` names ``{julia_libs}`` stands for (Julia's ``libjulia`` and ``libjulia-internal``)."""
    return ("julia-debug", "julia-internal-debug") if debug else ("julia", "julia-internal")


@dataclass(frozen=True)
class Needs:
    """What a profile's command needs for one configuration (debug or not, which optional files exist)."""

    libraries: tuple[str, ...]  # -l names, in order, unique
    static: tuple[str, ...]  # {static:NAME} names
    loaded: tuple[str, ...]  # "libc", "dynamic_loader"


def needs(prof: Profile, debug: bool, exists: Callable[[str], bool]) -> Needs:
    libs: list[str] = list(julia_libraries(debug))
    static: list[str] = []
    loaded: list[str] = []

    def walk(tokens: tuple[Token, ...]) -> None:
        for token in tokens:
            if isinstance(token, Conditional):
                if condition_holds(token.condition, debug, exists):
                    walk(token.args)
                continue
            if re.fullmatch(r"-l[^{}]+", token):
                libs.append(token[2:])
            static.extend(re.findall(r"\{static:([^}]+)\}", token))
            loaded.extend(k for k in LOADED_KINDS if token == f"{{{k}}}")

    walk(prof.default_args + prof.argv)
    return Needs(tuple(dict.fromkeys(libs)), tuple(dict.fromkeys(static)), tuple(dict.fromkeys(loaded)))


def condition_holds(condition: str, debug: bool, exists: Callable[[str], bool],
                    given: Callable[[str], bool] = lambda name: False) -> bool:
    """Conditions of the toolchain files: ``debug``, ``exists:NAME`` (a static file), ``given:NAME`` (a value
    such as ``library_version`` was given), joined with ``and``; ``since:VERSION`` is settled per line when the
    profile is made."""
    for part in (p.strip() for p in condition.split(" and ")):
        if part == "debug":
            ok = debug
        elif part.startswith("exists:"):
            ok = exists(part[len("exists:"):])
        elif part.startswith("given:"):
            ok = given(part[len("given:"):])
        else:
            raise ValueError(f"unknown condition {part!r} in a toolchain profile")
        if not ok:
            return False
    return True


class Template:
    """Fills a profile's argv template in: ``{name}`` placeholders, list placeholders standing alone,
    ``{static:NAME}`` files, and conditional arguments."""

    def __init__(self, values: dict[str, list[str]], static: dict[str, Path], debug: bool,
                 exists: Callable[[str], bool]) -> None:
        self.values = values
        self.static = static
        self.debug = debug
        self._exists = exists

    def expand(self, tokens: Sequence[Token]) -> list[str]:
        out: list[str] = []
        for token in tokens:
            if isinstance(token, Conditional):
                if condition_holds(token.condition, self.debug, self._exists, self._given):
                    out.extend(self.expand(token.args))
                continue
            whole = re.fullmatch(r"\{([a-z_]+)\}", token)
            if whole and whole.group(1) in self.values:  # a list placeholder standing alone
                out.extend(self.values[whole.group(1)])
                continue
            out.append(re.sub(r"\{([a-z_]+(?::[^}]+)?)\}", self._scalar, token))
        return out

    def _given(self, name: str) -> bool:
        return any(self.values.get(name, []))

    def _scalar(self, m: re.Match[str]) -> str:
        key = m.group(1)
        if key.startswith("static:"):
            return str(self.static[key[len("static:"):]])
        values = self.values[key]
        if len(values) != 1:
            raise ValueError(f"placeholder {{{key}}} is a list and must stand alone")
        return values[0]
