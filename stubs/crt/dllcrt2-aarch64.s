# Stand-in for MinGW's dllcrt2.o (aarch64): defines DllMainCRTStartup, returning TRUE.
    .text
    .globl DllMainCRTStartup
    .p2align 2
DllMainCRTStartup:
    mov w0, #1
    ret
