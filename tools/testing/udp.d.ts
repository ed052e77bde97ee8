import type { Socket } from 'node:dgram';
export function udpDrops(port: number): number;
export function udpPair(): Promise<
  { rx: Socket; tx: Socket; port: number; send(msg: string): Promise<void> } & AsyncDisposable
>;
export function receive(
  rx: Socket,
  port: number,
  send: () => Promise<void>,
  expect: { passed: number; dropped?: number },
): Promise<{ got: string[]; dropped: number }>;
