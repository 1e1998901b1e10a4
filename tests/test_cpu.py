"""Julia's CPU model: tables, JULIA_CPU_TARGET parsing, matching, host detection, official strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.targetlist import TargetRecord
from pylinkjl.cpu import features as F
from pylinkjl.cpu import tables as T
from pylinkjl.cpu.cpuparse import CpuTargetError, explain_cpu_target, llvm_cpu_name, parse_cpu_target
from pylinkjl.cpu.host import WrongArchitecture, features_from_flags, host_from_cpuinfo, named_cpu
from pylinkjl.cpu.match import (
    REJECT_DISABLED,
    REJECT_FEATURES,
    REJECT_NAME,
    REJECT_VECTOR,
    UPDATE,
    UPDATE_VECTOR,
    jit_target,
    match_targets,
)
from pylinkjl.cpu.official import official_strings
from pylinkjl.errors import TargetError

X19 = T.load("1.9.0", "x86_64")
X112 = T.load("1.12.1", "x86_64")
A111 = T.load("1.11.7", "aarch64")

# The worked example of the tables README: DataStructures' broadwell target (Julia 1.9.0).
EN_WORDS = [0x36D83203, 0, 0x00080129, 0, 0, 0x00000121, 0, 0, 0, 0, 0]
DIS_WORDS = [0x40000000, 0, 0xFDA70800, 0x3A405FF3, 0x03454100, 0x20210840, 0, 0x0000000B, 0x00000201, 0x00000030,
             0x00000010]


def _bits(words: list[int]) -> int:
    return sum(w << (32 * i) for i, w in enumerate(words))


def test_tables_per_version() -> None:
    assert (X19.nwords, X112.nwords, A111.nwords) == (11, 12, 3)
    assert X19.bit("ptwrite") == 324 and X112.bit("ptwrite") == 356 and X112.feature_names[324] == "avxvnniint8"
    assert "pconfig" in X112.feature_bits and "pconfig" not in T.load("1.12.7", "x86_64").feature_bits
    assert "xsaves" in F.names(T.load("1.9.1", "x86_64").cpus["znver1"].features, X19)
    assert "xsaves" not in F.names(T.load("1.9.2", "x86_64").cpus["znver1"].features, X19)
    assert X19.normalize("x86-64") == "generic" and T.load("1.10", "i686").normalize("pentium4") == "generic"
    assert A111.normalize("zeus") == "neoverse-v1" and "apple-m2" in A111.cpus and "apple-m2" not in T.load("1.10", "aarch64").cpus
    with pytest.raises(TargetError, match="1.14"):
        T.load("1.14.0-DEV", "x86_64")
    with pytest.raises(TargetError):
        T.load("1.8.5", "x86_64")


def test_worked_example_decodes_exactly() -> None:
    en, dis = _bits(EN_WORDS), _bits(DIS_WORDS)
    assert F.names(en, X19) == ["sse3", "pclmul", "ssse3", "fma", "cx16", "sse4.1", "sse4.2", "movbe", "popcnt", "aes",
                                "xsave", "avx", "f16c", "fsgsbase", "bmi", "avx2", "bmi2", "adx", "sahf", "lzcnt",
                                "prfchw"]
    assert len(F.names(dis, X19)) == 51 and en | dis == X19.mask and en & dis == 0
    assert F.unknown_bits(en | dis, X19) == []
    assert F.max_vector_size(en, X19) == 32


def _rec(name: str, features: list[str], t: T.CpuTables = X19) -> TargetRecord:
    return TargetRecord(name, 0, F.bits_of(features, t), 0, t.nwords)


def test_load_rule_against_table_hosts() -> None:
    image = [TargetRecord("broadwell", 0, _bits(EN_WORDS), _bits(DIS_WORDS), 11)]
    verdicts = {}
    for cpu in ("skylake", "skylake-avx512", "znver1", "znver2", "alderlake", "haswell", "sandybridge", "generic",
                "broadwell"):
        host = named_cpu(cpu, X19)
        verdicts[cpu] = match_targets(image, jit_target(host.name, host.features, X19), X19)
    assert all(verdicts[c].ok for c in ("skylake", "skylake-avx512", "znver1", "znver2", "alderlake"))
    assert verdicts["haswell"].verdicts[0].missing == ["aes", "adx", "prfchw"]
    assert verdicts["broadwell"].verdicts[0].missing == ["aes"]
    assert not verdicts["sandybridge"].ok and not verdicts["generic"].ok
    assert verdicts["haswell"].message == "Unable to find compatible target in system image."  # 1.9 wording


def test_matching_order_name_vector_count_tie() -> None:
    t = T.load("1.10", "x86_64")
    host = named_cpu("skylake-avx512", t)
    jit = jit_target(host.name, host.features, t)
    gen, sb, hw = _rec("generic", ["cx16"], t), _rec("sandybridge", ["avx", "sse4.2"], t), _rec("haswell", ["avx2", "avx"], t)
    r = match_targets([gen, sb, hw], jit, t)
    assert r.best == 2 and [v.reason for v in r.verdicts] == [UPDATE_VECTOR, UPDATE_VECTOR, UPDATE]
    # a name match beats a wider target seen earlier and rejects everything after it
    named = _rec("skylake-avx512", ["sse3"], t)
    r = match_targets([hw, named, sb], jit, t)
    assert r.best == 1 and r.verdicts[2].reason == REJECT_NAME
    # larger vectors win over more features; fewer features lose; a tie goes to the later target
    r = match_targets([sb, gen], jit, t)
    assert r.best == 0 and r.verdicts[1].reason == REJECT_VECTOR
    r = match_targets([hw, sb], jit, t)
    assert r.best == 1  # same width, same feature count: the later wins
    r = match_targets([_rec("a", ["avx", "avx2", "fma"], t), sb], jit, t)
    assert r.best == 0 and r.verdicts[1].reason == REJECT_FEATURES
    # an incompatible target, named and worded as Julia 1.10+ does
    old = named_cpu("nehalem", t)
    r = match_targets([hw], jit_target(old.name, old.features, t), t)
    assert not r.ok and r.verdicts[0].reason == REJECT_DISABLED
    assert r.message == ("Unable to find compatible target in cached code image.\n"
                         f"Target 0 (haswell): {REJECT_DISABLED}")


def test_unobservable_features_are_assumed_not_rejected() -> None:
    t = X19
    image = [_rec("tigerlake", ["avx2", "avx", "shstk"])]
    flags = {"avx", "avx2", "xsave", "sse4_2", "sse4_1", "ssse3", "pni", "cx16", "popcnt"}
    present, unknown = features_from_flags(flags, t)
    assert F.has(unknown, "shstk", t) and not F.has(present, "shstk", t)
    jit = jit_target("x", present, t, assumed=unknown)
    r = match_targets(image, jit, t)
    assert r.ok and r.verdicts[0].assumed == ["shstk"]


CPUINFO_BROADWELL = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 79
model name\t: Intel(R) Xeon(R) CPU E5-2686 v4 @ 2.30GHz
flags\t\t: fpu sse sse2 pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand \
lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 bmi2 rdseed adx xsaveopt

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 79
flags\t\t: fpu sse sse2 pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand \
lahf_lm abm 3dnowprefetch fsgsbase bmi1 avx2 bmi2 rdseed adx xsaveopt
"""

