/* Test stand-in for libjulia-internal.dll / libjulia-internal.so.1: the one runtime function pkg.c calls. */
#ifdef _WIN32
__declspec(dllexport)
#endif
int ijl_apply_generic(int x) { return 10 * x; }
