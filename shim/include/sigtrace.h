/* sigtrace annotations: log messages and regions recorded in the trace when the program runs
 * under libsigtrace.so (LD_PRELOAD), and no-ops otherwise; and pausing and resuming sampling
 * for the whole process (SIGTRACE_PAUSE(), SIGTRACE_RESUME(), as SIGTRACE_TOGGLE_SIGNAL does).
 *
 * The functions are looked up with dlsym at run time, so a program using this header needs no
 * link-time dependency on sigtrace and runs unchanged without it:
 *
 *     #include "sigtrace.h"
 *     SIGTRACE_LOG("db", "slow query");
 *     SIGTRACE_REGION_BEGIN("parse");  ...  SIGTRACE_REGION_END();
 *
 *     SIGTRACE_RESUME();  ... the part worth profiling ...  SIGTRACE_PAUSE();
 *
 * Link with -ldl on glibc older than 2.34. All of them are safe to call from any thread and from
 * signal handlers; a call made while the same thread is already inside sigtrace is skipped and
 * counted. Strings are copied (at most 1024 bytes each). */
#ifndef SIGTRACE_H
#define SIGTRACE_H

#include <dlfcn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The functions libsigtrace.so exports. */
void sigtrace_log(const char *category, const char *message);
void sigtrace_region_begin(const char *name);
void sigtrace_region_end(void);
void sigtrace_pause(void);
void sigtrace_resume(void);

typedef void (*sigtrace_log_fn)(const char *, const char *);
typedef void (*sigtrace_region_begin_fn)(const char *);
typedef void (*sigtrace_region_end_fn)(void);
typedef void (*sigtrace_pause_fn)(void);

static inline void *sigtrace__lookup(const char *name) {
    return dlsym(RTLD_DEFAULT, name);
}

#define SIGTRACE_LOG(category, message)                                                          \
    do {                                                                                         \
        sigtrace_log_fn sigtrace__f = (sigtrace_log_fn)sigtrace__lookup("sigtrace_log");         \
        if (sigtrace__f) sigtrace__f((category), (message));                                     \
    } while (0)

#define SIGTRACE_REGION_BEGIN(name)                                                              \
    do {                                                                                         \
        sigtrace_region_begin_fn sigtrace__f =                                                   \
            (sigtrace_region_begin_fn)sigtrace__lookup("sigtrace_region_begin");                 \
        if (sigtrace__f) sigtrace__f((name));                                                    \
    } while (0)

#define SIGTRACE_REGION_END()                                                                    \
    do {                                                                                         \
        sigtrace_region_end_fn sigtrace__f =                                                     \
            (sigtrace_region_end_fn)sigtrace__lookup("sigtrace_region_end");                     \
        if (sigtrace__f) sigtrace__f();                                                          \
    } while (0)

/* Pauses sampling in the whole process (every thread's timer stopped) until SIGTRACE_RESUME(). */
#define SIGTRACE_PAUSE()                                                                         \
    do {                                                                                         \
        sigtrace_pause_fn sigtrace__f = (sigtrace_pause_fn)sigtrace__lookup("sigtrace_pause");   \
        if (sigtrace__f) sigtrace__f();                                                          \
    } while (0)

/* Resumes sampling in the whole process (start paused with SIGTRACE_PAUSED=1). */
#define SIGTRACE_RESUME()                                                                        \
    do {                                                                                         \
        sigtrace_pause_fn sigtrace__f = (sigtrace_pause_fn)sigtrace__lookup("sigtrace_resume");  \
        if (sigtrace__f) sigtrace__f();                                                          \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
