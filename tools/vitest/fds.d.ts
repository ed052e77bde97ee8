export interface OpenFd {
  fd: number;
  target: string;
}
/** The process's open fds, number → what they point to. */
export function openFds(): Map<number, string>;
/** Fds open in `after` that were not open (to the same object) in `before`. */
export function leakedFds(before: Map<number, string>, after: Map<number, string>): OpenFd[];