CPUINFO_ZEN4 = """vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
flags\t\t: pni avx avx2 avx512f
"""

CPUINFO_GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
"""


def test_host_from_cpuinfo_x86() -> None:
    host = host_from_cpuinfo(CPUINFO_BROADWELL, X19)
    assert host.name == "broadwell"
    image = [TargetRecord("broadwell", 0, _bits(EN_WORDS), 0, 11)]
    assert match_targets(image, jit_target(host.name, host.features, X19, assumed=host.unknown), X19).ok
    assert host_from_cpuinfo(CPUINFO_ZEN4, T.load("1.10", "x86_64")).name == "znver3"
    assert host_from_cpuinfo(CPUINFO_ZEN4, T.load("1.11", "x86_64")).name == "znver4"
    with pytest.raises(TargetError):
        host_from_cpuinfo("nothing here\n", X19)


def test_host_from_cpuinfo_aarch64() -> None:
    host = host_from_cpuinfo(CPUINFO_GRAVITON2, A111)
    assert host.name == "neoverse-n1"
    names = F.names(host.features, A111)
    assert {"aes", "crc", "lse", "dotprod", "v8_2a", "rcpc"} <= set(names)  # v8_2a only from the core table
    unknown_core = CPUINFO_GRAVITON2.replace("0xd0c", "0xfff")
    assert "v8_2a" not in F.names(host_from_cpuinfo(unknown_core, A111).features, A111)


def test_named_cpus_and_aliases() -> None:
    assert named_cpu("skx", X19).name == "skylake-avx512"
    assert named_cpu("core-avx2", X19).name == "haswell"
    assert named_cpu("zen3", X19).name == "znver3"
    assert F.has(named_cpu("x86-64-v3", X19).features, "avx2", X19)
    assert named_cpu("znver4", X19).name == "znver4"  # 1.9 does not know it: a later table is used
    assert named_cpu("graviton3", A111).name == "neoverse-v1" and named_cpu("m2", A111).name == "apple-m2"
    with pytest.raises(WrongArchitecture):
        named_cpu("apple-m1", X19)
    with pytest.raises(WrongArchitecture):
        named_cpu("x86-64-v3", A111)
    with pytest.raises(TargetError, match="unknown CPU"):
        named_cpu("pentium-iii-deluxe", X19)


@pytest.mark.parametrize("text, message", [
    ("", "Invalid target option: empty CPU name"),
    ("haswell;", "Invalid target option: empty CPU name"),
    ("generic;haswell,base(0)", "Invalid target option: base target must be clone_all."),
    ("generic,clone_all;haswell,base(1)", "Invalid target option: base index must refer to a previous target."),
    ("generic,clone_all,-clone_all;haswell,base(0)", "Invalid target option: base target must be clone_all."),
    ("generic,clone_all;haswell,-base(0)", "Invalid target option: disabled base index."),
    ("haswell,opt_size,min_size", "Conflicting target option: both opt_size and min_size are specified."),
    ("haswell,-opt_size", "Invalid target option: disabled opt_size."),
    ("haswell,-min_size", "Invalid target option: disabled min_size."),
])
def test_cpu_target_errors_in_julias_words(text: str, message: str) -> None:
    with pytest.raises(CpuTargetError) as e:
        parse_cpu_target(text, X112)
    assert str(e.value) == message


def test_cpu_target_parsing() -> None:
    specs = parse_cpu_target("generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1),+foo,-bar,base(x)", X112)
    assert [s.name for s in specs] == ["generic", "sandybridge", "haswell"]
    assert specs[1].clone_all and F.names(specs[1].dis, X112) == ["xsaveopt"]
    assert specs[2].base == 1 and specs[2].ext_features == "+foo,-bar,+base(x)"
    assert parse_cpu_target("core-avx2", X112)[0].name == "haswell"
    assert parse_cpu_target("help", X112)[0].help
    assert parse_cpu_target("sysimage;znver4,base(0)", T.load("1.13", "x86_64"),
                            sysimage_target="generic,clone_all")[0].name == "generic"


def test_explain_official_x86_string() -> None:
    r = explain_cpu_target("generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1);x86-64-v4,-rdrnd,base(1)",
                           T.load("1.11", "x86_64"))
    tg = r["targets"]
    assert [t["llvm_cpu"] for t in tg] == ["x86-64", "sandybridge", "haswell", "x86-64-v4"]  # type: ignore[index]
    assert tg[1]["clone_all"] and "avx" in tg[1]["adds"] and "xsaveopt" not in tg[1]["features"]  # type: ignore[index]
    assert tg[2]["adds"] == ["fma", "movbe", "f16c", "fsgsbase", "bmi", "avx2", "bmi2", "lzcnt"]  # type: ignore[index]
    assert "rdrnd" not in tg[2]["features"] and tg[2]["vector_bits"] == 256  # type: ignore[index]
    assert not tg[3]["known"] and tg[3]["nfeatures"] == 0 and tg[3]["notes"]  # type: ignore[index]
    assert llvm_cpu_name("znver4", T.load("1.11", "x86_64"), 150007) == "znver3"
    assert llvm_cpu_name("generic", T.load("1.11", "i686")) == "pentium4"


def test_native_needs_a_host_and_uses_it() -> None:
    host = named_cpu("haswell", X112)
    r = explain_cpu_target("native", X112, host_name=host.name, host_features=host.features)
    assert r["targets"][0]["name"] == "haswell" and "avx2" in r["targets"][0]["features"]  # type: ignore[index]


def test_official_strings() -> None:
    x86 = official_strings("amd64")
    assert x86[0].string == "generic;sandybridge,-xsaveopt,clone_all;haswell,-rdrnd,base(1)"
    assert x86[1].string.endswith(";x86-64-v4,-rdrnd,base(1)")
    assert any(o.string == "generic;apple-m1,clone_all" for o in official_strings("arm64"))
    for o in official_strings():
        if o.arch in ("x86_64", "aarch64"):
            parse_cpu_target(o.string, T.load("1.12", o.arch))  # every official string is valid


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abhsw-+,;()0123456789_clonealvx", max_size=40))
def test_fuzz_cpu_target_strings(text: str) -> None:
    try:
        specs = parse_cpu_target(text, X112)
    except CpuTargetError:
        return
    assert specs and all(s.written for s in specs)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_cpuinfo_text(text: str) -> None:
    for t in (X19, A111):
        try:
            host = host_from_cpuinfo(text, t)
        except TargetError:
            continue
        assert host.features & ~t.mask == 0 or t.family == "aarch64"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["-O", "-O3", "-O9", "-g", "-g2", "-gx", "--inline=no", "--inline", "no",
                                 "--check-bounds=yes", "--pkgimages=existing", "--pkgimages", "x", "--bogus"]),
                max_size=5))
def test_fuzz_session_flags(args: list[str]) -> None:
    from pylinkjl.caches.flags import parse_session_flags

    try:
        flags, _ = parse_session_flags(args)
    except TargetError:
        return
    assert 0 <= flags.to_byte() <= 0xFF
