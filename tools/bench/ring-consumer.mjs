// Node consumer for the reader benchmarks: the same job as c/consumer.c through @bpfkit/perf.
// Usage: node ring-consumer.mjs <ringbuf|perf> <pinned map> <pages-per-cpu>. Prints "ready"
// once reading; SIGUSR2 zeroes the counts (after a warm-up), SIGTERM stops and prints the JSON.
import { BpfMap } from '@bpfkit/maps';
import { PerfReader, RingBufReader } from '@bpfkit/perf';
import { NativeBuffer, objGet, pageSize } from '@bpfkit/sys';

const [kind, path, pagesArg] = process.argv.slice(2);
const pages = Number(pagesArg);
const pin = NativeBuffer.from(path);
const map = BpfMap.fromFd(objGet({ pathname: pin.ptr }));
const reader =
  kind === 'ringbuf'
    ? RingBufReader.open(map)
    : PerfReader.open(map, { pagesPerCpu: pages, watermark: (pages * pageSize) / 4 });
let records = 0;
let lostBase = 0;
let stop = false;
const count = () => {
  records++;
};
process.on('SIGUSR2', () => {
  records = 0;
  lostBase = kind === 'perf' ? reader.lostTotal : 0;
});
process.on('SIGTERM', () => {
  stop = true;
});
console.log('ready');
while (!stop) {
  reader.drainInPlace(count);
  await reader.wait({ timeout: 50 });
}
reader.drainInPlace(count);
const lost = kind === 'perf' ? reader.lostTotal - lostBase : 0;
reader.close();
map.close();
console.log(JSON.stringify({ records, lost }));
