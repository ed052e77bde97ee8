export interface TestNetns {
  /** The namespace's name (for `ip netns exec`). */
  name: string;
  /** Its file, for setns: `/run/netns/<name>`. */
  path: string;
  /** Its end of the veth (or netkit) pair. */
  dev: string;
  addr: string;
}
export function ourNamespaces(): string[];
export function removeLeftovers(): string[];
export function vethPair(): { a: TestNetns; b: TestNetns } & Disposable;
export function encodeNewNetkit(opts: {
  primary: string;
  peer: string;
  peerNsFd: number;
  mode?: number;
}): Uint8Array;
/** `a.dev` is the netkit primary, `b.dev` its peer. */
export function netkitPair(): { a: TestNetns; b: TestNetns } & Disposable;
export function udpReceiver(
  ns: string,
  addr: string,
  port: number,
): Promise<{ got: string[]; until(check: () => boolean): Promise<void> } & AsyncDisposable>;
export function udpSend(ns: string, addr: string, port: number, msgs: string[]): void;
export function dropExchange(
  net: { a: TestNetns; b: TestNetns },
  counter: { get(key: number): bigint | undefined },
  port: number,
  tag: string,
): Promise<{ got: string[]; dropped: bigint }>;
