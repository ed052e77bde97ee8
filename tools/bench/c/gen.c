// Event generator for the reader benchmarks: calls getppid() (each call fires the benchmark's
// tracepoint program, which emits one record) on one CPU for a number of seconds, optionally
// paced to a rate. Usage: gen <seconds> <cpu> [calls-per-second]. Prints the number of calls.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 1;
  int cpu = argc > 2 ? atoi(argv[2]) : 1;
  double rate = argc > 3 ? atof(argv[3]) : 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
  long calls = 0;
  double start = now(), end = start + secs;
  for (;;) {
    for (int i = 0; i < 64; i++, calls++) syscall(SYS_getppid);
    double t = now();
    if (t >= end) break;
    if (rate > 0)
      while (calls > (now() - start) * rate && now() < end) {
      }
  }
  printf("%ld\n", calls);
  return 0;
}
