/* The monotonic clock in nanoseconds, for the bench's C programs. */
#ifndef BPFKIT_BENCH_NOW_H
#define BPFKIT_BENCH_NOW_H
#include <time.h>

static long long now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif
