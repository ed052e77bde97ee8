// C side of the loader benchmark, with libbpf: open a CO-RE object, load it (CO-RE against the
// running kernel's BTF, maps created, programs verified), close it — <iterations> times in one
// process. Usage: loader <object.bpf.o> <iterations>. Prints {"ns": [...]}, one duration per
// load; the first is the cold load of a fresh process.
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "now.h"

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s <object.bpf.o> [iterations]\n", argv[0]);
    return 2;
  }
  int n = argc > 2 ? atoi(argv[2]) : 1;
  if (n < 1) n = 1;
  long long *ns = calloc(n, sizeof(*ns));
  libbpf_set_print(quiet);
  for (int i = 0; i < n; i++) {
    long long t0 = now();
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) {
      perror("bpf_object__open_file");
      return 1;
    }
    int err = bpf_object__load(obj);
    if (err) {
      fprintf(stderr, "bpf_object__load: %d\n", err);
      return 1;
    }
    bpf_object__close(obj);
    ns[i] = now() - t0;
  }
  printf("{\"ns\": [");
  for (int i = 0; i < n; i++) printf("%s%lld", i ? ", " : "", ns[i]);
  printf("]}\n");
  return 0;
}
