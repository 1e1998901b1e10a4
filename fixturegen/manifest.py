"""What a generated archive promises, as JSON: members, symbols, and the exact image tables.

Built from the same :class:`~.plan.ImagePlan` as the IR. Symbol names are plain (C names): add
``Target.symbol_prefix`` for Mach-O and i686 COFF object/symbol tables. The format is described in
``tests/data/archives/README.md``; ``MANIFEST_VERSION`` changes when it does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fixturegen.ir import SMALL_TYPEOF_BYTES, shard_table_roles
from fixturegen.plan import ImagePlan, latest_builtin

MANIFEST_VERSION = 1

TABLES_19 = {"fvar_base": "jl_sysimg_fvars_base", "fvar_offsets": "jl_sysimg_fvars_offsets",
             "gvar_base": "jl_sysimg_gvars_base", "gvar_offsets": "jl_sysimg_gvars_offsets",
             "clone_slots": "jl_dispatch_reloc_slots", "clone_idxs": "jl_dispatch_fvars_idxs",
             "clone_offsets": "jl_dispatch_fvars_offsets"}
# How each table is encoded, per layout (docs/julia-linking.md §3.2 - §3.4).
ENCODINGS = {
    "1.9": {"fvars": "int32 [n, 0, f_k - f_0 ...]", "gvars": "int32 [n, 0, g_k - g_0 ...]",
            "clones": "int32 clone - f_0 (f_0 = first fvar = fvar_base)",
            "clone_slots": "int32 [n, fidx, slot - g_0 ...] (g_0 = first gvar = gvar_base)"},
    "1.10": {"fvars": "int32 [n, 0, f_k - f_0 ...]", "gvars": "int32 [n, 0, g_k - g_0 ...]",
             "clones": "int32 clone - f_0 (f_0 = jl_fvar_base_<i>)",
             "clone_slots": "int32 [n, fidx, slot - g_0 ...] (g_0 = jl_gvar_base_<i>)"},
    "1.11": {"fvars": "pointer [f_k ...], count in jl_fvar_count_<i>",
             "gvars": "int32 [n, g_k - &jl_gvar_offsets_<i> ...]", "clones": "pointer",
             "clone_slots": "int32 [n, fidx, slot - &jl_clone_slots_<i> ...]"},
}
ENCODINGS["1.13"] = ENCODINGS["1.11"]
TLS_19 = ["jl_pgcstack_func_slot", "jl_pgcstack_key_slot", "jl_tls_offset_image"]
PTLS = ["jl_pgcstack_func_slot", "jl_pgcstack_key_slot", "jl_tls_offset"]
CCALLABLES = {
    "pkg_answer": {"signature": "int32_t pkg_answer(void)", "returns": 42, "calls": []},
    "pkg_call_runtime": {"signature": "void *pkg_call_runtime(void *f)",
                         "returns": "ijl_apply_generic(f, NULL, 0)", "calls": ["ijl_apply_generic"]},
}


def rtld_symbol(plan: ImagePlan) -> str:
    """The image's RTLD marker: a data pointer up to 1.10.3, a getter function from 1.10.4."""
    return "get_jl_RTLD_DEFAULT_handle_addr" if plan.spec.rtld_getter else "jl_RTLD_DEFAULT_handle_pointer"


def exported_symbols(plan: ImagePlan) -> list[str]:
    """What the linked image exports (dynsym / PE export table / Mach-O export trie), plain names."""
    layout = plan.layout
    names = ["jl_system_image_data", "jl_system_image_size", *CCALLABLES]
    if layout == "1.9":
        names += [*TABLES_19.values(), "jl_dispatch_target_ids", *TLS_19, "jl_RTLD_DEFAULT_handle_pointer"]
    else:
        names.append("jl_image_pointers")
        names.append(rtld_symbol(plan))
    if layout == "1.13":
        names += ["jl_system_image_checksum", "jl_image_unpack"]
    return sorted(names)


