import type { BtfKindName } from './kinds.js';

/** A member of a struct or union. `bitOffset` counts from the start of the aggregate. */
export interface BtfMember {
  name: string;
  type: number;
  bitOffset: number;
  /** Non-zero for a bitfield member. */
  bitSize: number;
}
export interface BtfEnumValue {
  name: string;
  value: bigint;
}
export interface BtfParam {
  name: string;
  type: number;
}
export interface BtfVarSecinfo {
  type: number;
  offset: number;
  size: number;
}

interface Base<K extends BtfKindName> {
  kind: K;
  id: number;
  name: string;
}
export interface BtfVoid extends Base<'unkn'> {}
export interface BtfInt extends Base<'int'> {
  size: number;
  signed: boolean;
  char: boolean;
  bool: boolean;
  bits: number;
  offset: number;
}
export interface BtfPtr extends Base<'ptr'> {
  type: number;
}
export interface BtfArray extends Base<'array'> {
  type: number;
  indexType: number;
  nelems: number;
}
export interface BtfStruct extends Base<'struct' | 'union'> {
  size: number;
  members: BtfMember[];
}
export interface BtfEnum extends Base<'enum' | 'enum64'> {
  size: number;
  signed: boolean;
  values: BtfEnumValue[];
}
export interface BtfFwd extends Base<'fwd'> {
  union: boolean;
}
export interface BtfRef extends Base<'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag'> {
  type: number;
}
export interface BtfFunc extends Base<'func'> {
  type: number;
  linkage: number;
}
export interface BtfFuncProto extends Base<'func_proto'> {
  returnType: number;
  params: BtfParam[];
}
export interface BtfVar extends Base<'var'> {
  type: number;
  linkage: number;
}
export interface BtfDatasec extends Base<'datasec'> {
  size: number;
  vars: BtfVarSecinfo[];
}
export interface BtfFloat extends Base<'float'> {
  size: number;
}
export interface BtfDeclTag extends Base<'decl_tag'> {
  type: number;
  componentIdx: number;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPtr
  | BtfArray
  | BtfStruct
  | BtfEnum
  | BtfFwd
  | BtfRef
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

export type BtfTypeOfKind<K extends BtfKindName> = BtfType & { kind: K };
