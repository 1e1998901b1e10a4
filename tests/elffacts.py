"""What llvm-readobj / llvm-readelf read from an ELF file: its DT_NEEDED, its imports with the library and symbol
version each needs, a library's version definitions. Tests compare pylinkjl's output with real binaries by them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .toolnames import LLVM_READELF, LLVM_READOBJ, run_tool

Imports = dict[str, tuple[str | None, str | None]]  # name -> (library the version need names, version)


def elf_facts(path: Path) -> tuple[list[str], Imports]:
    """(DT_NEEDED in order, every import with the library and version it needs) as llvm-readobj reads them."""
    doc = json.loads(run_tool([LLVM_READOBJ, "--elf-output-style=JSON", "--dynamic-table", "--version-info",
                               "--dyn-syms", str(path)]))[0]
    needed = [e["Library"] for e in doc["DynamicSection"] if e["Type"] == "NEEDED"]
    by_index: dict[int, tuple[str, str]] = {}
    for dep in doc.get("VersionRequirements", []):
        for entry in dep["Dependency"]["Entries"]:
            by_index[entry["Entry"]["Index"]] = (dep["Dependency"]["FileName"], entry["Entry"]["Name"])
    versions = [v["Symbol"]["Version"] for v in doc.get("VersionSymbols", [])] or [0] * len(doc["DynamicSymbols"])
    imports: Imports = {}
    for sym, version in zip(doc["DynamicSymbols"], versions):
        s = sym["Symbol"]
        if s["Section"]["Name"] == "Undefined" and s["Name"]["Name"]:
            imports[s["Name"]["Name"].split("@")[0]] = by_index.get(version, (None, None))
    return needed, imports


def version_definitions(path: Path) -> tuple[str, list[str]]:
    """(the BASE name, the other version nodes) a library defines, from llvm-readelf's text (llvm-readobj 19's
    JSON of version definitions is not valid JSON)."""
    base, nodes = "", []
    for m in re.finditer(r"Flags: (\S+)\s+Index: \d+\s+Cnt: \d+\s+Name: (\S+)",
                         run_tool([LLVM_READELF, "--version-info", str(path)])):
        if m.group(1) == "BASE":
            base = m.group(2)
        else:
            nodes.append(m.group(2))
    return base, nodes
