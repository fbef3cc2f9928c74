/* Process start cost under different environments, measured side by side.
 *
 *   spawn_bench ROUNDS BATCH PROGRAM -- LABEL [VAR=VALUE...] -- LABEL [VAR=VALUE...] ...
 *
 * Each round starts PROGRAM BATCH times under every configuration in turn (interleaved, so drift
 * hits all alike; the first configuration rotates so none always runs first) and records the
 * mean time per start. Prints, per configuration, the median
 * over rounds and its ratio to the first configuration. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

enum { kMaxConfigs = 8, kMaxVars = 16, kMaxRounds = 1000 };

struct config {
  const char *label;
  char *env[256 + kMaxVars];
  double per_round[kMaxRounds];
};

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 6 || strcmp(argv[4], "--") != 0) {
    fprintf(stderr, "usage: %s ROUNDS BATCH PROGRAM -- LABEL [VAR=VALUE...] [-- LABEL ...]\n", argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]), batch = atoi(argv[2]);
  if (rounds < 1 || rounds > kMaxRounds || batch < 1) return 2;
  char *program = argv[3];
  static struct config configs[kMaxConfigs];
  int n = 0;
  for (int i = 5; i < argc && n < kMaxConfigs;) {
    struct config *c = &configs[n++];
    c->label = argv[i++];
    int e = 0;
    for (char **v = environ; *v && e < 256; v++) /* inherited, minus what configurations set */
      if (strncmp(*v, "LD_PRELOAD=", 11) && strncmp(*v, "AWF_SHIM", 8)) c->env[e++] = *v;
    for (; i < argc && strcmp(argv[i], "--") != 0 && e < 256 + kMaxVars - 1; i++) c->env[e++] = argv[i];
    c->env[e] = NULL;
    i++; /* skip "--" */
  }
  char *args[] = {program, NULL};
  for (int r = 0; r < rounds; r++) {
    for (int j = 0; j < n; j++) {
      int k = (j + r) % n;
      double start = now_us();
      for (int b = 0; b < batch; b++) {
        pid_t pid;
        if (posix_spawn(&pid, program, NULL, NULL, args, configs[k].env) != 0) return 1;
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
      }
      configs[k].per_round[r] = (now_us() - start) / batch;
    }
  }
  double base = 0;
  printf("%-28s %12s %8s\n", "configuration", "median µs", "ratio");
  for (int k = 0; k < n; k++) {
    qsort(configs[k].per_round, (size_t)rounds, sizeof(double), cmp);
    double median = configs[k].per_round[rounds / 2];
    if (k == 0) base = median;
    printf("%-28s %12.1f %8.3f\n", configs[k].label, median, median / base);
  }
  return 0;
}
