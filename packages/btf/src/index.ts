export { BtfLookupError, BtfParseError } from './errors.js';
export { BTF_MAGIC, BtfKind, type BtfKindName, type BtfKindNumber, IntEncoding } from './kinds.js';
export { type BtfHeader, type ParseOptions, parseBtf, type RawBtf } from './parse.js';
export { Btf, type FieldLayout } from './spec.js';
export type * from './types.js';
