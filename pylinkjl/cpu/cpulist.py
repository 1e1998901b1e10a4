"""A fleet of CPUs as ``--cpu`` takes it: ``haswell,znver3,neoverse-v1``, checked before any work starts.

Every name must be one :func:`pylinkjl.cpu.host.named_cpu` understands for some architecture
(Julia's names and aliases, LLVM names, psABI levels, archspec names), or ``native``/``host`` for this
machine. A bad name is a :class:`TargetError` (exit code 2) naming it, raised before a depot is scanned.
"""

from __future__ import annotations

from pylinkjl.cpu.host import WrongArchitecture, named_cpu
from pylinkjl.cpu.tables import NEWEST_LINE, load
from pylinkjl.errors import TargetError

# Architectures whose tables can name a CPU (newest line first: it knows the most names).
FLEET_ARCHES = ("x86_64", "aarch64")
_NEWEST = f"{NEWEST_LINE[0]}.{NEWEST_LINE[1]}"
_THIS_MACHINE = ("native", "host")


def split_cpus(text: str) -> list[str]:
    """``"haswell, znver3,,haswell"`` -> ``["haswell", "znver3"]`` (order kept, repeats dropped)."""
    names = [n.strip() for n in text.split(",")]
    out = list(dict.fromkeys(n for n in names if n))
    if not out:
        raise TargetError(f"--cpu {text!r}: no CPU name given", hint="e.g. --cpu haswell,znver3,neoverse-v1")
    return out


def arch_of_cpu(name: str) -> str:
    """The architecture (``x86_64`` / ``aarch64``) whose tables know ``name``; ``native`` for this machine.
    Raises TargetError for a name no table knows."""
    key = name.strip().lower()
    if key in _THIS_MACHINE:
        return "native"
    first_error: TargetError | None = None
    for arch in FLEET_ARCHES:
        try:
            named_cpu(key, load(_NEWEST, arch))
            return arch
        except WrongArchitecture:
            continue
        except TargetError as e:
            first_error = first_error or e
    x86 = load(_NEWEST, "x86_64")
    arm = load(_NEWEST, "aarch64")
    raise TargetError(f"unknown CPU {name!r}: not a Julia, LLVM or archspec CPU name for x86_64 or aarch64",
                      hint="x86_64 names include " + ", ".join(sorted(x86.cpus)[:12]) + ", ...; aarch64 names "
                      "include " + ", ".join(sorted(arm.cpus)[:10]) + ", ...; also x86-64-v2/v3/v4, zen4, "
                      "graviton3, m2, native") from first_error


def parse_cpu_list(text: str | None) -> list[str] | None:
    """``--cpu`` as given (None: this machine) -> the checked names, or TargetError for the first bad one."""
    if text is None:
        return None
    names = split_cpus(text)
    for n in names:
        arch_of_cpu(n)
    return names
