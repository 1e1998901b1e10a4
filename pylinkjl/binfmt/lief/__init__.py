"""One small facade over LIEF for linked images (ELF ``.so``, Mach-O ``.dylib``, PE ``.dll``).

This is the only package that imports LIEF (always inside functions: ``pylinkjl link`` never pays for it).
LIEF parses the headers, sections, segments, load commands and directories; the large tables (ELF
``.rela.dyn``/``.dynsym``/``.symtab``, Mach-O ``nlist`` and export trie, PE base relocations) are read here
in bulk from a memory map of the file, because walking 150k LIEF objects from Python costs seconds where
one ``memoryview.cast`` costs milliseconds.

Addresses are the image's own virtual addresses (ELF ``p_vaddr``, Mach-O ``vmaddr``, PE RVAs); symbol
names are plain C names (Mach-O's and i686 COFF's leading ``_`` removed). Every read is bounds-checked:
malformed files raise :class:`~pylinkjl.errors.InputError` naming the file and the offset.

Modules: :mod:`.records` (plain results), :mod:`.base` (:class:`BinaryView`: mappings, sections, reads),
:mod:`.elf`, :mod:`.macho` (with :mod:`.exporttrie` and :mod:`.codesign`), :mod:`.pe`, :mod:`.opening`
(:func:`open_binary`), :mod:`.objects` (:func:`object_functions`).
"""

from __future__ import annotations

from pylinkjl.binfmt.lief.base import BinaryView
from pylinkjl.binfmt.lief.objects import object_functions
from pylinkjl.binfmt.lief.opening import open_binary
from pylinkjl.binfmt.lief.pe import lief_dir
from pylinkjl.binfmt.lief.records import BuildVersion, CodeSignature, FileKind, Format, PseudoRelocs, Section

__all__ = [
           "BinaryView",
           "BuildVersion",
           "CodeSignature",
           "FileKind",
           "Format",
           "PseudoRelocs",
           "Section",
           "lief_dir",
           "object_functions",
           "open_binary",
]
