# An empty object: stands in for C runtime start/end files (crti.o, crtbeginS.o, crtendS.o, crtn.o,
# crtbegin.o, crtend.o) that the release-1.13 link line names, when no Julia install provides them.
    .text
