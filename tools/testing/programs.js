// Instruction snippets shared by the packages' tests.
import { R0, R1, R2, R10, reg } from '@bpfkit/asm';

/**
 * Append to `b`: look up key 0 of array map `map` and atomically add `amount` (a register
 * operand or an immediate) of `size` ('w' or 'dw') to the value. Clobbers r0-r2; jumps to
 * `skip` when the lookup fails.
 */
export function addToSlot0(b, map, amount, size = 'dw', skip = 'out') {
  b.st('w', R10, -4, 0)
    .ldMap(R1, map)
    .mov64(R2, reg(R10))
    .add64(R2, -4)
    .call('map_lookup_elem')
    .jeq(R0, 0, skip);
  if (typeof amount === 'number') b.mov64(R1, amount);
  else b.mov64(R1, amount);
  return b.atomic('add', size, R0, 0, R1);
}
