/* pylinkjl's runtime judge: boot a real Julia runtime and let it load one package image.

   Built on demand by pylinkjl (pylinkjl/images/judge/loader.py) with clang and LLD, for the host (Linux
   x86_64/aarch64, run under qemu-aarch64 for aarch64 images on an x86_64 host) or for Windows x86_64 (run
   under Wine). It includes no header at all: no libc headers are needed for any of the three (there are
   no aarch64 or Windows headers on a Linux host), and every Julia function is looked up in libjulia by
   name, so one binary serves any Julia version that exports them.

   Input: environment variables (Wine passes them on unchanged; nothing to parse on Windows):
     PYLINKJL_JUDGE_LIBJULIA   path of libjulia (.so / .dll), loaded by full path
     PYLINKJL_JUDGE_BINDIR     julia_bindir for jl_init_with_image_file (need not exist)
     PYLINKJL_JUDGE_SYSIMAGE   the system image (a sys.so, or a juliac library)
     PYLINKJL_JUDGE_IMAGE      the package image to restore
     PYLINKJL_JUDGE_PKGNAME    the package name given to the runtime
     PYLINKJL_JUDGE_CPU        optional: the session's -C (passed through jl_parse_opts)
     PYLINKJL_JUDGE_TARGETS    optional: the image's serialized target list in hex, for
                               jl_check_pkgimage_clones (Base's own CPU check of a cache)
     PYLINKJL_JUDGE_EH_OFFSET  optional: offsetof(jl_task_t, eh) in hex, or "none" for no handler
   Output, on stdout: lines "@@judge KEY VALUE" (VALUE a JSON string), interleaved with whatever the
   runtime itself prints. "@@judge stage NAME" is written before each step, so a child that dies (an error
   thrown with no handler, a signal) still tells where it was. */

typedef __SIZE_TYPE__ size_t;
typedef void *jl_value_t;

#ifdef _WIN32
#define API __attribute__((dllimport))
typedef void *HANDLE;
API void *LoadLibraryExA(const char *, void *, unsigned);
API int SetDllDirectoryA(const char *);
API void *GetProcAddress(void *, const char *);
API unsigned GetLastError(void);
API unsigned FormatMessageA(unsigned, const void *, unsigned, unsigned, char *, unsigned, void *);
API unsigned GetEnvironmentVariableA(const char *, char *, unsigned);
API HANDLE GetStdHandle(unsigned);
API int WriteFile(HANDLE, const void *, unsigned, unsigned *, void *);
API void ExitProcess(unsigned) __attribute__((noreturn));
API unsigned SetErrorMode(unsigned);
API HANDLE CreateFileA(const char *, unsigned, unsigned, void *, unsigned, unsigned, void *);
API int SetStdHandle(unsigned, HANDLE);
#else
void *dlopen(const char *, int);
void *dlsym(void *, const char *);
char *dlerror(void);
char *getenv(const char *);
long write(int, const void *, size_t);
void _exit(int) __attribute__((noreturn));
int __sigsetjmp(void *, int) __attribute__((returns_twice));
#define RTLD_NOW 2
#define RTLD_GLOBAL 0x100
/* glibc's struct sigaction (the generic layout: x86_64 and aarch64 alike) */
struct judge_sigaction { void *handler; unsigned long mask[16]; int flags; void *restorer; };
int sigaction(int, const struct judge_sigaction *, struct judge_sigaction *);
int backtrace(void **, int);
void backtrace_symbols_fd(void *const *, int, int);
#endif

/* ---- output --------------------------------------------------------------------------------------- */

#ifdef _WIN32
static HANDLE report_handle; /* the loader's own stdout, kept when the runtime's goes to a file */
#endif

