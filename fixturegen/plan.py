"""The image a spec describes, decided once: functions, shards, clones, relocation slots, tables.

Both the IR renderer and the manifest read this plan, so what the objects contain and what the
manifest promises cannot drift apart. Pure: no files, no processes.

Rules (a small model of Julia's multiversioning, docs/julia-linking.md §3.4 - §3.5):

- fvar ``g`` is ``julia_f_<g>``; it lives in shard ``g % nshards`` (local index ``g // nshards``).
  gvar ``g`` is ``jl_globalYY.<g>``, also in shard ``g % nshards``.
- Function kinds by local index ``% 4``: 0 leaf (loads a gvar), 1 call (calls its predecessor), 2 generic
  (``ijl_apply_generic``, ``jl_f__call_latest``; ``jl_f_invokelatest`` in 1.13), 3 runtime (``jl_nothing``, ``ijl_box_int64``, TLS slot,
  ``jl_small_typeof`` from 1.10, ``sin`` in the libm layouts).
- Target 0 and ``clone_all`` targets have every function (clones ``<f>.<t>``, ``<f>.clone_<t>`` in 1.9).
  Other targets clone the runtime-kind functions and every callee; callers are never cloned for them,
  so each callee gets a relocation slot ``<f>.reloc_slot`` that callers load (Julia's "const reloc").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from fixturegen.cputargets import CpuTarget, resolve_cpu_targets, target_ids_bytes
from fixturegen.heap import HeapBlob, heap_blob, sysimage_blob
from fixturegen.spec import FixtureSpec

TAG = 0x80000000  # jl_sysimg_tag_mask
LIBM_LAYOUTS = ("1.10", "1.13")  # layouts whose code also calls libm (sin)

# Runtime symbols the generated code uses, by kind, and the library that provides them.
RUNTIME_FUNCTIONS = {"ijl_apply_generic": "libjulia-internal", "jl_f__call_latest": "libjulia-internal",
                     "jl_f_invokelatest": "libjulia-internal",
                     "ijl_box_int64": "libjulia-internal", "jl_image_unpack_uncomp": "libjulia-internal",
                     "sin": "libm"}
RUNTIME_DATA = {"jl_nothing": "libjulia", "jl_RTLD_DEFAULT_handle": "libjulia-internal"}


def latest_builtin(layout: str) -> str:
    """The invokelatest builtin generic code calls: Julia 1.13 renamed jl_f__call_latest (the real 1.13.1
    libjulia-internal exports only jl_f_invokelatest)."""
    return "jl_f_invokelatest" if layout == "1.13" else "jl_f__call_latest"


@dataclass(frozen=True)
class Function:
    gidx: int
    local: int
    name: str
    kind: str  # "leaf" | "call" | "generic" | "runtime"
    gvar: str  # the shard-local gvar it loads
    callee: int | None  # local index of the callee ("call" kind)


@dataclass(frozen=True)
class Shard:
    index: int
    suffix: str  # "_<i>" (1.10+); "" for 1.9, whose tables are global
    functions: tuple[Function, ...]
    gvars: tuple[str, ...]
    gvar_idxs: tuple[int, ...]
    cloned: tuple[frozenset[int], ...]  # per target: local indices with a clone of their own (t=0: none)
    reloc: tuple[int, ...]  # sorted local indices that have a relocation slot
    clone_idxs: tuple[int, ...]  # the uint32 records, all targets back to back
    clone_table: tuple[str, ...]  # function names parallel to the clone offsets / pointers
    clone_slots: tuple[tuple[int, str], ...]  # (local fidx, slot symbol), sorted by fidx

    @property
    def fvar_idxs(self) -> tuple[int, ...]:
        return tuple(f.gidx for f in self.functions)


@dataclass(frozen=True)
class ImagePlan:
    spec: FixtureSpec
    targets: tuple[CpuTarget, ...]
    target_ids: bytes
    shards: tuple[Shard, ...]
    blob: HeapBlob

    @property
    def layout(self) -> str:
        return self.spec.layout

    def version_name(self, name: str, t: int) -> str:
        """The symbol of function ``name`` compiled for target ``t`` (t=0 is the function itself)."""
        if t == 0:
            return name
        return f"{name}.clone_{t}" if self.layout == "1.9" else f"{name}.{t}"

    def impl(self, shard: Shard, local: int, t: int) -> str:
        """Which symbol serves function ``local`` when target ``t`` is selected."""
        name = shard.functions[local].name
        target = self.targets[t]
        if t == 0 or target.clone_all or local in shard.cloned[t]:
            return self.version_name(name, t)
        return self.impl(shard, local, target.base)

    def uses_libm(self) -> bool:
        return self.layout in LIBM_LAYOUTS

    def member_names(self) -> tuple[str, ...]:
        return member_names(self.spec)

    # -- what the code leaves undefined ---------------------------------------------------------
    def kinds(self) -> set[str]:
        return {f.kind for s in self.shards for f in s.functions}

    def undefined_functions(self) -> dict[str, str]:
        kinds = self.kinds()
        names = ["ijl_apply_generic"]  # the ccallable pkg_call_runtime always calls it
        if "generic" in kinds:
            names.append(latest_builtin(self.layout))
        if "runtime" in kinds:
            names.append("ijl_box_int64")
            if self.uses_libm():
                names.append("sin")
        if self.layout == "1.13":
            names.append("jl_image_unpack_uncomp")
        return {n: RUNTIME_FUNCTIONS[n] for n in sorted(names)}

    def undefined_data(self) -> dict[str, str]:
        names = ["jl_RTLD_DEFAULT_handle"]
        if "runtime" in self.kinds():
            names.append("jl_nothing")
        return {n: RUNTIME_DATA[n] for n in sorted(names)}

    def data_addresses_in_initializers(self) -> list[str]:
        """Runtime data whose address sits in a static initializer (not reached through code): on COFF
        the import library must define the plain symbol, a DATA-only import cannot satisfy it."""
        return [] if self.spec.rtld_getter else ["jl_RTLD_DEFAULT_handle"]


def member_names(spec: FixtureSpec) -> tuple[str, ...]:
    """Julia's archive member names, in archive order."""
    if spec.layout == "1.9":
        return ("text.o", "data.o")
    return (*(f"text#{i}.o" for i in range(spec.nshards)), "metadata.o", "sysimg.o")


