// Newer uapi headers than the machine's: Debian's linux-libc-dev from bookworm-backports (6.12),
// fetched once into the vmtest cache and unpacked, never installed. Debian 12's own headers are
// 6.1's, which lack tcx's BPF_F_BEFORE/AFTER/ID; #defines are not in BTF, so the ABI generator
// reads them from here. The setup script fetches them before the suite (a guest cannot).
import { join } from 'node:path';
import { ensureDebian } from '../vmtest/kernels.mjs';

export const UAPI_PACKAGE = /** @type {const} */ (['linux-libc-dev', 'bookworm-backports']);

let dir;
/** The unpacked package's include directory (`…/usr/include`), fetched on first use. */
export function uapiInclude(log = (l) => console.error(l)) {
  dir ??= join(ensureDebian(...UAPI_PACKAGE, log), 'usr', 'include');
  return dir;
}
