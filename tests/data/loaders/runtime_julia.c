/* Test stand-in for libjulia.dll / libjulia.so.1: the one exported datum pkg.c reads. */
#ifdef _WIN32
__declspec(dllexport)
#endif
void *jl_nothing = (void *)0x1234;
