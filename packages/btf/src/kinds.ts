/** BTF kind numbers, as in the kernel's `include/uapi/linux/btf.h` (stable ABI). */
export const BtfKind = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;
export type BtfKindName = Lowercase<keyof typeof BtfKind>;
export type BtfKindNumber = (typeof BtfKind)[keyof typeof BtfKind];

export const kindNames: readonly BtfKindName[] = Object.keys(BtfKind).map(
  (k) => k.toLowerCase() as BtfKindName,
);

/** BTF_INT_* encoding bits. */
export const IntEncoding = { SIGNED: 1, CHAR: 2, BOOL: 4 } as const;

export const BTF_MAGIC = 0xeb9f;
