/* Runs a program and reports what it used, as its parent sees it (wait4):
 *
 *   rusage_run OUTFILE PROGRAM [ARG...]
 *
 * writes "MAXRSS_KIB USER_US SYSTEM_US" to OUTFILE and exits with the program's status. A small
 * C parent, because a child's peak RSS counts the memory of the process it was forked from until
 * it execs: run from Python, every child would report at least Python's RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OUTFILE PROGRAM [ARG...]\n", argv[0]);
    return 2;
  }
  pid_t pid = fork();
  if (pid < 0) return 126;
  if (pid == 0) {
    execvp(argv[2], &argv[2]);
    perror(argv[2]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid) return 126;
  FILE *out = fopen(argv[1], "w");
  if (!out) return 126;
  fprintf(out, "%ld %ld %ld\n", ru.ru_maxrss, (long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
          (long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
  fclose(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
