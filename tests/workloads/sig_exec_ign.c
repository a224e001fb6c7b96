/* Signals ignored by the program survive exec. Modes:
 *   exec SIG   - signal(SIG, SIG_IGN), then exec `sh -c 'kill -SIG $$; echo alive'`.
 *   inherited  - reports whether SIGHUP and SIGINT were ignored when it started (as under
 *                nohup), sends itself SIGHUP and prints that it survived. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct { const char *name; int number; } NAMES[] = {
    {"HUP", SIGHUP}, {"INT", SIGINT}, {"TERM", SIGTERM}, {"PROF", SIGPROF}, {"ABRT", SIGABRT}, {"USR1", SIGUSR1}, {"PIPE", SIGPIPE},
};

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 2 && !strcmp(argv[1], "exec")) {
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
            if (strcmp(NAMES[i].name, argv[2])) continue;
            signal(NAMES[i].number, SIG_IGN);
            char script[64];
            snprintf(script, sizeof script, "kill -%s $$; echo alive", NAMES[i].name);
            execl("/bin/sh", "sh", "-c", script, (char *)NULL);
            perror("exec");
            return 1;
        }
        return 2;
    }
    struct sigaction hup, sigint;
    sigaction(SIGHUP, NULL, &hup);
    sigaction(SIGINT, NULL, &sigint);
    printf("at start: SIGHUP %s, SIGINT %s\n", hup.sa_handler == SIG_IGN ? "ignored" : "not ignored", sigint.sa_handler == SIG_IGN ? "ignored" : "not ignored");
    kill(getpid(), SIGHUP);
    printf("survived SIGHUP\n");
    return 0;
}
