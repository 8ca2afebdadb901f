/*
 * qbench: CLOCK_MONOTONIC helpers for bench/failover.sh.
 *
 *   qbench now                     print CLOCK_MONOTONIC ns
 *   qbench kill SIG PID            print CLOCK_MONOTONIC ns, then kill(PID, SIG) at once
 *   qbench exec FILE PROG ARGS...  append CLOCK_MONOTONIC ns to FILE, then execv(PROG) (same pid)
 *
 * Installed under the name `master-hook` or `slave-hook` (a copy, so /proc/self/exe tells),
 * it is a role hook: it appends
 *   "<ns> $QUORUM_NAME $QUORUM_ROLE $QUORUM_EPOCH <master|slave>"
 * to hooks.log in its own directory, the first thing it does, so no shell start-up is measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static const char *env(const char *name) {
    const char *value = getenv(name);
    return value && *value ? value : "-";
}

static int hook(const char *kind, long long t) {
    char exe[PATH_MAX], log[PATH_MAX + 16], line[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n < 0) return 1;
    exe[n] = 0;
    snprintf(log, sizeof log, "%s/hooks.log", dirname(exe));
    int len = snprintf(line, sizeof line, "%lld %s %s %s %s\n", t, env("QUORUM_NAME"), env("QUORUM_ROLE"),
                       env("QUORUM_EPOCH"), kind);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    if (write(fd, line, (size_t)len) != len) return 1;
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    long long t = now_ns();
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        const char *base = basename(exe);
        if (strcmp(base, "master-hook") == 0) return hook("master", t);
        if (strcmp(base, "slave-hook") == 0) return hook("slave", t);
    }
    if (argc >= 2 && strcmp(argv[1], "now") == 0) {
        printf("%lld\n", t);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "kill") == 0) {
        int sig = atoi(argv[2]);
        pid_t pid = (pid_t)atoi(argv[3]);
        t = now_ns();
        if (kill(pid, sig) != 0) {
            perror("kill");
            return 1;
        }
        printf("%lld\n", t);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "exec") == 0) {
        FILE *f = fopen(argv[2], "a");
        if (!f) {
            perror(argv[2]);
            return 127;
        }
        fprintf(f, "%lld\n", now_ns());
        fclose(f);
        execv(argv[3], argv + 3);
        perror(argv[3]);
        return 127;
    }
    fprintf(stderr, "usage: qbench now | kill SIG PID | exec FILE PROG ARGS...\n");
    return 64;
}
