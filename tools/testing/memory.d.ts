export function mappedAt(addr: string): boolean;
