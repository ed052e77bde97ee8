/** A malformed BTF blob: names what was wrong and where. */
export class BtfParseError extends Error {
  override name = 'BtfParseError';
  constructor(
    message: string,
    /** Byte offset into the blob where the problem was found. */
    readonly offset: number,
  ) {
    super(`${message} (at byte ${offset})`);
  }
}

/** A lookup that found nothing, or found a type of the wrong kind. */
export class BtfLookupError extends Error {
  override name = 'BtfLookupError';
}