_KINDS = ("leaf", "call", "generic", "runtime")


def _shard(spec: FixtureSpec, targets: tuple[CpuTarget, ...], s: int) -> Shard:
    n, layout = spec.nshards, spec.layout
    gvars = tuple(f"jl_globalYY.{g}" for g in range(s, spec.ngvars, n))
    gvar_idxs = tuple(range(s, spec.ngvars, n))
    functions = []
    for local, g in enumerate(range(s, spec.nfuncs, n)):
        kind = _KINDS[local % 4]
        callee = local - 1 if kind == "call" else None  # local % 4 == 1, so there is a predecessor
        functions.append(Function(g, local, f"julia_f_{g}", kind, gvars[local % len(gvars)], callee))
    nf = len(functions)
    callees = {f.callee for f in functions if f.callee is not None}
    partial_set = frozenset(f.local for f in functions if f.kind == "runtime") | frozenset(callees)
    cloned = tuple(frozenset() if t.index == 0 else frozenset(range(nf)) if t.clone_all else partial_set
                   for t in targets)
    reloc = sorted({f.callee for f in functions if f.callee is not None
                    and any(f.callee in cloned[t.index] and f.local not in cloned[t.index]
                            for t in targets if not t.tagged)})
    return Shard(s, "" if layout == "1.9" else f"_{s}", tuple(functions), gvars, gvar_idxs, cloned,
                 tuple(reloc), (), (), tuple((j, f"{functions[j].name}.reloc_slot") for j in reloc))


def _clone_tables(plan: ImagePlan, shard: Shard) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """``clone_idxs`` and the parallel function list, exactly as Julia's emit_metadata lays them out."""
    idxs: list[int] = []
    table: list[str] = []
    nf = len(shard.functions)
    reloc = set(shard.reloc)
    for t in plan.targets:
        if t.tagged:
            idxs.append(TAG | len(shard.reloc))
            idxs.extend(shard.reloc)
            if t.index != 0:
                table.extend(plan.impl(shard, j, t.index) for j in range(nf))
        else:
            entries: list[int] = []
            for j in range(nf):
                if j in reloc:
                    entries.append(TAG | j)
                    table.append(plan.impl(shard, j, t.index))
                elif j in shard.cloned[t.index]:
                    entries.append(j)
                    table.append(plan.version_name(shard.functions[j].name, t.index))
            idxs += [len(entries), t.base, *entries]
    return tuple(idxs), tuple(table)


@lru_cache(maxsize=8)
def build_plan(spec: FixtureSpec) -> ImagePlan:
    targets = resolve_cpu_targets(spec)
    assert spec.julia_version is not None
    blob = (sysimage_blob(spec.blob_size, compress=spec.compress) if spec.kind == "sysimage"
            else heap_blob(spec.target, spec.julia_version, spec.blob_size))
    shards = tuple(_shard(spec, targets, s) for s in range(spec.nshards))
    plan = ImagePlan(spec, targets, target_ids_bytes(targets), shards, blob)
    done = []
    for shard in shards:
        idxs, table = _clone_tables(plan, shard)
        done.append(replace(shard, clone_idxs=idxs, clone_table=table))
    return replace(plan, shards=tuple(done))
