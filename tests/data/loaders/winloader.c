/* Loads pkg.dll with Windows' LoadLibraryA (run under Wine) and calls into it.
   Exit code 0: pkg_answer() == 42 and pkg_entry(5) == 52 (ijl_apply_generic(5) == 50 in the test runtime). */
typedef void *HMODULE;
typedef int (*fn_t)(int);
__declspec(dllimport) HMODULE __stdcall LoadLibraryA(const char *);
__declspec(dllimport) void *__stdcall GetProcAddress(HMODULE, const char *);
__declspec(dllimport) void __stdcall ExitProcess(unsigned);

void __stdcall start(void) {
    HMODULE h = LoadLibraryA("pkg.dll");
    if (!h) ExitProcess(101);
    fn_t answer = (fn_t)GetProcAddress(h, "pkg_answer");
    fn_t entry = (fn_t)GetProcAddress(h, "pkg_entry");
    if (!answer || !entry) ExitProcess(102);
    ExitProcess(answer(0) == 42 && entry(5) == 52 ? 0 : 103);
}
