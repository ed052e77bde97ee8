// C consumer for the reader benchmarks, with libbpf's own readers: ring_buffer__poll for a
// BPF ring buffer, perf_buffer__poll for a perf event array (watermark at a quarter ring, as the
// Node side). Usage: consumer <ringbuf|perf> <pinned map> <pages-per-cpu>. Prints "ready" once
// reading; SIGUSR2 zeroes the counts (after a warm-up), SIGTERM stops and prints
// {"records": n, "lost": n}.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <signal.h>

static volatile long records, lost;
static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  if (sig == SIGUSR2) records = lost = 0;
  else stop = 1;
}

static int on_ringbuf(void *ctx, void *data, size_t size) {
  records++;
  return 0;
}
struct lost_event {
  struct perf_event_header header;
  __u64 id, lost;
};

static enum bpf_perf_event_ret on_event(void *ctx, int cpu, struct perf_event_header *ev) {
  if (ev->type == PERF_RECORD_SAMPLE)
    records++;
  else if (ev->type == PERF_RECORD_LOST)
    lost += ((struct lost_event *)ev)->lost;
  return LIBBPF_PERF_EVENT_CONT;
}

int main(int argc, char **argv) {
  if (argc < 4) return 2;
  int fd = bpf_obj_get(argv[2]);
  if (fd < 0) { perror("bpf_obj_get"); return 1; }
  size_t pages = atol(argv[3]);
  signal(SIGUSR2, on_signal);
  signal(SIGTERM, on_signal);
  if (!strcmp(argv[1], "ringbuf")) {
    struct ring_buffer *rb = ring_buffer__new(fd, on_ringbuf, NULL, NULL);
    if (!rb) { perror("ring_buffer__new"); return 1; }
    printf("ready\n");
    fflush(stdout);
    while (!stop) ring_buffer__poll(rb, 50);
    ring_buffer__consume(rb);
    ring_buffer__free(rb);
  } else {
    struct perf_event_attr attr = {0};
    attr.config = PERF_COUNT_SW_BPF_OUTPUT;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.sample_type = PERF_SAMPLE_RAW;
    attr.sample_period = 1;
    attr.watermark = 1;
    attr.wakeup_watermark = pages * getpagesize() / 4;
    struct perf_buffer *pb = perf_buffer__new_raw(fd, pages, &attr, on_event, NULL, NULL);
    if (!pb) { perror("perf_buffer__new_raw"); return 1; }
    printf("ready\n");
    fflush(stdout);
    while (!stop) perf_buffer__poll(pb, 50);
    perf_buffer__consume(pb);
    perf_buffer__free(pb);
  }
  printf("{\"records\":%ld,\"lost\":%ld}\n", records, lost);
  return 0;
}
