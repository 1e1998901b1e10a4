"""The checks of what the platform's loader needs: PE entry point, exports and pseudo relocations; Mach-O
build version, install name and code signature; ELF DT_NEEDED and text relocations."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pylinkjl.images.report import CheckResult, failed, not_applicable, passed

if TYPE_CHECKING:
    from pylinkjl.binfmt.lief import BinaryView

# -- Windows ---------------------------------------------------------------------------------------

def check_pe_entry(view: BinaryView) -> CheckResult:
    sym = view.entry_symbol
    nums = {"entry_rva": view.entry_point, "symbol": sym}
    if view.entry_point is None:
        return failed("pe-entry-point", "the DLL has no entry point (AddressOfEntryPoint is 0)", **nums)
    sec = view.section_at(view.entry_point)
    if sec is None or not sec.executable:
        return failed("pe-entry-point", f"the entry point {view.entry_point:#x} is not in an executable section",
                       **nums)
    if sym in ("_DllMainCRTStartup", "_DllMainCRTStartup@12"):
        return passed("pe-entry-point", "the entry point is Julia's _DllMainCRTStartup stub", **nums)
    if sym in ("DllMainCRTStartup", "DllMainCRTStartup@12"):
        return passed("pe-entry-point", "the entry point is the MinGW CRT's DllMainCRTStartup", **nums)
    what = f"symbol {sym}" if sym else "code that is neither Julia's stub nor a named CRT entry"
    return failed("pe-entry-point", f"the entry point {view.entry_point:#x} is {what}; Windows calls it as "
                                     "DllMain on load", **nums)


def check_pe_exports(view: BinaryView) -> CheckResult:
    n = view.export_count
    if n > 65535:  # ordinals 1..65535 (LLD numbers from 1 and refuses the 65,536th)
        return failed("pe-export-count", f"{n} exports: PE export ordinals stop at 65535", exports=n)
    return passed("pe-export-count", f"{n} exports (limit 65535)", exports=n)


def check_pe_pseudo_relocs(view: BinaryView) -> CheckResult:
    pr = view.pseudo_relocs
    if pr is None:
        return not_applicable("pe-pseudo-relocs", "the image has no COFF symbol table naming the pseudo-relocation list")
    nums = {"count": pr.count, "has_relocator": pr.has_relocator}
    rtld = view.export_address("jl_RTLD_DEFAULT_handle_pointer")
    if pr.count and not pr.has_relocator and rtld is not None and pr.targets and \
            all(rtld <= t < rtld + 8 for t in pr.targets):
        # Julia 1.9 - 1.10.3 images auto-import this one pointer; the loader reads it only for system
        # images, so Julia's own images carry it unrelocated too.
        return passed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocation(s), all in "
                       "jl_RTLD_DEFAULT_handle_pointer, which Julia checks only for system images", **nums)
    if pr.count and not pr.has_relocator:
        return failed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocation(s) but no "
                                           "_pei386_runtime_relocator: those pointers stay unrelocated", **nums)
    return passed("pe-pseudo-relocs", f"{pr.count} runtime pseudo-relocations"
                   + (" with a relocator" if pr.count else ""), **nums)


# -- macOS ------------------------------------------------------------------------------------------

def _ver(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text))


def check_macho_build_version(view: BinaryView) -> CheckResult:
    bv = view.build_version
    if bv is None:
        return failed("macho-build-version", "no LC_BUILD_VERSION (or LC_VERSION_MIN_MACOSX): dyld cannot tell "
                                              "the platform")
    nums = {"platform": bv.platform, "minos": bv.minos, "sdk": bv.sdk}
    if bv.platform != "macos":
        return failed("macho-build-version", f"platform is {bv.platform}, not macos", **nums)
    floor = (11, 0) if view.arch == "aarch64" else (10, 9)
    if _ver(bv.minos) < floor:
        return failed("macho-build-version", f"minimum macOS {bv.minos} is below what {view.arch} supports "
                                              f"({'.'.join(map(str, floor))})", **nums)
    return passed("macho-build-version", f"macos, minimum {bv.minos}, sdk {bv.sdk}", **nums)


def check_macho_install_name(view: BinaryView) -> CheckResult:
    name = view.install_name
    if not name:
        return failed("macho-install-name", "no LC_ID_DYLIB install name: not a loadable dylib")
    return passed("macho-install-name", name, install_name=name)


def check_macho_signature(view: BinaryView) -> CheckResult:
    sig = view.code_signature
    if sig is None:
        if view.arch == "aarch64":
            return failed("macho-code-signature", "arm64 images must carry a code signature (LLD signs ad hoc "
                                                   "unless -no_adhoc_codesign)")
        return not_applicable("macho-code-signature", f"{view.arch} images need no code signature")
    nums = {"offset": sig.offset, "size": sig.size, "code_limit": sig.code_limit, "page_size": sig.page_size,
            "file_size": view.file_size}
    if sig.hashes_ok is False or sig.problem and sig.hashes_ok is not True:
        return failed("macho-code-signature", sig.problem or "the signature does not match", **nums)
    return passed("macho-code-signature", f"signature covers {sig.code_limit} bytes, every page hash matches",
                   **nums)


# -- ELF --------------------------------------------------------------------------------------------

def runtime_library(name: str) -> str | None:
    """``libjulia`` or ``libjulia-internal`` when ``name`` (a DT_NEEDED entry or a dylib install name) is one of
    them, grafted (``ICl90UHn_libjulia.so.1.13.1``) or not, debug or not; else None. One parser of the runtime's
    file names: :func:`pylinkjl.link.juliatree.parse_runtime_name`."""
    from pylinkjl.link.juliatree import parse_runtime_name

    parsed = parse_runtime_name(name.rsplit("/", 1)[-1])
    if parsed is None or parsed[1].startswith("julia-codegen"):
        return None
    return "libjulia-internal" if parsed[1].startswith("julia-internal") else "libjulia"


def check_elf_needed(view: BinaryView) -> CheckResult:
    needed = list(view.needed_libraries)
    found = {runtime_library(n): n for n in needed}
    # the code binds to libjulia-internal; libjulia holds nothing it calls, so --as-needed (release-1.13 line)
    # may drop it
    if "libjulia-internal" not in found:
        missing = [lib for lib in ("libjulia", "libjulia-internal") if lib not in found]
        return failed("elf-needed", f"DT_NEEDED lacks {' and '.join(missing)} (has: {', '.join(needed) or 'none'})",
                       needed=needed)
    grafted = [n for lib, n in found.items() if lib is not None and not n.startswith(lib)]
    note = f" (grafted name{'s' if len(grafted) > 1 else ''}: {', '.join(grafted)})" if grafted else ""
    if "libjulia" not in found:
        note += " (no libjulia: nothing binds to it, --as-needed left it out)"
    return passed("elf-needed", ", ".join(needed) + note, needed=needed)


def check_elf_textrel(view: BinaryView) -> CheckResult:
    if view.has_textrel:
        return failed("elf-textrel", "the image has text relocations (DT_TEXTREL): code was not compiled PIC")
    return passed("elf-textrel", "no text relocations")