def _versions(plan: ImagePlan, shard_index: int) -> list[str]:
    shard = plan.shards[shard_index]
    out = []
    for t in range(len(plan.targets)):
        out += [plan.version_name(f.name, t) for f in shard.functions if t == 0 or f.local in shard.cloned[t]]
    return out


def member_symbols(plan: ImagePlan) -> dict[str, dict[str, list[str]]]:
    """Per member: ``exported`` / ``global`` (not exported: hidden, or plain external on COFF) / ``local``
    definitions and the ``undefined`` references (plain names; compiler-made helpers such as COFF
    ``.refptr.*``, ``__imp_*`` spellings and ``@feat.00`` are not listed)."""
    spec, layout = plan.spec, plan.layout
    exported = set(exported_symbols(plan))
    stub = ["_DllMainCRTStartup"] if spec.target.format == "coff" and spec.dll_stub else []
    out: dict[str, dict[str, list[str]]] = {}
    for member in plan.member_names():
        defined: list[str] = []
        local: list[str] = []
        undefined: set[str] = set()
        if member.startswith("text"):
            shard = plan.shards[0 if member == "text.o" else int(member[5:-2])]
            code = _versions(plan, shard.index) + list(shard.gvars) + [s for _, s in shard.clone_slots]
            kinds = {f.kind for f in shard.functions}
            if shard.index == 0:
                defined += list(CCALLABLES)
                undefined.add("ijl_apply_generic")
            if "generic" in kinds:
                undefined |= {"ijl_apply_generic", latest_builtin(layout)}
            if "runtime" in kinds:
                undefined |= {"ijl_box_int64", "jl_nothing"} | ({"sin"} if plan.uses_libm() else set())
            if layout == "1.9":
                local += code + [f"{n}.real" for n in TLS_19]
                defined += [*TABLES_19.values(), "jl_dispatch_target_ids", *TLS_19,
                            "jl_RTLD_DEFAULT_handle_pointer", *stub]
                undefined.add("jl_RTLD_DEFAULT_handle")
            else:
                defined += code + [f"jl_{r}{shard.suffix}" for r in shard_table_roles(layout)]
                if "runtime" in kinds:
                    undefined |= {"jl_small_typeof", "jl_pgcstack_func_slot"}
        elif member == "metadata.o":
            local += ["jl_image_header", "jl_dispatch_target_ids"]
            local += ["jl_cpu_target_string"] if layout == "1.13" else []
            defined += ["jl_shard_tables", "jl_ptls_table", *PTLS, "jl_small_typeof", "jl_image_pointers", *stub]
            defined.append(rtld_symbol(plan))
            undefined |= {f"jl_{r}{s.suffix}" for s in plan.shards for r in shard_table_roles(layout)}
            undefined.add("jl_RTLD_DEFAULT_handle")
        else:
            defined += ["jl_system_image_data", "jl_system_image_size"]
            if layout == "1.13":
                defined += ["jl_system_image_checksum", "jl_image_unpack"]
                undefined.add(plan.blob.unpacker)
        out[member] = {"exported": sorted(n for n in defined if n in exported),
                       "global": sorted(n for n in defined if n not in exported),
                       "local": sorted(local), "undefined": sorted(undefined)}
    return out


def _shard_entry(plan: ImagePlan, i: int) -> dict[str, Any]:
    shard = plan.shards[i]
    tables = dict(TABLES_19) if plan.layout == "1.9" else \
        {r: f"jl_{r}{shard.suffix}" for r in shard_table_roles(plan.layout)}
    return {
        "index": shard.index, "suffix": shard.suffix, "tables": tables,
        "functions": [f.name for f in shard.functions], "fvar_idxs": list(shard.fvar_idxs),
        "gvars": list(shard.gvars), "gvar_idxs": list(shard.gvar_idxs),
        "clone_idxs": list(shard.clone_idxs), "clone_table": list(shard.clone_table),
        "clone_slots": [[fidx, slot] for fidx, slot in shard.clone_slots],
        "clones_per_target": [len(c) for c in shard.cloned],
        "reloc_fidxs": list(shard.reloc),
    }


