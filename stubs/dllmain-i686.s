# The DLL entry point Julia injects into every Windows package image (julia-linking.md §2):
# BOOL WINAPI _DllMainCRTStartup(HINSTANCE, DWORD, LPVOID) { return TRUE; }
# On i686 the function is stdcall: the COFF name is __DllMainCRTStartup@12 (LLD's default i386 DLL
# entry) and the callee pops its 12 bytes of arguments.
# Assemble: llvm-mc -triple=i686-w64-mingw32 -filetype=obj dllmain-i686.s -o dllmain-i686.o
	.text
	.def	__DllMainCRTStartup@12
	.scl	2
	.type	32
	.endef
	.globl	__DllMainCRTStartup@12
	.p2align	4
__DllMainCRTStartup@12:
	movl	$1, %eax
	retl	$12
