"""LLVM IR text for each archive member of a plan, written the way ``jl_dump_native`` builds it.

Emitting IR (rather than assembly) leaves to LLVM what Julia also leaves to it: ``_`` prefixes on
Mach-O and i686, stdcall mangling of the DLL entry, dllexport/dllimport, hidden visibility, GOT and
``.refptr`` accesses. Pure: strings in, strings out.

One deliberate difference from Julia: on COFF, the 1.9/1.10 offset tables are placed in the section
of their base symbol (``.text`` for function offsets, ``.data`` for the globals and their tables).
LLVM's COFF writer encodes ``A - B`` as a PC-relative relocation that is only right when ``B`` lives
in the section of the table; elsewhere it silently stores the wrong number (seen with llc-19).
"""

from __future__ import annotations

from collections.abc import Iterable

from fixturegen.plan import ImagePlan, Shard, build_plan, latest_builtin
from fixturegen.spec import FixtureSpec
from pylinkjl.target import Target

SMALL_TYPEOF_BYTES = 1024  # sizeof(jl_small_typeof): (jl_max_tags << 4) bytes


def render_ir(spec: FixtureSpec, member: str) -> str:
    """The IR of archive member ``member`` (one of :func:`~.plan.member_names`). Pure."""
    return render_member(build_plan(spec), member)


def render_member(plan: ImagePlan, member: str) -> str:
    spec = plan.spec
    if member not in plan.member_names():
        raise ValueError(f"{member!r} is not a member of a {spec.layout} archive: {plan.member_names()}")
    w = _Writer(plan, member)
    if member == "text.o":
        w.text_module(plan.shards[0])
        w.tables_19(plan.shards[0])
    elif member.startswith("text#"):
        shard = plan.shards[int(member[5:-2])]
        w.text_module(shard)
        w.tables_110(shard) if spec.layout == "1.10" else w.tables_111(shard)
    elif member == "metadata.o":
        w.metadata()
    else:  # data.o (1.9) / sysimg.o
        w.system_image()
    return w.finish()


def _c_string(data: bytes) -> str:
    out = []
    for b in data:
        out.append(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:02X}")
    return "".join(out)


