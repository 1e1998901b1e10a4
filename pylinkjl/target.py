"""Targets: the seven (OS, architecture) pairs a Julia package image can be linked for.

This is the only module that knows how each target is spelled (`arm64` vs `aarch64`, `i386pep` vs
`arm64pe`, `.so` vs `.dylib` vs `.dll`, which symbols get a leading underscore).
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from typing import Literal

from pylinkjl.errors import TargetError

OS = Literal["linux", "macos", "windows"]
Arch = Literal["x86_64", "aarch64", "i686"]
Format = Literal["elf", "macho", "coff"]
LibrarySearch = Literal["elf", "darwin", "mingw"]  # whose rules turn -lNAME into a file

FORMAT_OF_OS: dict[OS, Format] = {"linux": "elf", "macos": "macho", "windows": "coff"}
OS_OF_FORMAT: dict[Format, OS] = {fmt: os_ for os_, fmt in FORMAT_OF_OS.items()}
_LIBRARY_SEARCH: dict[OS, LibrarySearch] = {"linux": "elf", "macos": "darwin", "windows": "mingw"}
_JULIA_KERNEL: dict[OS, str] = {"linux": "Linux", "macos": "Darwin", "windows": "WINNT"}  # Sys.KERNEL, in .ji headers
_PLATFORM_OS: dict[str, OS] = {"linux": "linux", "darwin": "macos", "win32": "windows", "cygwin": "windows"}


@dataclass(frozen=True, order=True)
class Target:
    """An OS and architecture pair that pylinkjl links for."""

    os: OS
    arch: Arch

    # -- names ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short form, e.g. ``linux-x86_64``."""
        return f"{self.os}-{self.arch}"

    @property
    def triple(self) -> str:
        return {
            "linux": f"{self.arch}-linux-gnu",
            "macos": f"{self.darwin_arch}-apple-darwin",
            "windows": f"{self.arch}-w64-mingw32",
        }[self.os]

    @property
    def llvm_triple(self) -> str:
        """Triple for llc/llvm-mc/clang (macOS with an explicit minimum version)."""
        if self.os == "macos":
            return f"{self.darwin_arch}-apple-macos{self.default_macos_version}"
        return self.triple

    def __str__(self) -> str:
        return self.name

    # -- object format facts -------------------------------------------------------------------
    @property
    def format(self) -> Format:
        return FORMAT_OF_OS[self.os]

    @property
    def library_search(self) -> LibrarySearch:
        """Which linker's rules find ``-lNAME``: GNU ld's (ELF), ld64's (Mach-O) or MinGW ld's (Windows)."""
        return _LIBRARY_SEARCH[self.os]

    @property
    def julia_kernel(self) -> str:
        """Julia's name for the OS (``Sys.KERNEL``), as a ``.ji`` header spells it."""
        return julia_kernel(self.os)

    @property
    def dlext(self) -> str:
        return {"linux": "so", "macos": "dylib", "windows": "dll"}[self.os]

    @property
    def pointer_size(self) -> int:
        return 4 if self.arch == "i686" else 8

    @property
    def symbol_prefix(self) -> str:
        """What the object files put before a C name: Mach-O and i686 COFF add ``_``."""
        return "_" if self.os == "macos" or (self.os == "windows" and self.arch == "i686") else ""

    def mangle(self, name: str) -> str:
        return self.symbol_prefix + name

    # -- linker spellings ----------------------------------------------------------------------
    @property
    def darwin_arch(self) -> str:
        """``-arch`` value of ld64 (``arm64``, never ``aarch64``)."""
        return "arm64" if self.arch == "aarch64" else self.arch

    @property
    def mingw_emulation(self) -> str:
        """``-m`` value of LLD's MinGW driver. Julia itself only knows i386pep / i386pe."""
        return {"x86_64": "i386pep", "i686": "i386pe", "aarch64": "arm64pe"}[self.arch]

    @property
    def julia_mingw_emulation(self) -> str:
        """What Julia's ``base/linking.jl`` passes: ``i386pep`` on x86_64, ``i386pe`` otherwise."""
        return "i386pep" if self.arch == "x86_64" else "i386pe"

    @property
    def coff_machine(self) -> str:
        """``/machine:`` value of lld-link."""
        return {"x86_64": "x64", "i686": "x86", "aarch64": "arm64"}[self.arch]

    @property
    def dll_entry_symbol(self) -> str:
        """The object-file name of the stub Julia injects (stdcall-mangled on i686)."""
        return "__DllMainCRTStartup@12" if self.arch == "i686" else "_DllMainCRTStartup"

    @property
    def default_macos_version(self) -> str:
        return "11.0" if self.arch == "aarch64" else "10.14"


