# Stand-in for MinGW's dllcrt2.o: defines the DLL entry point the release-1.13 line passes (-e DllMainCRTStartup).
# Returns TRUE and does nothing else (no CRT initialisation), like Julia's own _DllMainCRTStartup stub.
    .text
    .globl DllMainCRTStartup
DllMainCRTStartup:
    movl $1, %eax
    retq
