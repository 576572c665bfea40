/* bench_exec.c - runs a command several times and reports its wall time and
 * peak resident set size (for compile times and the RSS of a training run).
 *
 *   bench_exec [--runs N] [--warmup W] [--log FILE] [--label L] -- COMMAND [ARGS...]
 *
 * Runs COMMAND W times untimed, then N times, each timed from fork to the
 * end of wait4 (CLOCK_MONOTONIC). Prints
 *   RESULT what=exec label=L runs=N ms_med=... ms_min=... ms_max=... maxrss_kb=...
 * where maxrss_kb is the largest ru_maxrss that wait4 reported for one run:
 * the figure GNU time -v prints as "Maximum resident set size". The
 * command's stdout and stderr go to FILE (truncated first) with --log, to
 * /dev/null otherwise. Exits 1 as soon as a run fails (exit status not 0). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

static int run_once(char **cmd, const char *log, double *ms, long *rss_kb) {
    double t0 = bench_now_s();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd < 0) {
            perror(log);
            _exit(127);
        }
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execvp(cmd[0], cmd);
        fprintf(stderr, "bench_exec: cannot run %s\n", cmd[0]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return -1;
    }
    *ms = (bench_now_s() - t0) * 1e3;
    *rss_kb = ru.ru_maxrss;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_exec: '%s' failed (status %d)%s%s\n", cmd[0],
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, log ? ", see " : "", log ? log : "");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int runs = 1, warmup = 0, i = 1;
    const char *log = NULL, *label = "cmd";
    for (; i < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (i + 1 >= argc) { break; }
        if (strcmp(argv[i], "--runs") == 0) { runs = atoi(argv[i + 1]); }
        else if (strcmp(argv[i], "--warmup") == 0) { warmup = atoi(argv[i + 1]); }
        else if (strcmp(argv[i], "--log") == 0) { log = argv[i + 1]; }
        else if (strcmp(argv[i], "--label") == 0) { label = argv[i + 1]; }
        else { break; }
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc || runs < 1 || runs > BENCH_MAX_REPS ||
        warmup < 0) {
        fprintf(stderr, "usage: %s [--runs N] [--warmup W] [--log FILE] [--label L] -- COMMAND [ARGS...]\n",
                argv[0]);
        return 2;
    }
    char **cmd = argv + i + 1;
    if (log) {
        FILE *f = fopen(log, "w");
        if (!f) {
            perror(log);
            return 1;
        }
        fclose(f);
    }
    double ms[BENCH_MAX_REPS], t;
    long rss = 0, r;
    for (int k = 0; k < warmup; k++) {
        if (run_once(cmd, log, &t, &r) != 0) { return 1; }
    }
    for (int k = 0; k < runs; k++) {
        if (run_once(cmd, log, &ms[k], &r) != 0) { return 1; }
        if (r > rss) { rss = r; }
    }
    double lo = ms[0], hi = ms[0];
    for (int k = 1; k < runs; k++) {
        lo = ms[k] < lo ? ms[k] : lo;
        hi = ms[k] > hi ? ms[k] : hi;
    }
    printf("RESULT what=exec label=%s runs=%d ms_med=%.3f ms_min=%.3f ms_max=%.3f maxrss_kb=%ld\n", label,
           runs, bench_median(ms, runs), lo, hi, rss);
    return 0;
}