static void out(const char *s, size_t n) {
#ifdef _WIN32
    unsigned done;
    WriteFile(report_handle ? report_handle : GetStdHandle((unsigned)-11), s, (unsigned)n, &done, 0);
#else
    while (n > 0) {
        long w = write(1, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
#endif
}

static size_t len(const char *s) { size_t n = 0; while (s && s[n]) n++; return n; }
static int same(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

static char line[8192];
static size_t used;
static void put(char c) {
    if (used == sizeof line) { out(line, used); used = 0; }
    line[used++] = c;
}
static void puts_(const char *s) { while (s && *s) put(*s++); }
static void flush(void) { out(line, used); used = 0; }

static void emit(const char *key, const char *value) {
    static const char hex[] = "0123456789abcdef";
    puts_("@@judge ");
    puts_(key);
    puts_(" \"");
    for (const unsigned char *p = (const unsigned char *)(value ? value : ""); *p; p++) {
        if (*p == '"' || *p == '\\') { put('\\'); put((char)*p); }
        else if (*p < 0x20) { puts_("\\u00"); put(hex[*p >> 4]); put(hex[*p & 15]); }
        else put((char)*p);
    }
    puts_("\"\n");
    flush();
}

static void emit_int(const char *key, long v) {
    char buf[32], *p = buf + sizeof buf - 1;
    int neg = v < 0;
    unsigned long u = neg ? (unsigned long)-v : (unsigned long)v;
    *p = 0;
    do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
    if (neg) *--p = '-';
    emit(key, p);
}

static void stage(const char *name) { emit("stage", name); }

__attribute__((noreturn)) static void quit(int code) {
    flush();
#ifdef _WIN32
    ExitProcess((unsigned)code);
#else
    _exit(code);
#endif
}

/* ---- the platform ---------------------------------------------------------------------------------- */

static char envbuf[10][32768];
static const char *env(int slot, const char *name) {
#ifdef _WIN32
    unsigned n = GetEnvironmentVariableA(name, envbuf[slot], sizeof envbuf[slot]);
    return n > 0 && n < sizeof envbuf[slot] ? envbuf[slot] : 0;
#else
    (void)slot;
    (void)envbuf;
    return getenv(name);
#endif
}

static void *libjulia;
static char why[1024];

static void *open_library(const char *path, const char *bindir) {
#ifdef _WIN32
    SetErrorMode(0x8003); /* no dialog boxes: SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX */
    if (bindir) SetDllDirectoryA(bindir);
    void *h = LoadLibraryExA(path, 0, 0x8); /* LOAD_WITH_ALTERED_SEARCH_PATH: its folder first */
    if (!h) {
        unsigned err = GetLastError();
        if (!FormatMessageA(0x1000 | 0x200, 0, err, 0, why, sizeof why, 0)) why[0] = 0;
    }
    return h;
#else
    (void)bindir;
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        const char *e = dlerror();
        size_t i = 0;
        for (; e && e[i] && i + 1 < sizeof why; i++) why[i] = e[i];
        why[i] = 0;
    }
    return h;
#endif
}

static void *sym(const char *name) {
#ifdef _WIN32
    return GetProcAddress(libjulia, name);
#else
    return dlsym(libjulia, name);
#endif
}

static void *need(const char *name) {
    void *p = sym(name);
    if (!p) {
        emit("missing-function", name);
        quit(3);
    }
    return p;
}

/* setjmp: glibc's __sigsetjmp on Linux (what Julia's jl_setjmp is there); on Windows Julia's own
   jl_setjmp (its jl_longjmp restores a layout msvcrt's _setjmp does not write), entered through a tail
   jump so it saves this caller's frame, as a direct call would. */
#ifdef _WIN32
void *judge_setjmp_target;
int judge_setjmp(void *, int) __attribute__((returns_twice));
__asm__(".text\n.globl judge_setjmp\njudge_setjmp:\n\tjmpq *judge_setjmp_target(%rip)\n");
#define SETJMP(buf) judge_setjmp((buf), 0)
#else
#define SETJMP(buf) __sigsetjmp((buf), 0)
#endif

#ifndef _WIN32
/* A fault inside the runtime: say where (the exported symbols nearest to each frame, which is all dladdr
   knows), give the signal back to whoever handled it before (Julia's handler, or the default), return:
   the faulting instruction runs again and the signal takes its ordinary course. */
static struct judge_sigaction before[32];

static void on_fault(int sig, void *info, void *context) {
    (void)info;
    (void)context;
    void *frames[64];
    int n = backtrace(frames, 64);
    emit("fault", sig == 11 ? "SIGSEGV" : sig == 7 ? "SIGBUS" : sig == 4 ? "SIGILL" : "SIGFPE");
    emit("backtrace", "begin");
    backtrace_symbols_fd(frames, n, 1);
    emit("backtrace", "end");
    sigaction(sig, &before[sig], 0);
}

static void watch_faults(void) {
    void *warm[2];
    backtrace(warm, 2); /* loads the unwinder now, not inside the handler */
    static const int sigs[] = {11, 7, 4, 8};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct judge_sigaction act = {0};
        act.handler = (void *)on_fault;
        act.flags = 4 | 0x08000000; /* SA_SIGINFO | SA_ONSTACK */
        sigaction(sigs[i], &act, &before[sigs[i]]);
    }
}
#endif

/* ---- Julia ----------------------------------------------------------------------------------------- */

typedef void (*init_fn)(const char *, const char *);
typedef jl_value_t *(*restore_fn)(const char *, jl_value_t *, int, const char *, int);
typedef jl_value_t *(*value_fn)(void);
typedef jl_value_t *(*value_of_fn)(jl_value_t *);
typedef jl_value_t *(*nth_field_fn)(jl_value_t *, size_t);
typedef const char *(*str_fn)(jl_value_t *);
typedef int (*int_fn)(void);
typedef void (*void_fn)(void);
typedef void (*parse_fn)(int *, char ***);
typedef jl_value_t *(*vec_fn)(size_t);
typedef void *(*task_fn)(void);
typedef size_t (*excstate_fn)(void *);
typedef void (*enter_fn)(void *, void *);
typedef void (*restore_state_fn)(void *, void *);
typedef void (*restore_exc_fn)(void *, size_t);
typedef void (*exit_hook_fn)(int);

static str_fn typeof_str, string_ptr;
static nth_field_fn nth_field;
static jl_value_t **nothing_ptr;

/* What a Julia value says: its type, and the text of its first field when that is a String (the msg of
   ErrorException, ArgumentError, ...). */
static void describe(const char *kind, jl_value_t *v) {
    char key[64];
    size_t n = 0;
    for (const char *k = kind; *k && n < 40; k++) key[n++] = *k;
    for (const char *k = "-message"; *k; k++) key[n++] = *k;
    key[n] = 0;
    if (!v) { emit(kind, "NULL"); return; }
    const char *type = typeof_str(v);
    emit(kind, type);
    if (same(type, "String")) { emit(key, string_ptr(v)); return; }
    if (nothing_ptr && v == *nothing_ptr) return;
    if (same(type, "ErrorException") || same(type, "ArgumentError") || same(type, "ImportError")) {
        jl_value_t *msg = nth_field(v, 0);
        if (msg && same(typeof_str(msg), "String")) emit(key, string_ptr(msg));
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char targets[16384];

/* The part-th dot-separated number of s ("1.13" -> 1, 13); -1 when absent. */
static long parse_dec(const char *s, int part) {
    for (; part > 0 && s && *s; s++)
        if (*s == '.') part--;
    if (!s || *s < '0' || *s > '9') return -1;
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + (*s - '0');
    return v;
}

static long parse_hex(const char *s) {
    long v = 0;
    for (; s && *s; s++) {
        int d = hexval(*s);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* offsetof(jl_task_t, eh): JL_TRY stores the handler there itself (ct->eh = &eh) since 1.11; without it
   every throw ends the process. 0xb8 in 1.13 on x86_64, aarch64 and win64 (read from the disassembly of
   ijl_enter_handler, docs/real-runtime-judge.md). Other versions run without a handler unless pylinkjl
   passes the offset: an error then ends the child, and pylinkjl reads the runtime's own report of it. */
static long eh_offset(int major, int minor) {
    if (major == 1 && minor == 13) return 0xb8;
    return -1;
}

static _Alignas(64) char handler[4096]; /* jl_handler_t: jmp_buf first; generously sized */

static int judge(void) {
    const char *libpath = env(0, "PYLINKJL_JUDGE_LIBJULIA");
    const char *bindir = env(1, "PYLINKJL_JUDGE_BINDIR");
    const char *sysimage = env(2, "PYLINKJL_JUDGE_SYSIMAGE");
    const char *image = env(3, "PYLINKJL_JUDGE_IMAGE");
    const char *pkgname = env(4, "PYLINKJL_JUDGE_PKGNAME");
    const char *cpu = env(5, "PYLINKJL_JUDGE_CPU");
    const char *tlist = env(6, "PYLINKJL_JUDGE_TARGETS");
    const char *ehtext = env(8, "PYLINKJL_JUDGE_EH_OFFSET");
    if (!libpath || !sysimage || !image) { emit("usage", "PYLINKJL_JUDGE_LIBJULIA/SYSIMAGE/IMAGE not set"); return 2; }
#ifdef _WIN32
    /* Under Wine, Julia's init ends the process (exit 1, silently) when its stdout is a pipe: give the
       runtime a file for stdout and stderr (and NUL for stdin) before the C runtime it loads reads them. */
    const char *stdio = env(7, "PYLINKJL_JUDGE_STDIO");
    if (stdio && *stdio) {
        report_handle = GetStdHandle((unsigned)-11);
        HANDLE f = CreateFileA(stdio, 0x40000000, 3, 0, 2, 0x80, 0); /* GENERIC_WRITE, share r/w, CREATE_ALWAYS */
        HANDLE nul = CreateFileA("NUL", 0x80000000, 3, 0, 3, 0x80, 0); /* GENERIC_READ, OPEN_EXISTING */
        if (f != (HANDLE)-1) { SetStdHandle((unsigned)-11, f); SetStdHandle((unsigned)-12, f); }
        if (nul != (HANDLE)-1) SetStdHandle((unsigned)-10, nul);
    }
#endif

    stage("libjulia");
    libjulia = open_library(libpath, bindir);
    if (!libjulia) { emit("libjulia-error", why); return 3; }
#ifdef _WIN32
    judge_setjmp_target = need("jl_setjmp");
#endif
    int major = ((int_fn)need("jl_ver_major"))(), minor = ((int_fn)need("jl_ver_minor"))();
    emit("version", ((str_fn)need("jl_ver_string"))(0));
    typeof_str = (str_fn)need("jl_typeof_str");
    string_ptr = (str_fn)need("jl_string_ptr");
    nth_field = (nth_field_fn)need("jl_get_nth_field");
    nothing_ptr = (jl_value_t **)sym("jl_nothing");
    init_fn init = (init_fn)sym("jl_init_with_image_file");
    if (!init) init = (init_fn)need("jl_init_with_image"); /* its name up to 1.11 */
    restore_fn restore = (restore_fn)need("jl_restore_package_image_from_file");

    if (cpu && *cpu) {
        static char *argv[] = {"julia", "-C", 0, 0};
        argv[2] = (char *)cpu;
        int argc = 3;
        char **pargv = argv;
        stage("options");
        ((parse_fn)need("jl_parse_opts"))(&argc, &pargv);
    }

    stage("init");
    init(bindir, sysimage);
    emit("initialized", "yes");

    jl_value_t *(*cpu_name)(void) = (value_fn)sym("jl_get_cpu_name");
    if (cpu_name) emit("host-cpu", string_ptr(cpu_name()));
    void_fn dump = (void_fn)sym("jl_dump_host_cpu");
    if (dump) { emit("dump-host-cpu", "begin"); dump(); emit("dump-host-cpu", "end"); }

    /* jl_check_pkgimage_clones trusts its input: a target list of another Julia version (other feature
       words) makes it read past the end (seen as SIGSEGV with a 1.9 list in 1.13.1); Base only asks it
       about caches of its own version, so does the judge. */
    const char *tline = env(9, "PYLINKJL_JUDGE_TARGETS_LINE");
    if (tlist && *tlist && tline && parse_dec(tline, 0) == major && parse_dec(tline, 1) == minor) {
        size_t n = len(tlist) / 2;
        if (n > sizeof targets) n = sizeof targets;
        for (size_t i = 0; i < n; i++) targets[i] = (char)(hexval(tlist[2 * i]) * 16 + hexval(tlist[2 * i + 1]));
        value_of_fn check = (value_of_fn)sym("jl_check_pkgimage_clones");
        if (check) {
            stage("check-clones");
            jl_value_t *why_not = check((jl_value_t *)targets);
            if (nothing_ptr && why_not == *nothing_ptr) emit("clones", "accepted");
            else { emit("clones", "rejected"); describe("clones-reason", why_not); }
        }
    }

#ifndef _WIN32
    watch_faults();
#endif
    long offset = ehtext ? (same(ehtext, "none") ? -1 : parse_hex(ehtext)) : eh_offset(major, minor);
    jl_value_t *depmods = ((vec_fn)need("jl_alloc_vec_any"))(0);
    stage("restore");
    if (offset < 0) {
        emit("handler", "none");
        jl_value_t *v = restore(image, depmods, 0, pkgname ? pkgname : "Package", 0);
        describe("returned", v);
    } else {
        emit_int("handler", offset);
        static void *task;
        static size_t state;
        static volatile int thrown;
        task = ((task_fn)need("jl_get_current_task"))();
        state = ((excstate_fn)need("jl_excstack_state"))(task);
        ((enter_fn)need("jl_enter_handler"))(task, handler);
        thrown = 0;
        if (!SETJMP(handler)) {
            *(void **)((char *)task + offset) = handler; /* ct->eh = &eh */
            jl_value_t *v = restore(image, depmods, 0, pkgname ? pkgname : "Package", 0);
            ((restore_state_fn)need("jl_eh_restore_state_noexcept"))(task, handler);
            describe("returned", v);
        } else {
            thrown = 1;
            ((restore_state_fn)need("jl_eh_restore_state"))(task, handler);
            describe("thrown", ((value_of_fn)need("jl_current_exception"))(task));
            ((restore_exc_fn)need("jl_restore_excstack"))(task, state);
        }
        (void)thrown;
    }
    stage("done");
    exit_hook_fn hook = (exit_hook_fn)sym("jl_atexit_hook");
    if (hook) hook(0);
    return 0;
}

#ifdef _WIN32
void start(void) { quit(judge()); }
#else
int main(void) { quit(judge()); }

/* No crt1.o either: the entry point hands the stack to glibc's __libc_start_main, as crt1.o does. */
#if defined(__x86_64__)
__asm__(".text\n.globl _start\n_start:\n"
        "\txor %ebp, %ebp\n\tmov %rdx, %r9\n\tpop %rsi\n\tmov %rsp, %rdx\n\tand $-16, %rsp\n"
        "\tpush %rax\n\tpush %rsp\n\txor %r8d, %r8d\n\txor %ecx, %ecx\n\tlea main(%rip), %rdi\n"
        "\tcall *__libc_start_main@GOTPCREL(%rip)\n\thlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.globl _start\n_start:\n"
        "\tmov x29, #0\n\tmov x30, #0\n\tmov x5, x0\n\tldr x1, [sp]\n\tadd x2, sp, #8\n\tmov x6, sp\n"
        "\tmov x3, #0\n\tmov x4, #0\n\tadrp x0, main\n\tadd x0, x0, :lo12:main\n"
        "\tbl __libc_start_main\n\tbrk #0\n");
#endif
#endif
