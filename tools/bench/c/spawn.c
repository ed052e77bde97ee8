// Whole-process measurement for the benchmarks: runs a command once (fork, execvp, wait4) and
// prints {"ns": wall time from fork to reaped exit, "maxrssKib": the child's peak RSS, "status"}.
// Usage: spawn <command> [args...]. The child's stdout is discarded, its stderr passed through.
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "now.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <command> [args...]\n", argv[0]);
    return 2;
  }
  long long t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    execvp(argv[1], argv + 1);
    perror("execvp");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) {
    perror("wait4");
    return 1;
  }
  long long ns = now() - t0;
  printf("{\"ns\": %lld, \"maxrssKib\": %ld, \"status\": %d}\n", ns, ru.ru_maxrss,
         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 0;
}
