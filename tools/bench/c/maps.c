// C baseline for the map benchmarks: the same loops as bench/maps.mjs, straight on bpf(2).
// Usage: maps <iterations> <entries> <chunk>. Prints one JSON object: ns per operation (per
// entry for the iteration rows, which walk a map of <entries> u32 -> u64 entries 5 times).
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PASSES 5

static long sys_bpf(int cmd, union bpf_attr *attr) { return syscall(__NR_bpf, cmd, attr, sizeof(*attr)); }

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int create(int type, long max) {
  union bpf_attr a = {0};
  a.map_type = type;
  a.key_size = 4;
  a.value_size = 8;
  a.max_entries = max;
  int fd = sys_bpf(BPF_MAP_CREATE, &a);
  if (fd < 0) die("BPF_MAP_CREATE");
  return fd;
}

static uint32_t key;
static uint64_t value;
static union bpf_attr lookup, update, del;

static void point(int fd) {
  memset(&lookup, 0, sizeof(lookup));
  memset(&update, 0, sizeof(update));
  memset(&del, 0, sizeof(del));
  lookup.map_fd = fd; lookup.key = (uintptr_t)&key; lookup.value = (uintptr_t)&value;
  update.map_fd = fd; update.key = (uintptr_t)&key; update.value = (uintptr_t)&value; update.flags = BPF_ANY;
  del.map_fd = fd; del.key = (uintptr_t)&key;
}

// get / set on key 7 of a small map, like a program's counter read from user space
static void single(int type, long n, double *get, double *set) {
  int fd = create(type, 1024);
  point(fd);
  key = 7;
  value = 1;
  if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) die("update");
  double t0 = now_ns();
  for (long i = 0; i < n; i++) if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &lookup)) die("lookup");
  double t1 = now_ns();
  for (long i = 0; i < n; i++) { value = i; if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) die("update"); }
  double t2 = now_ns();
  *get = (t1 - t0) / n;
  *set = (t2 - t1) / n;
  close(fd);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 200000;
  long entries = argc > 2 ? atol(argv[2]) : 100000;
  long chunk = argc > 3 ? atol(argv[3]) : 1024;
  double hget, hset, aget, aset;
  single(BPF_MAP_TYPE_HASH, n, &hget, &hset);
  single(BPF_MAP_TYPE_ARRAY, n, &aget, &aset);

  int fd = create(BPF_MAP_TYPE_HASH, 1024);
  point(fd);
  key = 7;
  double t0 = now_ns();
  for (long i = 0; i < n; i++)
    if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update) || sys_bpf(BPF_MAP_DELETE_ELEM, &del)) die("set+delete");
  double hsetdel = (now_ns() - t0) / n;
  close(fd);

  // delete: every key of a map filled beforehand (untimed)
  fd = create(BPF_MAP_TYPE_HASH, n);
  point(fd);
  for (long i = 0; i < n; i++) { key = i; if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) die("fill"); }
  t0 = now_ns();
  for (long i = 0; i < n; i++) { key = i; if (sys_bpf(BPF_MAP_DELETE_ELEM, &del)) die("delete"); }
  double hdel = (now_ns() - t0) / n;
  close(fd);

  // iteration over a full hash map of `entries` entries
  fd = create(BPF_MAP_TYPE_HASH, entries);
  point(fd);
  for (long i = 0; i < entries; i++) { key = i; value = i; if (sys_bpf(BPF_MAP_UPDATE_ELEM, &update)) die("fill"); }
  uint32_t cur, next;
  union bpf_attr nk = {0};
  nk.map_fd = fd; nk.key = (uintptr_t)&cur; nk.next_key = (uintptr_t)&next;
  lookup.key = (uintptr_t)&next;
  long seen = 0;
  uint64_t sum = 0;
  t0 = now_ns();
  for (int p = 0; p < PASSES; p++) {
    nk.key = 0;  // first key
    while (sys_bpf(BPF_MAP_GET_NEXT_KEY, &nk) == 0) {
      if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &lookup)) die("walk lookup");
      sum += value;
      seen++;
      cur = next;
      nk.key = (uintptr_t)&cur;
    }
  }
  double walk = (now_ns() - t0) / seen;
  if (seen != PASSES * entries) { fprintf(stderr, "walk saw %ld\n", seen); return 1; }

  uint32_t *keys = malloc(4 * chunk);
  uint64_t *values = malloc(8 * chunk);
  uint64_t in_batch = 0, out_batch = 0;
  seen = 0;
  t0 = now_ns();
  for (int p = 0; p < PASSES; p++) {
    union bpf_attr b = {0};
    b.batch.map_fd = fd;
    b.batch.keys = (uintptr_t)keys;
    b.batch.values = (uintptr_t)values;
    b.batch.in_batch = 0;
    b.batch.out_batch = (uintptr_t)&out_batch;
    for (;;) {
      b.batch.count = chunk;
      long r = sys_bpf(BPF_MAP_LOOKUP_BATCH, &b);
      for (uint32_t i = 0; i < b.batch.count; i++) sum += keys[i] + values[i];
      seen += b.batch.count;
      if (r) break;  // ENOENT: done
      in_batch = out_batch;
      b.batch.in_batch = (uintptr_t)&in_batch;
    }
  }
  double batch = (now_ns() - t0) / seen;
  if (seen != PASSES * entries) { fprintf(stderr, "batch saw %ld\n", seen); return 1; }

  // batch update: rewrite every entry, `chunk` per call
  for (long i = 0; i < chunk; i++) { keys[i] = i; values[i] = i; }
  seen = 0;
  t0 = now_ns();
  for (int p = 0; p < PASSES; p++) {
    for (long start = 0; start < entries; start += chunk) {
      long c = entries - start < chunk ? entries - start : chunk;
      for (long i = 0; i < c; i++) { keys[i] = start + i; values[i] = p; }
      union bpf_attr b = {0};
      b.batch.map_fd = fd;
      b.batch.keys = (uintptr_t)keys;
      b.batch.values = (uintptr_t)values;
      b.batch.count = c;
      if (sys_bpf(BPF_MAP_UPDATE_BATCH, &b)) die("update batch");
      seen += b.batch.count;
    }
  }
  double bupdate = (now_ns() - t0) / seen;
  close(fd);
  printf("{\"hash get\":%.1f,\"hash set\":%.1f,\"hash delete\":%.1f,\"hash set+delete\":%.1f,"
         "\"array get\":%.1f,\"array set\":%.1f,\"walk: next_key+lookup\":%.1f,\"batch lookup\":%.1f,"
         "\"batch update\":%.1f,\"sum\":%lu}\n",
         hget, hset, hdel, hsetdel, aget, aset, walk, batch, bupdate, (unsigned long)(sum & 1));
  return 0;
}
