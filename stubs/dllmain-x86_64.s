# The DLL entry point Julia injects into every Windows package image (julia-linking.md §2):
# BOOL WINAPI _DllMainCRTStartup(HINSTANCE, DWORD, LPVOID) { return TRUE; }
# No CRT initialisation, no TLS callbacks. stdcall is meaningless on Win64, so the name is plain.
# Assemble: llvm-mc -triple=x86_64-w64-mingw32 -filetype=obj dllmain-x86_64.s -o dllmain-x86_64.o
	.text
	.def	_DllMainCRTStartup
	.scl	2
	.type	32
	.endef
	.globl	_DllMainCRTStartup
	.p2align	4
_DllMainCRTStartup:
	movl	$1, %eax
	retq