def image_entry(plan: ImagePlan) -> dict[str, Any]:
    spec, layout, blob = plan.spec, plan.layout, plan.blob
    shards = [_shard_entry(plan, i) for i in range(len(plan.shards))]
    pointers = None
    if layout != "1.9":
        pointers = ["jl_image_header", "jl_shard_tables", "jl_ptls_table", "jl_small_typeof",
                    "jl_dispatch_target_ids"] + (["jl_cpu_target_string"] if layout == "1.13" else [])
    return {
        "nshards": spec.nshards, "nfvars": spec.nfuncs, "ngvars": spec.ngvars,
        "header": None if layout == "1.9" else [1, spec.nshards, spec.nfuncs, spec.ngvars],
        "image_pointers": pointers,
        "shard_table_roles": None if layout == "1.9" else list(shard_table_roles(layout)),
        "encoding": ENCODINGS[layout],
        "tls_slots": TLS_19 if layout == "1.9" else PTLS,
        "small_typeof_bytes": None if layout == "1.9" else SMALL_TYPEOF_BYTES,
        "rtld": {"symbol": rtld_symbol(plan), "kind": "function" if spec.rtld_getter else "pointer",
                 "refers_to": "jl_RTLD_DEFAULT_handle"},
        "cpu_target_string": spec.cpu_target_string if layout == "1.13" else None,
        "target_ids": {
            "symbol": "jl_dispatch_target_ids", "exported": layout == "1.9", "hex": plan.target_ids.hex(),
            "targets": [{"index": t.index, "spec": t.written, "name": t.record.name, "flags": t.record.flags,
                         "nwords": t.record.nwords, "en_bits": t.record.enabled_bits(),
                         "dis_bits": t.record.disabled_bits(), "ext_features": t.record.ext_features,
                         "clone_all": t.clone_all, "tagged": t.tagged, "base": t.base} for t in plan.targets],
        },
        "clones_per_target": [sum(s["clones_per_target"][t] for s in shards) for t in range(len(plan.targets))],
        "shards": shards,
        "system_image": {
            "symbol": "jl_system_image_data", "size_symbol": "jl_system_image_size", "size": blob.size,
            "align": 4096 if layout == "1.13" else 64, "data_start": blob.data_start, "data_end": blob.data_end,
            "checksum64": blob.checksum64,
            "checksum32": blob.checksum32 if layout == "1.13" else None,
            "checksum32_symbol": "jl_system_image_checksum" if layout == "1.13" else None,
            "unpack": {"symbol": "jl_image_unpack", "points_to": blob.unpacker} if layout == "1.13" else None,
            "header_hex": blob.header.hex(),
            **({"kind": "sysimage", "compressed": blob.compressed, "unpacked_size": blob.unpacked_size}
               if plan.spec.kind == "sysimage" else {}),
        },
    }


def manifest_entry(plan: ImagePlan, archive: Path, rel_path: str) -> dict[str, Any]:
    spec = plan.spec
    t = spec.target
    data = archive.read_bytes()
    coff_stub = t.format == "coff" and spec.dll_stub
    return {
        "path": rel_path,
        "target": t.name, "format": t.format, "layout": spec.layout, "julia_version": spec.julia_version,
        "multiversioned": len(plan.targets) > 1,
        "spec": spec.to_dict(),
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
        "archive_format": "darwin" if t.format == "macho" else "gnu",
        "members": list(plan.member_names()),
        "symbol_prefix": t.symbol_prefix,
        "member_symbols": member_symbols(plan),
        "exported": exported_symbols(plan),
        "undefined": {"functions": plan.undefined_functions(), "data": plan.undefined_data(),
                      "data_address_in_initializer": plan.data_addresses_in_initializers(),
                      "dllimport_data": bool(spec.dllimport_data) and t.format == "coff"},
        "dll_entry": {"member": "text.o" if spec.layout == "1.9" else "metadata.o",
                      "symbol": t.dll_entry_symbol} if coff_stub else None,
        "ccallables": CCALLABLES,
        "image": image_entry(plan),
    }
