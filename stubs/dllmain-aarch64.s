# The DLL entry point Julia injects into every Windows package image (julia-linking.md §2):
# BOOL WINAPI _DllMainCRTStartup(HINSTANCE, DWORD, LPVOID) { return TRUE; }
# Julia cannot emit it for aarch64 (LLVM rejects its stdcall convention there); this is the same
# function in the only calling convention Windows on ARM64 has.
# Assemble: llvm-mc -triple=aarch64-w64-mingw32 -filetype=obj dllmain-aarch64.s -o dllmain-aarch64.o
	.text
	.def	_DllMainCRTStartup
	.scl	2
	.type	32
	.endef
	.globl	_DllMainCRTStartup
	.p2align	2
_DllMainCRTStartup:
	mov	w0, #1
	ret
