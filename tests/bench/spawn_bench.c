/* Process start cost under different environments, measured side by side.
 *
 *   spawn_bench ROUNDS BATCH PROGRAM [ARG...] -- LABEL [VAR=VALUE...] -- LABEL [VAR=VALUE...] ...
 *
 * Each round starts PROGRAM BATCH times under every configuration in turn (interleaved, so drift
 * hits all alike; the first configuration rotates so none always runs first) and records the
 * mean time per start. Prints, per configuration, the median over rounds and the fastest round,
 * each with its ratio to the first configuration, and the median over rounds of the ratio to the
 * first configuration in the same round (paired) with the half-width of its ~95% interval. */
#include <math.h>
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
  int sep = 4;
  while (sep < argc && strcmp(argv[sep], "--") != 0) sep++;
  if (sep + 1 >= argc) {
    fprintf(stderr, "usage: %s ROUNDS BATCH PROGRAM [ARG...] -- LABEL [VAR=VALUE...] [-- LABEL ...]\n", argv[0]);
    return 2;
  }
  int rounds = atoi(argv[1]), batch = atoi(argv[2]);
  if (rounds < 1 || rounds > kMaxRounds || batch < 1) return 2;
  char *program = argv[3];
  argv[sep] = NULL; /* PROGRAM's argv ends here */
  char **args = &argv[3];
  static struct config configs[kMaxConfigs];
  int n = 0;
  for (int i = sep + 1; i < argc;) {
    if (n == kMaxConfigs) {
      fprintf(stderr, "spawn_bench: at most %d configurations\n", kMaxConfigs);
      return 2;
    }
    struct config *c = &configs[n++];
    c->label = argv[i++];
    int e = 0;
    for (char **v = environ; *v && e < 256; v++) /* inherited, minus what configurations set */
      if (strncmp(*v, "LD_PRELOAD=", 11) && strncmp(*v, "AWF_SHIM", 8)) c->env[e++] = *v;
    for (; i < argc && strcmp(argv[i], "--") != 0 && e < 256 + kMaxVars - 1; i++) c->env[e++] = argv[i];
    c->env[e] = NULL;
    i++; /* skip "--" */
  }
  for (int r = 0; r < rounds; r++) {
    for (int j = 0; j < n; j++) {
      int k = (j + r) % n;
      double start = now_us();
      for (int b = 0; b < batch; b++) {
        pid_t pid;
        if (posix_spawn(&pid, program, NULL, NULL, args, configs[k].env) != 0) {
          fprintf(stderr, "spawn_bench: cannot start %s\n", program);
          return 1;
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
          fprintf(stderr, "spawn_bench: %s failed under \"%s\" (status %d)\n", program, configs[k].label, status);
          return 1;
        }
      }
      configs[k].per_round[r] = (now_us() - start) / batch;
    }
  }
  double base = 0;
  /* Paired: each round's time against the first configuration's in the same round (they ran
   * within a fraction of a second of each other), median over rounds. */
  static double paired[kMaxConfigs][kMaxRounds];
  for (int k = 0; k < n; k++)
    for (int r = 0; r < rounds; r++) paired[k][r] = configs[k].per_round[r] / configs[0].per_round[r];
  double base_min = 0;
  printf("%-36s %12s %8s %12s %8s %8s %7s\n", "configuration", "median µs", "ratio", "fastest µs", "ratio", "paired",
         "±95%");
  for (int k = 0; k < n; k++) {
    qsort(paired[k], (size_t)rounds, sizeof(double), cmp);
    qsort(configs[k].per_round, (size_t)rounds, sizeof(double), cmp);
    double median = configs[k].per_round[rounds / 2], fastest = configs[k].per_round[0];
    if (k == 0) base = median, base_min = fastest;
    /* The usual notch of a box plot: median ± 1.58 IQR / sqrt(n), about a 95% interval. */
    double iqr = paired[k][(3 * rounds) / 4] - paired[k][rounds / 4];
    printf("%-36s %12.1f %8.3f %12.1f %8.3f %8.3f %7.3f\n", configs[k].label, median, median / base, fastest,
           fastest / base_min, paired[k][rounds / 2], 1.58 * iqr / sqrt(rounds));
  }
  return 0;
}
