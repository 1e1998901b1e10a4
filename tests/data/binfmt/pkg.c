/* A pkgimage-like object for the binfmt tests: exported data and code, calls into the runtime,
   a data import through __imp_ (dllimport) and one through a .refptr slot (plain extern data on
   MinGW), weak, hidden and common symbols, and a Julia-style name that C cannot spell. */
extern int jl_foo(int);
extern void *jl_bar_ptr;
#ifdef _WIN32
__declspec(dllimport)
#endif
extern int jl_imp_data;
extern int jl_weak_ref __attribute__((weak));

int jl_image_data[4] = {1, 2, 3, 4};
const char jl_pkg_name[] = "TestPkg";
int jl_common_var; /* compiled with -fcommon */

static int local_fn(int x) { return x + 1; }
__attribute__((visibility("hidden"))) int jl_hidden_fn(int x) { return local_fn(x); }
__attribute__((weak)) int jl_weak_def(void) { return 7; }

int julia_compose(int x) __asm__("julia_\xe2\x88\x98_12");
int julia_compose(int x) { return jl_foo(x) * 2; }

int jl_pkg_entry(int x) { return jl_foo(x) + jl_image_data[1] + jl_imp_data + (&jl_weak_ref ? 1 : 0); }
void *jl_pkg_getptr(void) { return jl_bar_ptr; }
