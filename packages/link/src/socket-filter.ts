import type { Program } from '@bpfkit/loader';
import { setsockoptInt } from '@bpfkit/sys';
import type { Attachment } from './link.js';

const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;
const SO_DETACH_BPF = 27;

/** A socket: an fd number, or a Node `dgram.Socket` / `net.Socket` (its handle's fd). */
export type SocketLike = number | { _handle?: { fd?: number } | null };

function socketFd(s: SocketLike): number {
  const fd = typeof s === 'number' ? s : s._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw new TypeError('expected a socket fd or a bound Node dgram/net socket (bind or connect it first)');
  return fd;
}

/** A socket filter attached with SO_ATTACH_BPF. Detach to remove it from the socket. */
export class SocketFilter implements Attachment {
  #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  detach(): void {
    if (this.#fd < 0) return;
    setsockoptInt(this.#fd, SOL_SOCKET, SO_DETACH_BPF, 0);
    this.#fd = -1;
  }
  [Symbol.dispose](): void {
    this.detach();
  }
}

/**
 * Attach a `socket_filter` program to a socket (SO_ATTACH_BPF). The program's return value is
 * how many bytes of each packet to keep: 0 drops the packet.
 */
export function attachSocketFilter(program: Program, socket: SocketLike): SocketFilter {
  const fd = socketFd(socket);
  setsockoptInt(fd, SOL_SOCKET, SO_ATTACH_BPF, program.fd.value);
  return new SocketFilter(fd);
}
