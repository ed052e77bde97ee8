/**
 * Which maps have a reader in this process. A perf event array has one slot per CPU, and a
 * reader stores its own ring in each slot it reads: a second reader on the same slots would
 * silently take the first one's events. A ring buffer has one consumer position: two readers
 * would race on it, each skipping or repeating the other's records. So both readers claim what
 * they read and refuse what another reader of this process holds. (Other processes cannot be
 * seen from here.)
 */
const claimed = new Map<number, Set<number>>();

/** The whole map (a ring buffer). */
export const WHOLE = -1;

/** Opening a reader on a map (or CPU slots of it) that another open reader of this process reads. */
export class MapInUseError extends Error {
  override name = 'MapInUseError';
  constructor(
    message: string,
    /** The kernel's id of the map. */
    readonly mapId: number,
    /** The CPU slots already taken (perf event arrays), or empty for a ring buffer. */
    readonly cpus: readonly number[],
  ) {
    super(message);
  }
}

/** Slots of `mapId` already claimed among `slots`. */
export function taken(mapId: number, slots: readonly number[]): number[] {
  const held = claimed.get(mapId);
  return held ? slots.filter((s) => held.has(s)) : [];
}

/** Claim `slots` of `mapId` (check {@link taken} first); returns the release. */
export function claim(mapId: number, slots: readonly number[]): () => void {
  let held = claimed.get(mapId);
  if (!held) {
    held = new Set();
    claimed.set(mapId, held);
  }
  for (const s of slots) held.add(s);
  const set = held;
  return () => {
    for (const s of slots) set.delete(s);
    if (set.size === 0 && claimed.get(mapId) === set) claimed.delete(mapId);
  };
}
