// C baseline for the map benchmarks: the same loops as bench/maps.mjs, straight on bpf(2).
// Usage: maps <iterations>. Prints one JSON object: ns per operation.
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  union bpf_attr create = {0};
  create.map_type = BPF_MAP_TYPE_HASH;
  create.key_size = 4;
  create.value_size = 8;
  create.max_entries = 1024;
  int fd = sys_bpf(BPF_MAP_CREATE, &create);
  if (fd < 0) { perror("BPF_MAP_CREATE"); return 1; }
  uint32_t key = 7;
  uint64_t value = 1;
  union bpf_attr lookup = {0}, update = {0}, del = {0};
  lookup.map_fd = fd; lookup.key = (uintptr_t)&key; lookup.value = (uintptr_t)&value;
  update.map_fd = fd; update.key = (uintptr_t)&key; update.value = (uintptr_t)&value; update.flags = BPF_ANY;
  del.map_fd = fd; del.key = (uintptr_t)&key;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) { perror("update"); return 1; }

  double t0 = now_ns();
  for (long i = 0; i < n; i++) if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &lookup)) { perror("lookup"); return 1; }
  double t1 = now_ns();
  for (long i = 0; i < n; i++) { value = i; if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) { perror("update"); return 1; } }
  double t2 = now_ns();
  for (long i = 0; i < n; i++) {
    if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update) || sys_bpf(BPF_MAP_DELETE_ELEM, &del)) { perror("update+delete"); return 1; }
  }
  double t3 = now_ns();

  // delete: every key of a map filled beforehand (untimed)
  union bpf_attr create2 = create;
  create2.max_entries = n;
  int fd2 = sys_bpf(BPF_MAP_CREATE, &create2);
  if (fd2 < 0) { perror("BPF_MAP_CREATE"); return 1; }
  update.map_fd = fd2;
  del.map_fd = fd2;
  for (long i = 0; i < n; i++) { key = i; if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) { perror("fill"); return 1; } }
  double t4 = now_ns();
  for (long i = 0; i < n; i++) { key = i; if (sys_bpf(BPF_MAP_DELETE_ELEM, &del)) { perror("delete"); return 1; } }
  double t5 = now_ns();
  close(fd2);
  printf("{\"lookup\":%.1f,\"update\":%.1f,\"delete\":%.1f,\"update+delete\":%.1f}\n", (t1 - t0) / n, (t2 - t1) / n,
         (t5 - t4) / n, (t3 - t2) / n);
  close(fd);
  return 0;
}
