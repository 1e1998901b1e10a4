"""Read the few machine-code shapes Julia's images use to reach runtime data, so that a check can follow
them without a disassembler.

* A getter that returns a pointer loaded from a slot, as ``get_jl_RTLD_DEFAULT_handle_addr`` compiles:
  x86_64 ``mov rax, [rip+d32]; ret`` (GOT or ``__imp_`` slot), i686 ``mov eax, [abs32]; ret``, AArch64
  ``adrp x0, page; ldr x0, [x0, #off]; ret``.
* A jump through a slot, as the linker makes a PE import thunk or an ELF/Mach-O stub: x86_64
  ``jmp [rip+d32]``, i686 ``jmp [abs32]``, AArch64 ``adrp x16, page; ldr x16, [x16, #off]; br x16``.

Each reader returns the slot's address (the image's own addresses; i686 absolute operands are made relative
with ``image_base``) or None when the bytes are another shape.
"""

from __future__ import annotations

import struct

_X86_MOV_RAX_RIP = b"\x48\x8b\x05"  # mov rax, [rip + disp32]
_X86_JMP_RIP = b"\xff\x25"  # jmp [rip + disp32] (i686: jmp [disp32])
_I686_MOV_EAX_ABS = b"\xa1"  # mov eax, [abs32]
_RET = 0xC3
_A64_RET = 0xD65F03C0


def _adrp(word: int, pc: int) -> tuple[int, int] | None:
    """(destination register, page address) of an AArch64 ADRP at ``pc``."""
    if word & 0x9F000000 != 0x90000000:
        return None
    imm = ((word >> 29) & 0x3) | (((word >> 5) & 0x7FFFF) << 2)
    if imm & (1 << 20):
        imm -= 1 << 21
    return word & 0x1F, (pc & ~0xFFF) + (imm << 12)


def _ldr_x_imm(word: int) -> tuple[int, int, int] | None:
    """(destination, base register, byte offset) of ``ldr Xt, [Xn, #imm]`` (unsigned offset, 64-bit)."""
    if word & 0xFFC00000 != 0xF9400000:
        return None
    return word & 0x1F, (word >> 5) & 0x1F, ((word >> 10) & 0xFFF) * 8


def _a64_slot(code: bytes, pc: int, reg: int) -> int | None:
    if len(code) < 8:
        return None
    w0, w1 = struct.unpack_from("<II", code)
    page = _adrp(w0, pc)
    ldr = _ldr_x_imm(w1)
    if page is None or ldr is None or page[0] != reg or ldr[0] != reg or ldr[1] != reg:
        return None
    return page[1] + ldr[2]


def getter_slot(code: bytes, pc: int, arch: str, image_base: int = 0) -> int | None:
    """The slot a ``return *slot`` getter at ``pc`` loads from (see the module docstring)."""
    if arch == "x86_64" and len(code) >= 8 and code.startswith(_X86_MOV_RAX_RIP) and code[7] == _RET:
        disp: int = struct.unpack_from("<i", code, 3)[0]
        return pc + 7 + disp
    if arch == "i686" and len(code) >= 6 and code.startswith(_I686_MOV_EAX_ABS) and code[5] == _RET:
        abs32: int = struct.unpack_from("<I", code, 1)[0]
        return abs32 - image_base
    if arch == "aarch64" and len(code) >= 12 and struct.unpack_from("<I", code, 8)[0] == _A64_RET:
        return _a64_slot(code, pc, 0)
    return None


def thunk_slot(code: bytes, pc: int, arch: str, image_base: int = 0) -> int | None:
    """The slot a ``jmp *slot`` thunk at ``pc`` jumps through (see the module docstring)."""
    if arch in ("x86_64", "i686") and len(code) >= 6 and code.startswith(_X86_JMP_RIP):
        operand: int = struct.unpack_from("<i" if arch == "x86_64" else "<I", code, 2)[0]
        return pc + 6 + operand if arch == "x86_64" else operand - image_base
    if arch == "aarch64" and len(code) >= 12 and struct.unpack_from("<I", code, 8)[0] == 0xD61F0200:  # br x16
        return _a64_slot(code, pc, 16)
    return None
