/**
 * @bpfkit/pin — bpffs: detect and mount it, pin maps, programs and links, open pins as the right
 * typed object, list and remove them, and reuse pinned maps at load with libbpf's pin-by-name rules.
 * @packageDocumentation
 */
export { DEFAULT_BPFFS, ensureBpffs, isBpffs } from './bpffs.js';
export {
  listPins,
  type OpenFlag,
  openPinned,
  openPinnedLink,
  openPinnedMap,
  openPinnedProgram,
  type PinEntry,
  PinError,
  type Pinned,
  pin,
  unpin,
} from './pin.js';
export { pinByName } from './reuse.js';
