/*
 * qfclock: CLOCK_MONOTONIC helper for the fault-injection harness (harness/faults/faults.py).
 * All nodes of the harness run on one machine and share its monotonic clock, so times
 * written here compare exactly with the harness's own time.monotonic_ns().
 *
 *   qfclock now                 print CLOCK_MONOTONIC ns
 *   qfclock burn SECONDS NPROC  busy-loop NPROC processes for SECONDS (at most 60), then exit
 *
 * Installed (copied) under the name `hook`, it is quorumd's master and slave hook: the first
 * thing it does is take the time, then it appends one line
 *   "<CLOCK_MONOTONIC ns> $QUORUM_NAME $QUORUM_ROLE $QUORUM_EPOCH"
 * to hooks.log in its own directory (one write(2) with O_APPEND: lines never interleave).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

static int hook(long long t, const char *exe) {
    char dir[PATH_MAX], log[PATH_MAX + 16], line[512];
    snprintf(dir, sizeof dir, "%s", exe);
    snprintf(log, sizeof log, "%s/hooks.log", dirname(dir));
    int len = snprintf(line, sizeof line, "%lld %s %s %s\n", t, env("QUORUM_NAME"), env("QUORUM_ROLE"),
                       env("QUORUM_EPOCH"));
    if (len <= 0 || len >= (int)sizeof line) return 1;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return 1;
    if (write(fd, line, (size_t)len) != len) return 1;
    close(fd);
    return 0;
}

static int burn(double seconds, int nproc) {
    if (seconds < 0) seconds = 0;
    if (seconds > 60) seconds = 60;
    if (nproc < 1) nproc = 1;
    if (nproc > 16) nproc = 16;
    long long end = now_ns() + (long long)(seconds * 1e9);
    for (int i = 1; i < nproc; i++) {
        pid_t pid = fork();
        if (pid == 0) break;  // the child burns too, and does not fork further
        if (pid < 0) break;
        if (i == nproc - 1) {
            // the parent burns as well, then reaps its children
            volatile unsigned long x = 0;
            while (now_ns() < end) for (int k = 0; k < 100000; k++) x += (unsigned long)k;
            while (wait(NULL) > 0) {}
            return 0;
        }
    }
    volatile unsigned long x = 0;
    while (now_ns() < end) for (int k = 0; k < 100000; k++) x += (unsigned long)k;
    return 0;
}

int main(int argc, char **argv) {
    long long t = now_ns();
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", exe);
        if (strcmp(basename(copy), "hook") == 0) return hook(t, exe);
    }
    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        printf("%lld\n", t);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "burn") == 0) return burn(atof(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: qfclock now | qfclock burn SECONDS NPROC (or installed as 'hook')\n");
    return 64;
}
