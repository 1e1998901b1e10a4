# A no-op _pei386_runtime_relocator for the Windows lines of Julia 1.9 - 1.10.3, which link with
# auto-import and runtime pseudo relocations allowed. LLD <= 16 (bundled with those Julias) wrote such
# images without a relocator; LLD >= 17 refuses unless the symbol exists. Nothing calls this function:
# like Julia's own images, the relocations stay unprocessed (they concern jl_RTLD_DEFAULT_handle_pointer,
# which the loader checks only for system images).
    .text
    .globl _pei386_runtime_relocator
    .p2align 2
_pei386_runtime_relocator:
    ret
