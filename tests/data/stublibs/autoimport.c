/* Data used without dllimport: MinGW auto-import must find it through the import library. */
extern void *jl_true;
__declspec(dllexport) void *pkg_true(void) { return jl_true; }
int __stdcall _DllMainCRTStartup(void *hinst, int reason, void *reserved) { return 1; }
