"""The archives committed to the repository, and how to rebuild them byte for byte.

- ``pylinkjl/samples/pkgimage-1.11-<target>.a``: shipped with the package (the layout of Julia 1.11
  and 1.12, the newest default line), one per target.
- ``tests/data/archives/<layout>-<target>.a``: every layout x target, one CPU target.
- ``tests/data/archives/mv-<layout>-<target>.a``: multi-versioned (3 CPU targets with clone_all and
  base(1); 2 shards where the layout has shards), every layout x target.
- ``tests/data/archives/MANIFEST.json``: what each of them contains (see :mod:`.manifest`).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fixturegen.build import generate_archive
from fixturegen.manifest import MANIFEST_VERSION, manifest_entry
from fixturegen.plan import build_plan
from fixturegen.spec import LAYOUTS, FixtureSpec
from fixturegen.tools import Tools, find_tools
from pylinkjl.errors import InputError
from pylinkjl.target import ALL_TARGETS, Target

log = logging.getLogger("fixturegen.catalog")

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = "pylinkjl/samples"
ARCHIVES_DIR = "tests/data/archives"
MANIFEST = f"{ARCHIVES_DIR}/MANIFEST.json"
SAMPLE_JULIA_VERSION = "1.12.6"
SMALL_BLOB = 1024
MV_CPU_TARGETS = {
    "x86": ("generic", "sandybridge,-xsaveopt,clone_all", "haswell,-rdrnd,base(1)"),
    "aarch64": ("generic", "cortex-a57,clone_all", "apple-m1,base(1)"),
}


def mv_cpu_targets(target: Target) -> tuple[str, ...]:
    return MV_CPU_TARGETS["aarch64" if target.arch == "aarch64" else "x86"]


def committed_specs() -> dict[str, FixtureSpec]:
    """Repository-relative path -> spec, in a fixed order."""
    out: dict[str, FixtureSpec] = {}
    for t in ALL_TARGETS:
        out[f"{SAMPLES_DIR}/pkgimage-1.11-{t.name}.a"] = FixtureSpec(
            t, "1.11", julia_version=SAMPLE_JULIA_VERSION, blob_size=SMALL_BLOB)
    for layout in LAYOUTS:
        for t in ALL_TARGETS:
            out[f"{ARCHIVES_DIR}/{layout}-{t.name}.a"] = FixtureSpec(t, layout, blob_size=SMALL_BLOB)
    # The 1.10 line has two variants: 1.10.0 - 1.10.3 export jl_RTLD_DEFAULT_handle_pointer, 1.10.4+ (the
    # default 1.10.10 above) the getter get_jl_RTLD_DEFAULT_handle_addr, both with 9-pointer shard tables.
    for t in ALL_TARGETS:
        out[f"{ARCHIVES_DIR}/1.10.0-{t.name}.a"] = FixtureSpec(t, "1.10", julia_version="1.10.0", blob_size=SMALL_BLOB)
    for layout in LAYOUTS:
        for t in ALL_TARGETS:
            out[f"{ARCHIVES_DIR}/mv-{layout}-{t.name}.a"] = FixtureSpec(
                t, layout, cpu_targets=mv_cpu_targets(t), nshards=1 if layout == "1.9" else 2, nfuncs=10,
                ngvars=4, blob_size=SMALL_BLOB)
    return out


def benchmark_spec(target: Target, layout: str = "1.11", *, nfuncs: int = 150_000,
                   blob_size: int = 30 * 2**20, nshards: int = 2) -> FixtureSpec:
    """A package image of realistic size for benchmarks: 150k functions, 50k globals, a 30 MB heap,
    two shards (compiled in parallel). About 6 - 10 s to generate on two cores with llc-19 -O0."""
    return FixtureSpec(target, layout, nfuncs=nfuncs, ngvars=max(1, nfuncs // 3), blob_size=blob_size,  # type: ignore[arg-type]
                       nshards=1 if layout == "1.9" else nshards)


def regenerate(root: Path = REPO_ROOT, *, tools: Tools | None = None, jobs: int | None = None) -> dict[str, Any]:
    """Rebuild every committed archive under ``root`` and write the manifest; returns the manifest."""
    if not (root / "tests").is_dir():
        raise InputError(root, "not a pylinkjl source checkout (no tests/ folder); pass the repository root")
    tools = tools or find_tools()
    specs = committed_specs()

    def one(item: tuple[str, FixtureSpec]) -> tuple[str, dict[str, Any]]:
        rel, spec = item
        path = generate_archive(spec, root / rel, tools=tools, jobs=1)
        return rel, manifest_entry(build_plan(spec), path, rel)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        entries = dict(pool.map(one, specs.items()))
    manifest = {"manifest_version": MANIFEST_VERSION, "generator": "fixturegen",
                "regenerate": "python -m fixturegen --regenerate",
                "llvm_version": tools.llvm_version, "archives": entries}
    write_manifest(root / MANIFEST, manifest)
    log.info("regenerated %d archives under %s", len(entries), root)
    return manifest


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_compact(manifest) + "\n")


def dumps_compact(value: Any, indent: int = 0) -> str:
    """JSON with one key per line but lists of plain values on one line (the manifest stays readable)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {dumps_compact(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{pad} {dumps_compact(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value)


def load_manifest(root: Path = REPO_ROOT) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((root / MANIFEST).read_text())
    return manifest
