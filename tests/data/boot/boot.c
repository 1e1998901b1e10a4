/* Boot the real Julia runtime with a system image: dlopen libjulia, call jl_init_with_image_file(bindir, image).
   Used by tests/test_sysimage_runtime.py (built there with clang; run in a child process: the runtime installs
   signal handlers and exits the process on errors). Prints BOOTED when the runtime came up. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: boot LIBJULIA BINDIR IMAGE\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    void (*init)(const char *, const char *) =
        (void (*)(const char *, const char *))dlsym(h, "jl_init_with_image_file");
    if (!init) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 2;
    }
    init(argv[2], argv[3]);
    printf("BOOTED\n");
    return 0;
}