class _Writer:
    """Accumulates one module. Helpers return IR fragments; ``line`` appends."""

    def __init__(self, plan: ImagePlan, member: str) -> None:
        self.plan = plan
        self.spec = plan.spec
        t = self.spec.target
        self.coff = t.format == "coff"
        self.ps = t.pointer_size
        self.size_t = "i64" if self.ps == 8 else "i32"
        self.lines: list[str] = []
        self.declared: set[str] = set()
        triple = module_triple(t)
        self.line(f"; pylinkjl fixture: {member} of a Julia {self.spec.julia_version} package image "
                  f"({self.spec.layout} layout) for {t.name}")
        self.line(f'source_filename = "{member}"')
        self.line(f'target triple = "{triple}"')
        self.line("")

    # -- small pieces ---------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append(text)

    def finish(self) -> str:
        self.line("")
        self.line("attributes #0 = { nounwind }")
        return "\n".join(self.lines) + "\n"

    @property
    def dllexport(self) -> str:
        return "dllexport " if self.coff else ""

    @property
    def data_import(self) -> str:
        return "dllimport " if self.coff and self.spec.dllimport_data else ""

    @property
    def local(self) -> str:
        """Linkage of code and globals: internal in 1.9; hidden externals once modules are partitioned."""
        return "internal " if self.spec.layout == "1.9" else "hidden "

    def coff_section(self, kind: str) -> str:
        """See the module docstring: keep COFF offset tables in the section of their base."""
        if self.coff and self.spec.layout in ("1.9", "1.10"):
            return f', section "{kind}"'
        return ""

    def diff32(self, a: str, b: str) -> str:
        if self.ps == 8:
            return f"i32 trunc (i64 sub (i64 ptrtoint (ptr @{a} to i64), i64 ptrtoint (ptr @{b} to i64)) to i32)"
        return f"i32 sub (i32 ptrtoint (ptr @{a} to i32), i32 ptrtoint (ptr @{b} to i32))"

    def declare(self, name: str, text: str) -> None:
        if name not in self.declared:
            self.declared.add(name)
            self.line(text)

    def i32_array(self, name: str, values: Iterable[str], prefix: str, section: str = "") -> None:
        vals = list(values)
        body = "[" + ", ".join(vals) + "]" if vals else "zeroinitializer"
        self.line(f"@{name} = {prefix}constant [{len(vals)} x i32] {body}, align 4{section}")

    def u32s(self, values: Iterable[int]) -> list[str]:
        return [f"i32 {v}" for v in values]

    def ptr_array(self, name: str, targets: Iterable[str], prefix: str, constant: bool = True) -> None:
        vals = [f"ptr @{n}" for n in targets]
        body = "[" + ", ".join(vals) + "]" if vals else "zeroinitializer"
        kind = "constant" if constant else "global"
        self.line(f"@{name} = {prefix}{kind} [{len(vals)} x ptr] {body}, align {self.ps}")

    # -- code -----------------------------------------------------------------------------------
    def runtime_decls(self, shard: Shard) -> None:
        kinds = {f.kind for f in shard.functions}
        self.declare("ijl_apply_generic", "declare ptr @ijl_apply_generic(ptr, ptr, i32)")
        if "generic" in kinds:
            latest = latest_builtin(self.spec.layout)
            self.declare(latest, f"declare ptr @{latest}(ptr, ptr, i32)")
        if "runtime" in kinds:
            self.declare("ijl_box_int64", "declare ptr @ijl_box_int64(i64)")
            self.declare("jl_nothing", f"@jl_nothing = external {self.data_import}global ptr")
            if self.plan.uses_libm():
                self.declare("sin", "declare double @sin(double)")
            if self.spec.layout != "1.9":  # defined in metadata.o
                n = SMALL_TYPEOF_BYTES // self.ps
                self.declare("jl_small_typeof", f"@jl_small_typeof = external hidden global [{n} x ptr]")
                self.declare("jl_pgcstack_func_slot",
                             f"@jl_pgcstack_func_slot = external hidden global {self.size_t}")

    def text_module(self, shard: Shard) -> None:
        self.runtime_decls(shard)
        self.line("")
        data = self.coff_section(".data")
        for g in shard.gvars:
            self.line(f"@{g} = {self.local}global ptr null, align {self.ps}{data}")
        for _, slot in shard.clone_slots:
            self.line(f"@{slot} = {self.local}global ptr null, align {self.ps}{data}")
        self.line("")
        for t in range(len(self.plan.targets)):
            for f in shard.functions:
                if t == 0 or f.local in shard.cloned[t]:
                    self.function(shard, f.local, t)
        if shard.index == 0:
            self.ccallables()
            if self.spec.layout == "1.9":
                self.dll_stub()

    def function(self, shard: Shard, local: int, t: int) -> None:
        f = shard.functions[local]
        plan, ps = self.plan, self.ps
        name = plan.version_name(f.name, t)
        body = []
        if f.kind == "leaf":
            body += [f"%g = load ptr, ptr @{f.gvar}, align {ps}", "%r = ptrtoint ptr %g to i64"]
        elif f.kind == "call":
            assert f.callee is not None
            if f.callee in shard.reloc:  # the callee is cloned for some target this caller is not
                slot = f"{shard.functions[f.callee].name}.reloc_slot"
                body += [f"%fp = load ptr, ptr @{slot}, align {ps}", "%c = call i64 %fp(i64 %x)"]
            else:
                body.append(f"%c = call i64 @{plan.impl(shard, f.callee, t)}(i64 %x)")
            body.append("%r = add i64 %c, 1")
        elif f.kind == "generic":
            body += [f"%g = load ptr, ptr @{f.gvar}, align {ps}",
                     "%a = call ptr @ijl_apply_generic(ptr %g, ptr null, i32 0)",
                     f"%b = call ptr @{latest_builtin(self.spec.layout)}(ptr %a, ptr null, i32 0)",
                     "%r = ptrtoint ptr %b to i64"]
        else:  # runtime
            slot = "jl_pgcstack_func_slot"
            body += [f"%n = load ptr, ptr @jl_nothing, align {ps}",
                     "%b = call ptr @ijl_box_int64(i64 %x)",
                     f"%k = load {self.size_t}, ptr @{slot}, align {ps}",
                     "%ni = ptrtoint ptr %n to i64", "%bi = ptrtoint ptr %b to i64",
                     f"%ki = zext {self.size_t} %k to i64" if ps == 4 else "%ki = add i64 %k, 0",
                     "%s0 = add i64 %ni, %bi", "%s1 = add i64 %s0, %ki"]
            last = "%s1"
            if self.spec.layout != "1.9":
                body += [f"%ty = load ptr, ptr @jl_small_typeof, align {ps}", "%tyi = ptrtoint ptr %ty to i64",
                         f"%s2 = add i64 {last}, %tyi"]
                last = "%s2"
            if plan.uses_libm():
                body += ["%d = sitofp i64 %x to double", "%sd = call double @sin(double %d)",
                         "%si = fptosi double %sd to i64", f"%s3 = add i64 {last}, %si"]
                last = "%s3"
            body.append(f"%r = add i64 {last}, 0")
        self.line(f"define {self.local}i64 @{name}(i64 %x) #0 {{")
        self.line("top:")
        self.lines.extend("  " + b for b in body)
        self.line("  ret i64 %r")
        self.line("}")

    def ccallables(self) -> None:
        """``@ccallable``-like entry points: one that calls nothing, one that calls into the runtime."""
        self.line("")
        self.line(f"define {self.dllexport}i32 @pkg_answer() #0 {{\ntop:\n  ret i32 42\n}}")
        self.line(f"define {self.dllexport}ptr @pkg_call_runtime(ptr %f) #0 {{\ntop:\n"
                  "  %r = call ptr @ijl_apply_generic(ptr %f, ptr null, i32 0)\n  ret ptr %r\n}")

    def dll_stub(self) -> None:
        """Julia's ``_DllMainCRTStartup``: stdcall, returns TRUE (docs/julia-linking.md §2). LLVM rejects
        stdcall on aarch64, where Julia cannot build pkgimages; we use the C convention there."""
        if not (self.coff and self.spec.dll_stub):
            return
        cc = "" if self.spec.target.arch == "aarch64" else "x86_stdcallcc "
        self.line("")
        self.line(f"define {cc}i32 @_DllMainCRTStartup(ptr %0, i32 %1, ptr %2) #0 {{\ntop:\n  ret i32 1\n}}")

    # -- 1.9: text.o carries every table, all external (dllexport on COFF) ----------------------
    def tables_19(self, shard: Shard) -> None:
        x, st = self.dllexport, self.size_t
        text, data = self.coff_section(".text"), self.coff_section(".data")
        f0, g0 = shard.functions[0].name, shard.gvars[0]
        self.line("")
        self.line(f"@jl_sysimg_fvars_base = {x}alias {st}, ptr @{f0}")
        self.i32_array("jl_sysimg_fvars_offsets", self._offsets(f0, [f.name for f in shard.functions]), x, text)
        self.line(f"@jl_sysimg_gvars_base = {x}alias {st}, ptr @{g0}")
        self.i32_array("jl_sysimg_gvars_offsets", self._offsets(g0, shard.gvars), x, data)
        self._target_ids("jl_dispatch_target_ids", x)
        self._clone_slots("jl_dispatch_reloc_slots", shard, g0, x + "", data)
        self.i32_array("jl_dispatch_fvars_idxs", self.u32s(shard.clone_idxs), x)
        self.i32_array("jl_dispatch_fvars_offsets", [self.diff32(n, f0) for n in shard.clone_table], x, text)
        for name in ("jl_pgcstack_func_slot", "jl_pgcstack_key_slot", "jl_tls_offset_image"):
            self.line(f"@{name}.real = internal global {st} 0, align {self.ps}")
            self.line(f"@{name} = {x}alias {st}, ptr @{name}.real")
        self.line(f"@jl_RTLD_DEFAULT_handle = external {self.data_import}global ptr")
        self.line(f"@jl_RTLD_DEFAULT_handle_pointer = {x}constant ptr @jl_RTLD_DEFAULT_handle, align {self.ps}")

    def _offsets(self, base: str, names: Iterable[str]) -> list[str]:
        """``[n, 0, off(v1) ...]`` relative to ``base`` (the first entry)."""
        names = list(names)
        return [f"i32 {len(names)}", "i32 0", *(self.diff32(n, base) for n in names[1:])]

    def _clone_slots(self, name: str, shard: Shard, base: str, prefix: str, section: str = "") -> None:
        vals = [f"i32 {len(shard.clone_slots)}"]
        for fidx, slot in shard.clone_slots:
            vals += [f"i32 {fidx}", self.diff32(slot, base)]
        self.i32_array(name, vals, prefix, section)

    def _target_ids(self, name: str, prefix: str) -> None:
        data = self.plan.target_ids
        self.line(f'@{name} = {prefix}constant [{len(data)} x i8] c"{_c_string(data)}", align 4')

    # -- 1.10: per-shard tables with 32-bit offsets ---------------------------------------------
    def tables_110(self, shard: Shard) -> None:
        sfx, st = shard.suffix, self.size_t
        text, data = self.coff_section(".text"), self.coff_section(".data")
        f0, g0 = shard.functions[0].name, shard.gvars[0]
        self.line("")
        self.line(f"@jl_fvar_base{sfx} = hidden alias {st}, ptr @{f0}")
        self.i32_array(f"jl_fvar_offsets{sfx}", self._offsets(f0, [f.name for f in shard.functions]),
                       "hidden ", text)
        self.i32_array(f"jl_fvar_idxs{sfx}", self.u32s(shard.fvar_idxs), "hidden ")
        self.line(f"@jl_gvar_base{sfx} = hidden alias {st}, ptr @{g0}")
        self.i32_array(f"jl_gvar_offsets{sfx}", self._offsets(g0, shard.gvars), "hidden ", data)
        self.i32_array(f"jl_gvar_idxs{sfx}", self.u32s(shard.gvar_idxs), "hidden ")
        self._clone_slots(f"jl_clone_slots{sfx}", shard, g0, "hidden ", data)
        self.i32_array(f"jl_clone_offsets{sfx}", [self.diff32(n, f0) for n in shard.clone_table], "hidden ", text)
        self.i32_array(f"jl_clone_idxs{sfx}", self.u32s(shard.clone_idxs), "hidden ")

    # -- 1.11+: absolute pointers; gvar and slot offsets relative to their own table -------------
    def tables_111(self, shard: Shard) -> None:
        sfx, st = shard.suffix, self.size_t
        nf = len(shard.functions)
        self.line("")
        self.line(f"@jl_fvar_count{sfx} = hidden constant {st} {nf}, align {self.ps}")
        self.ptr_array(f"jl_fvar_ptrs{sfx}", [f.name for f in shard.functions], "hidden ", constant=False)
        self.i32_array(f"jl_fvar_idxs{sfx}", self.u32s(shard.fvar_idxs), "hidden ")
        table = f"jl_gvar_offsets{sfx}"
        self.i32_array(table, [f"i32 {len(shard.gvars)}", *(self.diff32(g, table) for g in shard.gvars)],
                       "hidden ")
        self.i32_array(f"jl_gvar_idxs{sfx}", self.u32s(shard.gvar_idxs), "hidden ")
        self._clone_slots(f"jl_clone_slots{sfx}", shard, f"jl_clone_slots{sfx}", "hidden ")
        self.ptr_array(f"jl_clone_ptrs{sfx}", shard.clone_table, "hidden ")
        self.i32_array(f"jl_clone_idxs{sfx}", self.u32s(shard.clone_idxs), "hidden ")

    # -- metadata.o (1.10+) ---------------------------------------------------------------------
    def metadata(self) -> None:
        plan, spec, st, x = self.plan, self.spec, self.size_t, self.dllexport
        roles = shard_table_roles(spec.layout)
        for shard in plan.shards:
            for role in roles:
                self.line(f"@jl_{role}{shard.suffix} = external hidden global {st}")
        nf, ng = spec.nfuncs, spec.ngvars
        self.line(f"@jl_image_header = internal global [4 x i32] [i32 1, i32 {spec.nshards}, i32 {nf}, "
                  f"i32 {ng}], align 4")
        self.ptr_array("jl_shard_tables", [f"jl_{r}{s.suffix}" for s in plan.shards for r in roles], "hidden ",
                       constant=False)
        ptls = ("jl_pgcstack_func_slot", "jl_pgcstack_key_slot", "jl_tls_offset")
        for name in ptls:
            self.line(f"@{name} = hidden global {st} 0, align {self.ps}")
        self.ptr_array("jl_ptls_table", ptls, "hidden ", constant=False)
        n = SMALL_TYPEOF_BYTES // self.ps
        self.line(f"@jl_small_typeof = hidden global [{n} x ptr] zeroinitializer, align {self.ps}")
        self._target_ids("jl_dispatch_target_ids", "internal ")
        pointers = ["jl_image_header", "jl_shard_tables", "jl_ptls_table", "jl_small_typeof",
                    "jl_dispatch_target_ids"]
        if spec.layout == "1.13":
            raw = spec.cpu_target_string.encode() + b"\0"
            self.line(f'@jl_cpu_target_string = internal constant [{len(raw)} x i8] c"{_c_string(raw)}", align 1')
            pointers.append("jl_cpu_target_string")
        self.ptr_array("jl_image_pointers", pointers, x, constant=False)
        self.line(f"@jl_RTLD_DEFAULT_handle = external {self.data_import}global ptr")
        if not spec.rtld_getter:
            self.line(f"@jl_RTLD_DEFAULT_handle_pointer = {x}constant ptr @jl_RTLD_DEFAULT_handle, "
                      f"align {self.ps}")
        else:
            self.line(f"define {x}ptr @get_jl_RTLD_DEFAULT_handle_addr() #0 {{\ntop:\n"
                      "  ret ptr @jl_RTLD_DEFAULT_handle\n}")
        self.dll_stub()

    # -- data.o (1.9) / sysimg.o ----------------------------------------------------------------
    def system_image(self) -> None:
        blob, x, st = self.plan.blob, self.dllexport, self.size_t
        h, z = len(blob.header), blob.tail_size()
        align = 4096 if self.spec.layout == "1.13" else 64
        self.line(f"@jl_system_image_data = {x}global <{{ [{h} x i8], [{z} x i8] }}> "
                  f'<{{ [{h} x i8] c"{_c_string(blob.header)}", [{z} x i8] zeroinitializer }}>, align {align}')
        self.line(f"@jl_system_image_size = {x}constant {st} {blob.size}, align {self.ps}")
        if self.spec.layout == "1.13":
            self.line(f"@jl_system_image_checksum = {x}constant i32 {blob.checksum32}, align 4")
            self.line(f"declare void @{blob.unpacker}(ptr, ptr)")
            self.line(f"@jl_image_unpack = {x}constant ptr @{blob.unpacker}, align {self.ps}")


def module_triple(t: Target) -> str:
    """The normalized triple Julia's modules carry (llc does not normalize a module's triple: written
    ``x86_64-w64-mingw32`` it would produce ELF). Mach-O: OS forced to MacOSX, no version, hence no
    LC_BUILD_VERSION in the objects, as in Julia's (julia#51562)."""
    return {"linux": f"{t.arch}-unknown-linux-gnu", "macos": f"{t.darwin_arch}-apple-macosx",
            "windows": f"{t.arch}-w64-windows-gnu"}[t.os]


def shard_table_roles(layout: str) -> tuple[str, ...]:
    """The fields of ``jl_image_shard_t`` in order; symbol ``jl_<role>_<shard>`` (docs/julia-linking.md §3.3)."""
    if layout == "1.10":
        return ("fvar_base", "fvar_offsets", "fvar_idxs", "gvar_base", "gvar_offsets", "gvar_idxs",
                "clone_slots", "clone_offsets", "clone_idxs")
    return ("fvar_count", "fvar_ptrs", "fvar_idxs", "gvar_offsets", "gvar_idxs", "clone_slots", "clone_ptrs",
            "clone_idxs")
