"""binfmt/codepatterns.py: the getter and thunk shapes of every architecture decode to their slot, any other bytes
give None (never an exception), and a heap that is not a zstd frame is a reported problem, not a crash."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pylinkjl.binfmt.codepatterns import getter_slot, thunk_slot
from pylinkjl.images.heap import ZSTD_MAGIC, decompress


def test_x86_64_getter_and_thunk() -> None:
    # mov rax, [rip+0x27c89]; ret   (the real juliac 1.13.1 get_jl_RTLD_DEFAULT_handle_addr at 0x1a9310)
    code = bytes.fromhex("488b05897c0200c3")
    assert getter_slot(code, 0x1A9310, "x86_64") == 0x1D0FA0
    # jmp [rip+0x2fbed2] at 0x30ae34788 -> __imp_ at 0x30b130660 (the real DLL's import thunk)
    assert thunk_slot(bytes.fromhex("ff25d2be2f00"), 0x30AE34788, "x86_64") == 0x30B130660


def test_aarch64_getter_and_thunk() -> None:
    # adrp x0, 0x1b1000; ldr x0, [x0, #0xf88]; ret   (the real aarch64 image, at 0x161ef8)
    code = struct.pack("<III", 0x90000280, 0xF947C400, 0xD65F03C0)
    assert getter_slot(code, 0x161EF8, "aarch64") == 0x1B1F88
    # adrp x16, page; ldr x16, [x16, #8]; br x16
    thunk = struct.pack("<III", 0x90000010, 0xF9400610, 0xD61F0200)
    assert thunk_slot(thunk, 0x4000, "aarch64") == 0x4008


def test_i686_absolute_operands_are_made_relative() -> None:
    base = 0x10000000
    assert getter_slot(b"\xa1" + struct.pack("<I", base + 0x2270) + b"\xc3", 0x1000, "i686", base) == 0x2270
    assert thunk_slot(b"\xff\x25" + struct.pack("<I", base + 0x3000), 0x1000, "i686", base) == 0x3000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=24), st.integers(0, 1 << 40), st.sampled_from(["x86_64", "i686", "aarch64", "arm"]))
def test_any_bytes_give_a_slot_or_none(code: bytes, pc: int, arch: str) -> None:
    for reader in (getter_slot, thunk_slot):
        out = reader(code, pc, arch, 0x180000000)
        assert out is None or isinstance(out, int)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_a_broken_zstd_frame_is_a_value_error(tail: bytes) -> None:
    try:
        decompress(ZSTD_MAGIC + tail)
    except ValueError:
        pass
