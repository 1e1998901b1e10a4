# Stand-in for MinGW's dllcrt2.o (i686): DllMainCRTStartup is stdcall, so its object name is
# _DllMainCRTStartup@12 (Julia passes -e _DllMainCRTStartup; LLD strips one underscore and re-mangles).
    .text
    .globl _DllMainCRTStartup@12
_DllMainCRTStartup@12:
    movl $1, %eax
    retl $12