ALL_TARGETS: tuple[Target, ...] = (
    Target("linux", "x86_64"),
    Target("linux", "aarch64"),
    Target("macos", "x86_64"),
    Target("macos", "aarch64"),
    Target("windows", "x86_64"),
    Target("windows", "i686"),
    Target("windows", "aarch64"),
)

_ARCH_ALIASES = {
    "x86_64": "x86_64", "amd64": "x86_64", "x64": "x86_64",
    "aarch64": "aarch64", "arm64": "aarch64",
    "i686": "i686", "i386": "i686", "i586": "i686", "x86": "i686",
}
_OS_ALIASES = {
    "linux": "linux", "linux-gnu": "linux", "gnu": "linux",
    "macos": "macos", "darwin": "macos", "apple-darwin": "macos", "apple": "macos", "osx": "macos", "mac": "macos",
    "windows": "windows", "win": "windows", "win32": "windows", "win64": "windows", "w64-mingw32": "windows",
    "mingw32": "windows", "w64-windows-gnu": "windows", "windows-gnu": "windows", "pc-windows-gnu": "windows",
}


def _os_of(parts: list[str]) -> str | None:
    """Find the OS in the tail of a GNU triple (vendor and version suffixes allowed)."""
    for i in range(len(parts)):
        tail = "-".join(parts[i:])
        tail_noversion = tail.rstrip("0123456789.")
        for cand in (tail, tail_noversion):
            if cand in _OS_ALIASES:
                return _OS_ALIASES[cand]
    for p in parts:
        base = p.rstrip("0123456789.")
        if base in ("darwin", "macos", "macosx"):
            return "macos"
        if base in ("linux",):
            return "linux"
        if base in ("mingw32", "windows", "win32"):
            return "windows"
    return None


def parse_target(text: str) -> Target:
    """Parse a GNU triple (``x86_64-linux-gnu``, ``arm64-apple-darwin``, ``i686-w64-mingw32``) or a
    short form (``linux-x86_64``, ``macos-arm64``, ``windows-x86_64``). Raises TargetError."""
    spelled = text.strip().lower()
    parts = [p for p in spelled.split("-") if p]
    target: Target | None = None
    if len(parts) >= 2:
        if parts[0] in _ARCH_ALIASES:  # triple: arch first
            os_ = _os_of(parts[1:])
            if os_ is not None:
                target = Target(os_, _ARCH_ALIASES[parts[0]])  # type: ignore[arg-type]
        elif parts[-1] in _ARCH_ALIASES:  # short form: os-arch
            os_ = _OS_ALIASES.get("-".join(parts[:-1]))
            if os_ is not None:
                target = Target(os_, _ARCH_ALIASES[parts[-1]])  # type: ignore[arg-type]
    if target is None or target not in ALL_TARGETS:
        valid = ", ".join(f"{t.name} ({t.triple})" for t in ALL_TARGETS)
        raise TargetError(f"unknown target {text!r}; valid targets are: {valid}")
    return target


def host_target() -> Target:
    """The target this Python runs on (raises TargetError on an unsupported host)."""
    machine = platform.machine().lower()
    os_ = host_os()
    arch = _ARCH_ALIASES.get(machine)
    if os_ is None or arch is None or Target(os_, arch) not in ALL_TARGETS:  # type: ignore[arg-type]
        raise TargetError(f"this host ({sys.platform}, {machine}) is not a pkgimage target; pass --target")
    return Target(os_, arch)  # type: ignore[arg-type]


def host_os() -> OS | None:
    """The OS this Python runs on, or None for one Julia has no package images for."""
    return _PLATFORM_OS.get(sys.platform)


def target_of_format(fmt: Format, arch: str) -> Target | None:
    """The target whose images are ``fmt`` files for ``arch`` (None: no such pkgimage target)."""
    t = Target(OS_OF_FORMAT[fmt], arch)  # type: ignore[arg-type]
    return t if t in ALL_TARGETS else None


def julia_kernel(os_: OS) -> str:
    """Julia's name for an OS (``Sys.KERNEL``: Linux, Darwin, WINNT), as a ``.ji`` header spells it."""
    return _JULIA_KERNEL[os_]


def os_of_kernel(kernel: str) -> OS | None:
    """The OS of a ``.ji`` header's kernel name (None: one pylinkjl does not link for, e.g. FreeBSD)."""
    if kernel == "Windows":
        return "windows"
    return next((os_ for os_, name in _JULIA_KERNEL.items() if name == kernel), None)
