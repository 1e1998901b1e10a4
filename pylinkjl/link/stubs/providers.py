"""Which runtime library provides each symbol a package image leaves undefined.

Julia's split (docs/julia-linking.md §3.2, and a real juliac Windows library): the data in
``jl_exported_data.inc`` lives in the public ``libjulia``, and so does ``jl_parse_opts`` (a loader function);
every other runtime symbol (``ijl_*``,
``jl_f_*``, other ``jl_*``, ``julia__*``, ``__julia_personality``) in ``libjulia-internal``; libm calls
in ``openlibm``; compiler helpers such as ``__divti3`` in ``libgcc_s``; the rest in the C library.
A symbol is only ever assigned to a library the link line names (``-l``); when its first choice is
absent the next one in its chain is taken, and that is logged.

Names here are plain C names; :func:`c_name` turns an object-file name into one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache

from pylinkjl.resources import package_path
from pylinkjl.target import Target

log = logging.getLogger("pylinkjl.link.stubs.providers")

_DATA_FILE = package_path("data", "libjulia-exported-data.txt")

# Data symbols of libjulia-internal that package-image code refers to directly.
INTERNAL_DATA: frozenset[str] = frozenset({
    "jl_small_typeof", "jl_RTLD_DEFAULT_handle", "jl_libjulia_handle", "jl_libjulia_internal_handle",
    "jl_exe_handle", "jl_crtdll_handle", "jl_winsock_handle", "jl_tls_offset", "jl_pgcstack_key",
})

# Functions of the public libjulia (the loader library) that compiled code calls: the real 1.13.1 juliac
# libraries (Linux and Windows) import jl_parse_opts from libjulia, and libjulia-internal 1.13.1 has none.
LOADER_FUNCTIONS: frozenset[str] = frozenset({"jl_parse_opts"})

# C-library data (the rest of what the C library provides is code).
C_DATA: frozenset[str] = frozenset({
    "stdin", "stdout", "stderr", "environ", "_environ", "__environ", "errno", "_iob", "__stack_chk_guard",
    "optarg", "optind", "opterr", "timezone", "daylight", "tzname", "_timezone", "_daylight", "_tzname",
    "signgam",
})

_LIBM_BASE = (
    "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "copysign", "cos", "cosh",
    "drem", "erf", "erfc", "exp", "exp10", "exp2", "expm1", "fabs", "fdim", "finite", "floor", "fma",
    "fmax", "fmin", "fmod", "frexp", "gamma", "hypot", "ilogb", "isinf", "isnan", "j0", "j1", "jn", "ldexp",
    "lgamma", "lgamma_r", "llrint", "llround", "log", "log10", "log1p", "log2", "logb", "lrint", "lround",
    "modf", "nan", "nearbyint", "nextafter", "nexttoward", "pow", "remainder", "remquo", "rint", "round",
    "scalb", "scalbln", "scalbn", "significand", "sin", "sincos", "sinh", "sqrt", "tan", "tanh", "tgamma",
    "trunc", "y0", "y1", "yn", "cabs", "cacos", "cacosh", "carg", "casin", "casinh", "catan", "catanh",
    "ccos", "ccosh", "cexp", "cimag", "clog", "conj", "cpow", "cproj", "creal", "csin", "csinh", "csqrt",
    "ctan", "ctanh"
)
# openlibm internals that compiled code (or <math.h> macros) reach directly.
_LIBM_INTERNALS = (
    "__signbit", "__signbitf", "__signbitl", "__fpclassify", "__fpclassifyd", "__fpclassifyf",
    "__fpclassifyl", "__isinf", "__isinff", "__isinfl", "__isnan", "__isnanf", "__isnanl", "__isfinite",
    "__isfinitef", "__isfinitel", "__isnormal", "__isnormalf", "__isnormall", "__exp10", "__exp10f",
    "__sincos", "__sincosf", "__sincospi", "__sincospif", "__sinpi", "__sinpif", "__cospi", "__cospif",
    "__tanpi", "__tanpif", "__sincos_stret", "__sincosf_stret", "__sincospi_stret", "__sincospif_stret"
)
LIBM_FUNCTIONS: frozenset[str] = frozenset(
    [n for base in _LIBM_BASE for n in (base, base + "f", base + "l")] + list(_LIBM_INTERNALS)
)

# compiler-rt / libgcc helpers (integer, float conversion, complex, half/bfloat, stack probes).
_COMPILER_HELPER = re.compile(
    r"""^_{0,1}__(?:
        (?:u?divmod|u?div|u?mod|mul|ash[lr]|lshr|neg|clz|ctz|ffs|parity|popcount|bswap|abs|cmp|ucmp)[sdt]i[234]
      | mulo[sdt]i4 | negv?[sdt]i2 | addv[sdt]i3 | subv[sdt]i3 | mulv[sdt]i3 | absv[sdt]i2
      | fix(?:uns)?[hsdxt]f[sdt]i | float(?:un)?[sdt]i[hsdxt]f
      | (?:mul|div)[hsdxt]c3 | powi[sdxt]f2
      | (?:extend|trunc)(?:[hsdxt]f|bf)(?:[hsdxt]f|bf)2 | gnu_[hf]2[hf]_ieee
      | (?:add|sub|mul|div)[sdt]f3 | (?:eq|ne|ge|gt|le|lt|un|cmp)[sdt]f2 | neg[sdt]f2
      | chkstk(?:_ms)? | clear_cache | emutls_get_address | enable_execute_stack
    )$""",
    re.VERBOSE,
)
_ATOMIC_HELPER = re.compile(r"^__atomic_\w+$")
_SSP = frozenset({"__stack_chk_fail", "__stack_chk_guard", "__chk_fail"})
_SSP_CHK = re.compile(r"^__\w+_chk$")  # __memcpy_chk, __strcpy_chk, ... (libssp on Windows)
_JULIA_INTERNAL = re.compile(r"^(?:i?jl_\w+|julia_\w+|__julia_personality|get_jl_\w+)$")
# Win32 API (CamelCase; stdcall-decorated "name@N" on i686): kernel32 when the line links it.
_WIN32_API = re.compile(r"^(?:[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*(?:@\d+)?|\w+@\d+)$")

# Names the linker itself defines (or that are not symbols of any library): never stubbed.
LINKER_DEFINED: frozenset[str] = frozenset({
    "_GLOBAL_OFFSET_TABLE_", "_DYNAMIC", "__dso_handle", "__ImageBase", "__image_base__", "_tls_used",
    "__CTOR_LIST__", "__DTOR_LIST__", "__RUNTIME_PSEUDO_RELOC_LIST__", "__RUNTIME_PSEUDO_RELOC_LIST_END__",
    "_pei386_runtime_relocator", "dyld_stub_binder", "__mh_dylib_header", "__mh_execute_header",
    "_DllMainCRTStartup", "DllMainCRTStartup", "_DllMainCRTStartup@12", "@feat.00", "@comp.id",
})

# Which -l names play each role, best first. The last resort on ELF/COFF is libjulia-internal.
_C_LIBRARY = {
    "linux": ("c",),
    "macos": ("System", "c"),
    "windows": ("msvcrt", "msvcrt-os", "ucrt", "ucrtbase"),
}
_JULIA = ("julia", "julia-debug")
_JULIA_INTERNAL_LIBS = ("julia-internal", "julia-internal-debug")


@lru_cache(maxsize=1)
def exported_data() -> frozenset[str]:
    """The data symbols of the public libjulia (shipped list, comments stripped)."""
    names = []
    for line in _DATA_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line)
    return frozenset(names)


def c_name(target: Target, raw: str) -> str | None:
    """The C name behind an object-file symbol, or None for a name no library provides.

    Strips the COFF import prefix (``__imp_``) and the target's ``_`` prefix (Mach-O, i686).
    """
    name = raw
    if target.format == "coff" and name.startswith("__imp_"):
        name = name[len("__imp_"):]
    prefix = target.symbol_prefix
    if prefix:
        if not name.startswith(prefix):
            return None  # a compiler-internal name such as "@feat.00" or "L_str"
        name = name[len(prefix):]
    if not name or name in LINKER_DEFINED or name.startswith((".", "@", "$")):
        return None
    return name


def is_data(name: str, data_hints: frozenset[str] = frozenset()) -> bool:
    """Whether a plain C name is data (hints first, then what we know of Julia and the C library)."""
    return name in data_hints or name in exported_data() or name in INTERNAL_DATA or name in C_DATA


def _chain(target: Target, name: str) -> tuple[str, ...]:
    """-l names that could provide ``name``, best first (the C library closes every chain)."""
    c_lib = _C_LIBRARY[target.os]
    if name in exported_data() or name in LOADER_FUNCTIONS:
        return _JULIA + _JULIA_INTERNAL_LIBS
    if _JULIA_INTERNAL.match(name):
        return _JULIA_INTERNAL_LIBS + _JULIA
    if name in LIBM_FUNCTIONS:
        return ("openlibm", "m") + c_lib
    if _COMPILER_HELPER.match(name):
        return ("gcc_s", "clang_rt", "compiler_rt") + c_lib
    if _ATOMIC_HELPER.match(name):
        return ("atomic", "gcc_s") + c_lib
    if target.os == "windows":
        if name in _SSP or _SSP_CHK.match(name):
            return ("ssp",) + c_lib
        if name.startswith(("pthread_", "sched_")):
            return ("pthread", "winpthread") + c_lib
        if _WIN32_API.match(name):
            return ("kernel32",) + c_lib
    if target.os == "linux" and name.startswith("pthread_"):
        return ("pthread",) + c_lib
    return c_lib


def assign_providers(target: Target, undefined: Iterable[str], data_hints: Iterable[str],
                     link_names: Sequence[str], provided: Collection[str] = ()
                     ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Map each undefined object-file symbol to the ``-l`` library that provides it.

    ``undefined`` are raw object-file names (``_foo`` on Mach-O/i686, ``__imp_foo`` on COFF);
    ``data_hints`` plain C names known to be data. Returns ``{link_name: (functions, data)}`` with
    sorted plain C names, one entry for every library that got at least one symbol.

    On macOS and ELF a name no listed library provides is left out (``-undefined dynamic_lookup`` or the
    ELF loader binds it at load time; the ``-z defs`` lines list the C library, which closes every
    chain); on COFF it goes to libjulia-internal (or the first -l name) with a warning, because Windows
    forbids undefined symbols.

    ``provided``: ``-l`` names a real Julia tree has (only the others are stubbed). A symbol whose provider is
    one of them is left to that real library, never put into a stub: should the real library lack it, LLD
    must say so (an import from a stub of ``msvcrt.dll`` would link and fail to load).
    """
    hints = frozenset(data_hints)
    real = frozenset(provided)
    listed = set(link_names) | real
    functions: dict[str, set[str]] = {}
    data: dict[str, set[str]] = {}
    for raw in undefined:
        name = c_name(target, raw)
        if name is None:
            continue
        chain = _chain(target, name)
        provider = next((lib for lib in chain if lib in listed), None)
        if provider in real:
            continue
        if provider is None:
            if target.os != "windows":
                # Mach-O links with -undefined dynamic_lookup; ELF lines without -z defs leave it to the
                # loader (Julia's process has libm and libc loaded). -z defs lines list libc, so never here.
                log.debug("%s: no listed library provides it; left to the loader", name)
                continue
            provider = next((lib for lib in _JULIA_INTERNAL_LIBS if lib in listed),
                            link_names[0] if link_names else None)
            if provider in real:
                continue
            if provider is None:
                log.warning("%s: no -l library at all to provide it", name)
                continue
            log.warning("%s: none of %s is on the link line; assigning it to %s",
                        name, "/".join(chain), provider)
        elif provider != chain[0]:
            log.info("%s: %s is not on the link line; assigning it to %s", name, chain[0], provider)
        (data if is_data(name, hints) else functions).setdefault(provider, set()).add(name)
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for lib in link_names:
        if lib in functions or lib in data:
            out[lib] = (tuple(sorted(functions.get(lib, ()))), tuple(sorted(data.get(lib, ()))))
    return out
