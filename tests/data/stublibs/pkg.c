/* A package-image-like object: calls into the Julia runtime, libm and the C library. */
#ifdef _WIN32
#define IMPORT __declspec(dllimport)
#define EXPORT __declspec(dllexport)
#else
#define IMPORT
#define EXPORT __attribute__((visibility("default")))
#endif
typedef __SIZE_TYPE__ size_t;
typedef struct jl_value_t jl_value_t;

jl_value_t *ijl_apply_generic(jl_value_t *f, jl_value_t **args, unsigned n); /* libjulia-internal */
IMPORT extern jl_value_t *jl_nothing;      /* data of the public libjulia */
IMPORT extern void *jl_small_typeof[];     /* data of libjulia-internal */
double sin(double);                        /* libm */
void *memcpy(void *, const void *, size_t); /* C library */
size_t strlen(const char *);

EXPORT jl_value_t *pkg_call(jl_value_t *f, jl_value_t **args, unsigned n) { return ijl_apply_generic(f, args, n); }
EXPORT jl_value_t *pkg_nothing(void) { return jl_nothing; }
EXPORT void *pkg_typeof(int i) { return jl_small_typeof[i]; }
EXPORT double pkg_sin(double x) { return sin(x); }
EXPORT size_t pkg_copy(char *dst, const char *src) { size_t n = strlen(src); memcpy(dst, src, n + 1); return n; }

#ifdef _WIN32
int __stdcall _DllMainCRTStartup(void *hinst, int reason, void *reserved) { return 1; }
#endif
