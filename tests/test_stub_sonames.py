"""Images linked against pylinkjl's stub libraries ask for what real images of their line ask for: the same
DT_NEEDED names of libjulia / libjulia-internal, in order, and every Julia import from the same library with
the same symbol version. The real facts are read at test time (llvm-readobj) from real binaries: a 1.9 and a
1.10.10 package image (shared/fixtures/real) and the juliac 1.13.1 library of the runtime wheel, whose names
and version node JuliaC's privatisation grafted: the stock names are read from the version definitions of the
tree's own libraries (their BASE entries keep the soname they were linked with), the stock node is the one
JuliaC's privatize_linux.jl replaces (``JL_LIBJULIA_<x.y>`` -> ``JL_<salt>_<x.y>``). No real 1.11 / 1.12 Linux
image was available: there the version is the one real macOS images of those lines carry."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylinkjl.images.platformchecks import runtime_library
from pylinkjl.link.api import link_image
from pylinkjl.target import parse_target

from .elffacts import Imports, elf_facts, version_definitions
from .realdata import require_real
from .realruntime import require_runtime
from .toolnames import CLANG, LLVM_AR, LLVM_READOBJ, run_tool

REAL = require_real()
LINUX = parse_target("linux-x86_64")


def julia_part(needed: list[str], imports: Imports) -> tuple[list[str], Imports]:
    """The DT_NEEDED names of Julia's libraries and the imports bound to them (all imports of an image without
    symbol versions: nothing says where they bind)."""
    versioned = any(lib is not None for lib, _ in imports.values())
    keep = {n: v for n, v in imports.items()
            if (runtime_library(v[0] or "") is not None if versioned else v[0] is None)}
    return [n for n in needed if runtime_library(n) is not None], keep


def stock_juliac_facts() -> tuple[list[str], Imports]:
    """The juliac 1.13.1 library's Julia part, JuliaC's privatisation undone (names from the tree's version
    definitions, the node renamed back)."""
    info = require_runtime("manylinux_2_28_x86_64")
    stock_name, node = {}, set()
    for key in ("libjulia", "libjulia_internal"):
        lib = Path(info[key])
        base, nodes = version_definitions(lib)
        stock_name[runtime_library(lib.name)] = base
        node.add(tuple(n for n in nodes if not n.startswith("JL_LLVM_")))  # libjulia-internal's LLVM exports
    assert len(node) == 1, node  # libjulia and libjulia-internal define the same node
    (salted,) = node.pop()
    salt = Path(info["libjulia"]).name.split("_libjulia")[0]
    assert salted.startswith(f"JL_{salt}_")  # what JuliaC's version stamp writes
    stock_node = salted.replace(f"JL_{salt}_", "JL_LIBJULIA_")
    needed, imports = elf_facts(Path(info["image"]))
    needed, imports = julia_part(needed, imports)
    return ([stock_name[runtime_library(n)] for n in needed],
            {n: (stock_name[runtime_library(lib or "")], stock_node) for n, (lib, _) in imports.items()})


def object_importing(names: list[str], folder: Path) -> Path:
    """An archive whose one object refers to every name (pointers to them: each becomes an import)."""
    c = folder / "refs.c"
    decls = "".join(f'extern char s{i}[] __asm__("{n}");\n' for i, n in enumerate(names))
    c.write_text(decls + "void *pkg_refs[] = {" + ", ".join(f"s{i}" for i in range(len(names))) + "};\n")
    run_tool([CLANG, f"--target={LINUX.llvm_triple}", "-fPIC", "-c", str(c), "-o", str(folder / "refs.o")])
    run_tool([LLVM_AR, "rcs", str(folder / "refs.a"), str(folder / "refs.o")])
    return folder / "refs.a"


def real_image_facts(case: str) -> tuple[list[str], Imports]:
    if case == "1.13.1":
        return stock_juliac_facts()
    image = {"1.9.0": REAL / "alexwjung__dot_julia/linux-x86_64/compiled/v1.9/Preferences/pWSk8_LJMjr.so",
             "1.10.10": REAL / "kanji709__SimGBS.jl/linux-x86_64/compiled/v1.10/Glob/3FzEV_ujJ6A.so"}[case]
    needed, imports = elf_facts(image)
    return julia_part(needed, imports)


@pytest.mark.parametrize("version", ["1.9.0", "1.10.10", "1.13.1"])
def test_stub_linked_images_need_what_real_images_need(version: str, tmp_path: Path) -> None:
    real_needed, real_imports = real_image_facts(version)
    assert real_needed and real_imports
    archive = object_importing(sorted(real_imports), tmp_path)
    out = link_image(archive, tmp_path / "refs.so", target=LINUX, julia_version=version).output
    needed, imports = elf_facts(out)
    ours_needed, _ = julia_part(needed, imports)
    assert ours_needed == real_needed
    assert {n: imports[n] for n in real_imports} == real_imports
    if version == "1.9.0":
        assert all(v == (None, None) for v in imports.values())  # 1.9: no symbol versions at all


MACOS_REAL = {"1.11": REAL / "subhk__FeastKit.jl/darwin-x86_64/compiled/v1.11",
              "1.12": REAL / "jmcguigan10__Dodo/darwin-arm64/compiled/v1.12"}


@pytest.mark.parametrize("line", sorted(MACOS_REAL))
def test_lines_without_a_real_linux_image_follow_their_macos_images(line: str, tmp_path: Path) -> None:
    """1.11 and 1.12: the MAJOR.MINOR real macOS images put into libjulia's install name is the one our Linux
    stubs put into the sonames and the version node (1.10 and 1.13 are checked against Linux binaries above)."""
    dylib = next(MACOS_REAL[line].glob("*/*.dylib"))
    loads = run_tool([LLVM_READOBJ, "--needed-libs", str(dylib)])
    name = next(w.strip() for w in loads.splitlines() if "libjulia." in w)
    minor = name.rsplit("/", 1)[-1].removeprefix("libjulia.").removesuffix(".dylib")
    assert minor == line
    archive = object_importing(["ijl_apply_generic", "jl_nothing"], tmp_path)
    out = link_image(archive, tmp_path / "refs.so", target=LINUX, julia_version=line).output
    needed, imports = elf_facts(out)
    assert julia_part(needed, imports)[0] == [f"libjulia.so.{minor}", f"libjulia-internal.so.{minor}"]
    assert imports == {"ijl_apply_generic": (f"libjulia-internal.so.{minor}", f"JL_LIBJULIA_{minor}"),
                       "jl_nothing": (f"libjulia.so.{minor}", f"JL_LIBJULIA_{minor}")}
