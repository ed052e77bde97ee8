export const strictCompilerOptions: Record<string, unknown>;
