/** A program that cannot be assembled: names the instruction index (in 8-byte slots) where known. */
export class AsmError extends Error {
  override name = 'AsmError';
  constructor(
    message: string,
    /** Slot index of the offending instruction, or -1. */
    readonly index = -1,
  ) {
    super(index >= 0 ? `instruction ${index}: ${message}` : message);
  }
}
