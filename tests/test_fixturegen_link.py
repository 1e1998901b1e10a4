"""Every committed fixture archive links with real LLD for its target, and the linked image holds exactly
the tables MANIFEST.json describes (offsets resolved against the image's own symbol table)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from fixturegen.catalog import load_manifest
from pylinkjl.target import ALL_TARGETS, Target, parse_target

from .toolnames import LLD, LLVM_DLLTOOL, run_tool

REPO = Path(__file__).resolve().parent.parent
MANIFEST = load_manifest(REPO)
ARCHIVES: dict[str, Any] = MANIFEST["archives"]
LLD = shutil.which(LLD)
DLLTOOL = shutil.which(LLVM_DLLTOOL)
pytestmark = pytest.mark.skipif(LLD is None or DLLTOOL is None, reason="needs lld-19 and llvm-dlltool-19")

DLLTOOL_MACHINE = {"x86_64": "i386:x86-64", "i686": "i386", "aarch64": "arm64"}




def _import_libs(root: Path, target: Target, plain_rtld: bool) -> Path:
    """MinGW import libraries for every runtime symbol the fixtures use (from the manifest). Data is
    DATA-only (``__imp_`` alone) unless an initializer stores its address (then the plain symbol too),
    so a data reference the generator forgot to dllimport fails the strict link."""
    out = root / f"implib-{target.arch}-{'plain' if plain_rtld else 'data'}"
    if out.is_dir():
        return out
    out.mkdir()
    libs: dict[str, list[str]] = {"libjulia": [], "libjulia-internal": [], "libm": []}
    for entry in ARCHIVES.values():
        for name, lib in entry["undefined"]["functions"].items():
            libs[lib].append(name)
        for name, lib in entry["undefined"]["data"].items():
            plain = plain_rtld and name in ("jl_RTLD_DEFAULT_handle",)
            libs[lib].append(name if plain else f"{name} DATA")
    for lib, names in libs.items():
        dll = "libopenlibm" if lib == "libm" else lib
        (out / f"{dll}.def").write_text(f"LIBRARY {dll}.dll\nEXPORTS\n" + "\n".join(sorted(set(names))) + "\n")
        run_tool([DLLTOOL, "-m", DLLTOOL_MACHINE[target.arch], "-d", str(out / f"{dll}.def"),
              "-l", str(out / f"{dll}.dll.a")])
    return out


def link_argv(entry: dict[str, Any], archive: Path, out: Path, implibs: Path | None) -> list[str]:
    """Minimal Julia-like link lines (docs/lld-toolchain.md §3)."""
    assert LLD is not None
    target = parse_target(entry["target"])
    if target.os == "linux":
        return [LLD, "-flavor", "gnu", "-shared", "-o", str(out), "--whole-archive", str(archive), "--no-whole-archive"]
    if target.os == "macos":
        v = target.default_macos_version
        return [LLD, "-flavor", "darwin", "-arch", target.darwin_arch, "-undefined", "dynamic_lookup",
                "-platform_version", "macos", v, v, "-dylib", "-o", str(out), "-all_load", str(archive)]
    strict = ["--disable-auto-import", "--disable-runtime-pseudo-reloc"] if entry["undefined"]["dllimport_data"] else []
    libm = ["-lopenlibm"] if "sin" in entry["undefined"]["functions"] else []
    return [LLD, "-flavor", "gnu", "-m", target.mingw_emulation, "-Bdynamic", "--enable-auto-image-base",
            "--allow-multiple-definition", *strict, "-shared", "-o", str(out), "--whole-archive", str(archive),
            "--no-whole-archive", "-L", str(implibs), "-ljulia", "-ljulia-internal", *libm]


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fixture-links")
    out: dict[str, Path] = {}
    for rel, entry in ARCHIVES.items():
        target = parse_target(entry["target"])
        implibs = None
        if target.os == "windows":
            implibs = _import_libs(root, target, bool(entry["undefined"]["data_address_in_initializer"]))
        image = root / (Path(rel).stem + "." + target.dlext)
        run_tool(link_argv(entry, REPO / rel, image, implibs))
        out[rel] = image
    return out


class Image:
    """Symbols (plain names -> address) and bytes of a linked image, through LIEF."""

    def __init__(self, path: Path, target: Target) -> None:
        import lief

        self.target = target
        self.binary = lief.parse(str(path))
        assert self.binary is not None
        self.ps = target.pointer_size
        self.addr: dict[str, int] = {}
        self.relative: dict[int, int] = {}  # ELF: where RELATIVE relocations put which address
        b = self.binary
        if target.format == "coff":
            self.base = b.optional_header.imagebase
            for s in b.symbols:
                if s.section_idx > 0:
                    self.addr[self._plain(s.name)] = b.sections[s.section_idx - 1].virtual_address + s.value
        else:
            self.base = 0
            for s in b.symbols:
                if s.value:
                    self.addr.setdefault(self._plain(s.name), s.value)
            if target.format == "elf":
                for r in b.dynamic_relocations:
                    if str(r.type).endswith("RELATIVE"):
                        self.relative[r.address] = r.addend

    def _plain(self, name: str) -> str:
        p = self.target.symbol_prefix
        return name[len(p):] if p and name.startswith(p) else name

    def read(self, name_or_addr: str | int, size: int) -> bytes:
        import lief

        addr = self.addr[name_or_addr] if isinstance(name_or_addr, str) else name_or_addr
        kind = lief.Binary.VA_TYPES.RVA if self.target.format == "coff" else lief.Binary.VA_TYPES.AUTO
        return bytes(self.binary.get_content_from_virtual_address(addr, size, kind))

    def u32s(self, name: str, count: int, *, signed: bool = False) -> list[int]:
        return list(struct.unpack(f"<{count}{'i' if signed else 'I'}", self.read(name, 4 * count)))

    def pointer(self, addr: int) -> int:
        """The address a pointer-sized slot holds once loaded at the preferred base."""
        if addr in self.relative:
            return self.relative[addr]
        raw = int.from_bytes(self.read(addr, self.ps), "little")
        return raw - self.base

    def pointers(self, name: str, count: int) -> list[int]:
        start = self.addr[name]
        return [self.pointer(start + i * self.ps) for i in range(count)]

    def exports(self) -> set[str]:
        b = self.binary
        if self.target.format == "elf":
            return {s.name for s in b.dynamic_symbols if s.exported}
        if self.target.format == "macho":
            return {self._plain(s.name) for s in b.exported_symbols}
        return {e.name for e in b.get_export().entries}


def _offsets_table(img: Image, table: str, names: list[str], base: int) -> None:
    vals = img.u32s(table, len(names) + 1, signed=True)
    assert vals[0] == len(names), table
    assert [base + v for v in vals[1:]] == [img.addr[n] for n in names], table


def check_image(img: Image, entry: dict[str, Any]) -> None:
    image, layout = entry["image"], entry["layout"]
    assert img.exports() == set(entry["exported"])
    for shard in image["shards"]:
        tab, funcs, gvars = shard["tables"], shard["functions"], shard["gvars"]
        n = len(shard["clone_idxs"])
        assert img.u32s(tab["clone_idxs"], n) == shard["clone_idxs"]
        slots = shard["clone_slots"]
        raw_slots = img.u32s(tab["clone_slots"], 1 + 2 * len(slots), signed=True)
        assert raw_slots[0] == len(slots)
        assert raw_slots[1::2] == [fidx for fidx, _ in slots]
        if layout in ("1.9", "1.10"):
            f0, g0 = img.addr[funcs[0]], img.addr[gvars[0]]
            assert img.addr[tab["fvar_base"]] == f0 and img.addr[tab["gvar_base"]] == g0
            _offsets_table(img, tab["fvar_offsets"], funcs, f0)
            _offsets_table(img, tab["gvar_offsets"], gvars, g0)
            clones = img.u32s(tab["clone_offsets"], len(shard["clone_table"]), signed=True)
            assert [f0 + c for c in clones] == [img.addr[c] for c in shard["clone_table"]]
            slot_base = g0
        else:
            assert int.from_bytes(img.read(tab["fvar_count"], img.ps), "little") == len(funcs)
            assert img.pointers(tab["fvar_ptrs"], len(funcs)) == [img.addr[f] for f in funcs]
            assert img.pointers(tab["clone_ptrs"], len(shard["clone_table"])) == \
                [img.addr[c] for c in shard["clone_table"]]
            _offsets_table(img, tab["gvar_offsets"], gvars, img.addr[tab["gvar_offsets"]])
            slot_base = img.addr[tab["clone_slots"]]
        assert [slot_base + off for off in raw_slots[2::2]] == [img.addr[s] for _, s in slots]
        if layout != "1.9":
            assert img.u32s(tab["fvar_idxs"], len(funcs)) == shard["fvar_idxs"]
            assert img.u32s(tab["gvar_idxs"], len(gvars)) == shard["gvar_idxs"]
    ids = bytes.fromhex(image["target_ids"]["hex"])
    assert img.read("jl_dispatch_target_ids", len(ids)) == ids
    blob = image["system_image"]
    header = bytes.fromhex(blob["header_hex"])
    assert img.read("jl_system_image_data", len(header)) == header
    assert int.from_bytes(img.read("jl_system_image_size", img.ps), "little") == blob["size"]
    assert img.addr["jl_system_image_data"] % blob["align"] == 0
    if layout != "1.9":
        assert img.u32s("jl_image_header", 4) == image["header"]
        assert img.pointers("jl_image_pointers", len(image["image_pointers"])) == \
            [img.addr[n] for n in image["image_pointers"]]
        roles = image["shard_table_roles"]
        names = [s["tables"][r] for s in image["shards"] for r in roles]
        assert img.pointers("jl_shard_tables", len(names)) == [img.addr[n] for n in names]
        assert img.pointers("jl_ptls_table", 3) == [img.addr[n] for n in image["tls_slots"]]
    if layout == "1.13":
        assert img.u32s("jl_system_image_checksum", 1) == [blob["checksum32"]]
        text = image["cpu_target_string"].encode() + b"\0"
        assert img.read("jl_cpu_target_string", len(text)) == text


@pytest.mark.parametrize("rel", list(ARCHIVES))
def test_archive_links_and_image_matches_manifest(rel: str, linked: dict[str, Path]) -> None:
    entry = ARCHIVES[rel]
    check_image(Image(linked[rel], parse_target(entry["target"])), entry)


@pytest.mark.parametrize("target", [t for t in ALL_TARGETS if t.os == "windows"], ids=str)
def test_windows_entry_point_is_julias_stub(target: Target, linked: dict[str, Path]) -> None:
    rel = f"pylinkjl/samples/pkgimage-1.11-{target.name}.a"
    img = Image(linked[rel], target)
    assert img.binary.optional_header.addressof_entrypoint == img.addr["_DllMainCRTStartup" if target.arch != "i686"
                                                                       else "_DllMainCRTStartup@12"]
