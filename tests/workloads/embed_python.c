/* An embedding program: opens a libpython given as argv[1] with RTLD_LOCAL (its symbols stay
 * out of the global scope) and runs the Python code argv[2] in it. Exits 0 when the code ran. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: embed_python LIBPYTHON CODE\n");
        return 2;
    }
    void *python = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!python) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    void (*initialize)(int) = (void (*)(int))dlsym(python, "Py_InitializeEx");
    int (*run)(const char *) = (int (*)(const char *))dlsym(python, "PyRun_SimpleString");
    int (*finalize)(void) = (int (*)(void))dlsym(python, "Py_FinalizeEx");
    if (!initialize || !run || !finalize || dlsym(RTLD_DEFAULT, "_PyRuntime")) {
        fprintf(stderr, "libpython symbols missing, or global\n");
        return 1;
    }
    initialize(0);
    int failed = run(argv[2]);
    return finalize() != 0 || failed ? 1 : 0;
}
